"""The test host for gunicorn: `app` at the root, `prefixed` under /practice.

HOST_INSTANCE names the instance folder (the tests create and migrate it first)."""

import os

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from host import create_app

app = create_app(os.environ["HOST_INSTANCE"])
prefixed = DispatcherMiddleware(NotFound(), {"/practice": app})

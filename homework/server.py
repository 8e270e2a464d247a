"""Run the app under gunicorn's threaded workers."""

import logging

from flask import Flask

# A check-in link is a credential: it must never reach a log file. One redaction, shared
# with the log filters a host app installs (homework.logs). gunicorn itself is imported
# only by `homework serve`, not by every app that mounts homework.
from .logs import CHECKIN_PATH, escape_controls, redact  # noqa: F401


class RedactingFilter(logging.Filter):
    """For the app's own log records (an error on a check-in page names the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if isinstance(record.args, tuple):
            # The arguments come from outside (a request path); the message is ours.
            record.args = tuple(
                escape_controls(redact(a)) if isinstance(a, str) else a for a in record.args
            )
        return True


def _gunicorn_application(app: Flask, options: dict):
    from gunicorn.app.base import BaseApplication

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    return _Gunicorn()


def _has_setting(name: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(s.name == name for s in KNOWN_SETTINGS)


def run_gunicorn(
    app: Flask, host: str, port: int, workers: int, threads: int, in_each_worker=None
) -> None:
    """Serve `app` until interrupted. The app holds no open database connection here.
    `in_each_worker(app)` runs in every worker once it has started (after the fork)."""
    from .logs import RedactingGunicornLogger

    hooks = {}
    if in_each_worker is not None:
        hooks["post_worker_init"] = lambda worker: in_each_worker(app)

    _gunicorn_application(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # A kept-alive connection stays with the worker that accepted it, and the
            # worker awake first accepts most of them: one process ends up serving most
            # clients while the other idles. Closing after each answer lets every request
            # go to whichever worker is free. (Behind a proxy, which keeps its own
            # connections to browsers, this costs nothing they notice.)
            "keepalive": 0,
            "timeout": 60,
            "graceful_timeout": 20,
            "accesslog": "-",
            # The default access log prints the query string; check-in tokens must never
            # reach a log, so log the path only.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
            "errorlog": "-",
            "logger_class": RedactingGunicornLogger,
            # gunicorn's control socket defaults to one path per user
            # (~/.gunicorn/gunicorn.ctl): a second clinic's server on the same machine
            # would take it over. homework has no use for it.
            **({"control_socket_disable": True} if _has_setting("control_socket_disable") else {}),
            **hooks,
        },
    ).run()

"""Run the app under gunicorn's threaded workers."""

import logging
import re

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

# A check-in link is a credential: it must never reach a log file.
CHECKIN_PATH = re.compile(r"/c/[A-Za-z0-9_-]{16,}")


# Control characters (C0, DEL, C1): a request path is decoded from %0D%0A and the like.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def redact(text: str) -> str:
    """Replace every check-in token in `text`."""
    return CHECKIN_PATH.sub("/c/[link]", text)


def escape_controls(text: str) -> str:
    """Write control characters as \\xNN, so a value cannot start a forged log line."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RedactingLogger(Logger):
    """gunicorn's logger, with check-in tokens taken out of access log lines and control
    characters (a CR/LF decoded from the path) escaped."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = escape_controls(redact(value))
        return atoms


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


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def _has_setting(name: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(s.name == name for s in KNOWN_SETTINGS)


def run_gunicorn(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """Serve `app` until interrupted. The app holds no open database connection here."""
    _Gunicorn(
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
            "logger_class": RedactingLogger,
            # gunicorn's control socket defaults to one path per user
            # (~/.gunicorn/gunicorn.ctl): a second clinic's server on the same machine
            # would take it over. homework has no use for it.
            **({"control_socket_disable": True} if _has_setting("control_socket_disable") else {}),
        },
    ).run()

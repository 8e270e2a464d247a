"""Check-in links out of log lines: the one redaction, for `homework serve` and for hosts.

A check-in link is a credential (anyone holding it can record practice for a couple), so
no access log may keep it. `homework serve` redacts its own logs; a host app running
homework under werkzeug's development server or gunicorn adds one of these:

- werkzeug (`flask run`): `homework.logs.redact_werkzeug_log()` once at start-up.
- gunicorn: `--logger-class homework.logs.RedactingGunicornLogger`.
"""

import logging
import re

# /c/<token>: the check-in page and everything under it (its calendar files).
CHECKIN_PATH = re.compile(r"/c/[A-Za-z0-9_-]{16,}")
# Control characters (C0, DEL, C1): a request path is decoded from %0D%0A and the like.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def redact(text: str) -> str:
    """Replace every check-in token in `text`."""
    return CHECKIN_PATH.sub("/c/[link]", text)


def escape_controls(text: str) -> str:
    """Write control characters as \\xNN, so a value cannot start a forged log line."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RedactingArgsFilter(logging.Filter):
    """Take check-in tokens out of a record's message and string arguments, leaving every
    other argument (numbers, objects) as it was."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def redact_werkzeug_log() -> None:
    """Redact check-in tokens in the werkzeug development server's request log (once)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, RedactingArgsFilter) for f in logger.filters):
        logger.addFilter(RedactingArgsFilter())


def _redacting_logger_class():
    from gunicorn.glogging import Logger

    class RedactingGunicornLogger(Logger):
        """gunicorn's logger, with check-in tokens taken out of every access log atom
        (request line, path, referrer, headers and environ values alike) and control
        characters (a CR/LF decoded from the path) escaped."""

        def atoms(self, resp, req, environ, request_time):
            atoms = super().atoms(resp, req, environ, request_time)
            return {
                k: escape_controls(redact(v)) if isinstance(v, str) else v for k, v in atoms.items()
            }

    return RedactingGunicornLogger


def __getattr__(name: str):
    # gunicorn is imported only by a process that asks for its logger class.
    if name == "RedactingGunicornLogger":
        cls = _redacting_logger_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)

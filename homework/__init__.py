"""homework: between-session practice for couples therapy."""

from .extension import Homework
from .plugins import hookimpl

__version__ = "0.1.0"

__all__ = ["Homework", "create_app", "hookimpl", "__version__"]


def create_app(instance_path: str | None = None, config: dict | None = None):  # noqa: ANN201
    """Build the standalone clinic app (see homework.app)."""
    from .app import create_app as _create_app

    return _create_app(instance_path=instance_path, config=config)

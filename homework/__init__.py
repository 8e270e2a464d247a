"""homework: between-session practice for couples therapy."""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = ["Forbidden", "Homework", "create_app", "hookimpl", "__version__"]

if TYPE_CHECKING:
    from flask import Flask

    from .extension import Homework
    from .hookspecs import hookimpl
    from .identity import Forbidden


def create_app(
    instance_path: str | None = None, config: dict | None = None, create_database: bool = False
) -> "Flask":
    """Build the standalone clinic app (see homework.app)."""
    from .app import create_app as _create_app

    return _create_app(instance_path=instance_path, config=config, create_database=create_database)


def __getattr__(name: str):  # noqa: ANN202
    # Imported on first use, so the PDF render worker (homework.render_worker) starts
    # without loading Flask and the rest of the web app.
    if name == "Homework":
        from .extension import Homework

        return Homework
    if name == "Forbidden":
        from .identity import Forbidden

        return Forbidden
    if name == "hookimpl":
        from .hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'homework' has no attribute {name!r}")

"""What every homework command shares: the `flask homework` group, --instance, and how
a command's standalone app treats the database."""

import functools
from collections.abc import Callable

import click
from flask.cli import AppGroup, ScriptInfo

_STANDALONE = "homework_standalone"


def _set_instance(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is None:
        return
    info = ctx.find_object(ScriptInfo)
    if info is None or not info.data.get(_STANDALONE):
        raise click.UsageError("--instance only applies to the standalone `homework` command")
    info.data["instance"] = value


instance_option = click.option(
    "--instance",
    metavar="PATH",
    expose_value=False,
    is_eager=True,
    callback=_set_instance,
    help="Instance folder (config, database, secret key, uploads). "
    "Default: $HOMEWORK_INSTANCE or ./instance.",
)

commands = AppGroup("homework", help="Manage homework: database, library, plugins, audit.")


def _opens_database(create: bool, auto_migrate: bool = True) -> Callable:
    """Say how a command's standalone app treats the database: with `create` it may make
    a missing one (only init, demo and migrate may); without `auto_migrate` the command
    applies migrations itself (migrate, to say truly which; restore, after the swap)."""

    def decorate(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):  # noqa: ANN202
            info = click.get_current_context().find_object(ScriptInfo)
            if info is not None:  # runs before with_appcontext loads the app
                info.data["create_database"] = create
                info.data["auto_migrate"] = auto_migrate
            return f(*args, **kwargs)

        return wrapper

    return decorate

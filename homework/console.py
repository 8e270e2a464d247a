"""The `homework` console command: the shared commands plus the standalone ones, each
taking --instance; the app is created only when a command needs it."""

import sys

import click
from flask.cli import ScriptInfo

from . import storage
from .app import ConfigurationError, create_app
from .cli import commands
from .cli.common import _STANDALONE, _set_instance, instance_option
from .cli.standalone import STANDALONE_ONLY
from .reminders import ReminderConfigError


class StandaloneCLI(click.Group):
    """`homework`: the shared commands plus account and server commands, each taking
    --instance; the app is created only when a command needs it."""

    def make_context(self, info_name, args, parent=None, **extra):  # noqa: ANN001
        info = ScriptInfo(set_debug_flag=False)
        info.data[_STANDALONE] = True
        info.create_app = lambda: create_app(
            instance_path=info.data.get("instance"),
            config=None
            if info.data.get("auto_migrate", True)
            else {"HOMEWORK_AUTO_MIGRATE": False},
            create_database=info.data.get("create_database", False),
        )
        extra.setdefault("obj", info)
        return super().make_context(info_name, args, parent=parent, **extra)


def _with_instance_option(cmd: click.Command) -> click.Command:
    """Give a shared command (and its subcommands) the --instance option."""
    if not any(p.name == "instance" for p in cmd.params):
        instance_option(cmd)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _with_instance_option(sub)
    return cmd


def build_standalone_cli() -> click.Group:
    """Return the `homework` console command."""
    from . import __version__

    group = StandaloneCLI(
        "homework",
        help="homework: between-session practice for couples therapy.\n\n"
        "Quick start: `homework demo` then `homework serve`.",
        params=[
            click.Option(
                ["--instance"],
                metavar="PATH",
                expose_value=False,
                is_eager=True,
                callback=_set_instance,
                help="Instance folder (default: $HOMEWORK_INSTANCE or ./instance).",
            )
        ],
    )
    group = click.version_option(__version__, prog_name="homework")(group)
    for cmd in STANDALONE_ONLY:
        group.add_command(cmd)
    for name, cmd in commands.commands.items():
        group.add_command(_with_instance_option(cmd), name)
    return group


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `homework` console script: one clear line for any failure."""
    cli = build_standalone_cli()
    try:
        cli.main(args=argv, prog_name="homework", standalone_mode=False)
    except click.UsageError as exc:  # bad arguments: one line, exit 2
        hint = f" (try: {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"homework: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"homework: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (ConfigurationError, ReminderConfigError, storage.DatabaseUnavailable) as exc:
        click.echo(f"homework: error: {exc}", err=True)
        sys.exit(1)
    except storage.DatabaseLocked:
        click.echo(
            "homework: error: another process kept the database busy for too long; nothing "
            "was changed. Try again when it has finished.",
            err=True,
        )
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("homework: aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)

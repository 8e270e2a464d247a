"""Commands only the standalone `homework` command has: accounts, the demo clinic, the
server."""

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext

from .. import accounts, storage
from ..app import prepare_database
from ..passwords import generate_password
from ..state import get_state
from .common import _opens_database, instance_option


def _read_password(password_stdin: bool, prompt: str) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(prompt, hide_input=True, confirmation_prompt=True)


def _create_user_or_fail(email: str, name: str, role: str, password: str) -> int:
    try:
        return accounts.create_user(storage.get_db(), email, name, role, password)
    except accounts.AccountError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command("init")
@click.option("--email", help="The first admin's email (prompted when omitted).")
@click.option("--name", default="Clinic admin", show_default=True, help="The admin's name.")
@click.option("--password-stdin", is_flag=True, help="Read the admin's password from stdin.")
@instance_option
@_opens_database(create=True)
@with_appcontext
def init_command(email: str | None, name: str, password_stdin: bool) -> None:
    """Create the instance folder, secret key and database, and the first admin."""
    click.echo(f"instance: {current_app.instance_path}")
    click.echo(f"database: {current_app.config['HOMEWORK_DATABASE']} (migrations current)")
    if accounts.count_users(storage.get_db()) and not email:
        click.echo("accounts exist already; nothing else to do.")
        return
    if not email:
        if not sys.stdin.isatty():
            raise click.UsageError("give --email (and --password-stdin) when not at a terminal")
        email = click.prompt("Admin email")
    password = _read_password(password_stdin, "Admin password")
    _create_user_or_fail(email, name, "admin", password)
    click.echo(f"admin {accounts.normalise_email(email)} created.")


@click.command("create-user")
@click.argument("email")
@click.option("--name", required=True, help="Display name, as printed on handouts.")
@click.option("--role", type=click.Choice(accounts.ROLES), default="therapist", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@instance_option
@with_appcontext
def create_user_command(email: str, name: str, role: str, password_stdin: bool) -> None:
    """Add a therapist or admin account."""
    password = _read_password(password_stdin, "Password")
    user_id = _create_user_or_fail(email, name, role, password)
    click.echo(f"{role} {accounts.normalise_email(email)} created (id {user_id}).")


@click.command("reset-password")
@click.argument("email")
@instance_option
@with_appcontext
def reset_password_command(email: str) -> None:
    """Give an account a new random password (printed once) and end its sessions."""
    db = storage.get_db()
    row = db.execute(
        "SELECT id FROM users WHERE email = ?", [accounts.normalise_email(email)]
    ).fetchone()
    if row is None:
        raise click.BadParameter(f"no account with email {email}", param_hint="EMAIL")
    password = generate_password()
    accounts.set_password(db, row["id"], password, actor_id=None)
    click.echo(f"new password for {email}: {password}")


@click.command("reset-2fa")
@click.argument("email")
@instance_option
@with_appcontext
def reset_2fa_command(email: str) -> None:
    """Turn off an account's two-factor login (a lost phone) and end its sessions."""
    db = storage.get_db()
    row = db.execute(
        "SELECT id, totp_secret FROM users WHERE email = ?", [accounts.normalise_email(email)]
    ).fetchone()
    if row is None:
        raise click.BadParameter(f"no account with email {email}", param_hint="EMAIL")
    accounts.reset_second_factor(db, row["id"], actor_id=None)
    was = "was on" if row["totp_secret"] else "was not on"
    click.echo(
        f"two-factor login for {email} is off (it {was}); its sessions ended. "
        "They can set it up again after signing in."
    )


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when accounts exist already.")
@instance_option
@_opens_database(create=True)
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Seed a demo clinic: an admin and a therapist (printed random passwords) and three
    invented couples with homework in various states."""
    from ..demo import DEMO_ACCOUNTS, seed_demo, seed_demo_couples

    db = storage.get_db()
    if if_empty and accounts.count_users(db):
        click.echo(
            f"Using the existing clinic in {current_app.instance_path} "
            "(forgot a password? homework reset-password EMAIL)."
        )
        return
    for line in seed_demo(db):
        click.echo(line)
    checkin = (current_app.secret_key, current_app.config["HOMEWORK_CHECKIN_EXPIRY_WEEKS"])
    for line in seed_demo_couples(db, get_state().library, DEMO_ACCOUNTS[1][0], checkin):
        click.echo(line)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=lambda: min(4, os.cpu_count() or 1),
    show_default="CPU cores, at most 4",
    type=click.IntRange(1, 64),
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--debug", is_flag=True, help="Flask's development server (never in production).")
@instance_option
@click.pass_context
def serve_command(
    ctx: click.Context, host: str, port: int, workers: int, threads: int, debug: bool
) -> None:
    """Serve the app with gunicorn (threads), after applying migrations."""
    from ..pdf import RenderHost

    # The render host imports WeasyPrint and warms up while the app loads and migrates.
    RenderHost.for_this_process().ensure()
    app = ctx.ensure_object(ScriptInfo).load_app()
    prepare_database(app)  # opens and closes its connection before gunicorn forks
    click.echo(f"homework on http://{host}:{port}/  (instance {app.instance_path})")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from ..handouts import prepare_handouts, render_limits
    from ..pdf import start_render_workers
    from ..reminders import start_loop
    from ..server import run_gunicorn

    with app.app_context():
        # What a first handout needs (its templates compiled, the dates of the default
        # language), done once here and shared by the web processes forked next.
        prepare_handouts(app)
        # One worker per render slot, shared by every gunicorn worker (forked after this,
        # they inherit the host), ready before the first request.
        start_render_workers(render_limits(), wait=True)

    pid_file = Path(app.instance_path) / "serve.pid"
    pid_file.write_text(str(os.getpid()))  # tells `homework restore` the server is up
    try:
        # Every worker starts the reminder loop; the one that takes its lock sends.
        run_gunicorn(app, host=host, port=port, workers=workers, threads=threads,
                     in_each_worker=start_loop)  # fmt: skip
    finally:
        pid_file.unlink(missing_ok=True)


STANDALONE_ONLY = [
    init_command,
    create_user_command,
    reset_password_command,
    reset_2fa_command,
    demo_command,
    serve_command,
]

"""Commands for the database and its safety: migrate, audit, doctor, backup, restore,
plugins."""

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import audit, handout_cache, schema, storage
from ..backups import SECRET_KEY_FILE
from ..plugins import plugin_summary
from ..schema import MIGRATION_WAIT_MS
from ..state import get_state
from .common import _opens_database, commands


@commands.command("migrate", with_appcontext=False)
@click.option("--list", "list_only", is_flag=True, help="Only list applied and pending.")
@_opens_database(create=True, auto_migrate=False)
@with_appcontext
def migrate_command(list_only: bool) -> None:
    """Apply pending database migrations (creating the database if there is none) and
    list applied/pending. A second `migrate` at the same time waits, then finds none."""
    path = Path(current_app.config["HOMEWORK_DATABASE"])
    if list_only and not path.exists():
        raise click.ClickException(storage.missing_message(path))
    db = storage.open_checked(path, MIGRATION_WAIT_MS, create=not list_only)
    try:
        done = [] if list_only else schema.apply_migrations(db)
        applied, pending = schema.migration_status(db)
    finally:
        db.close()
    for name in applied:
        click.echo(f"applied  {name}" + ("  (just now)" if name in done else ""))
    for name in pending:
        click.echo(f"pending  {name}")
    if not list_only:
        click.echo(f"{len(done)} migration(s) applied; the database is current.")
        get_state().migrations_current = True


@commands.group("audit")
def audit_group() -> None:
    """Check the audit log, and print its head to keep elsewhere."""


def _anchor_option(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        return audit.parse_anchor(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@audit_group.command("verify")
@click.option(
    "--anchor",
    "head",
    metavar="COUNT:HASH",
    callback=_anchor_option,
    help="Also check that the log still extends this head (from `homework audit anchor`).",
)
def audit_verify(head: audit.Anchor | None) -> None:
    """Check the audit log's hash chain; exit 1 naming the first bad row."""
    result = audit.verify(storage.get_db(), head)
    if result.ok:
        extends = f"; it extends the anchor of {head.count} row(s)" if head else ""
        click.echo(f"audit log intact: {result.rows} row(s) verified{extends}.")
        return
    where = f"at row {result.first_bad_id}" if result.first_bad_id is not None else "at its end"
    click.echo(f"audit log BROKEN {where}: {result.problem}.", err=True)
    sys.exit(1)


@audit_group.command("anchor")
def audit_anchor() -> None:
    """Print the log's head as COUNT:HASH; keep it off this machine for `verify --anchor`."""
    click.echo(str(audit.anchor(storage.get_db())))


@commands.command("doctor")
def doctor_command() -> None:
    """Say what is wrong with this server's set-up, each with its fix; exit 1 if anything is."""
    from ..doctor import Setup, run_checks

    app = current_app._get_current_object()
    from flask.helpers import get_debug_flag

    debug = bool(app.debug or app.config.get("DEBUG") or get_debug_flag())
    setup = Setup(config=app.config, instance=Path(app.instance_path), debug=debug)
    findings = run_checks(setup)
    for finding in findings:
        if finding.ok:
            click.echo(f"ok       {finding.what}")
        else:
            click.echo(f"PROBLEM  {finding.what}")
            click.echo(f"         fix: {finding.fix}")
    problems = sum(not f.ok for f in findings)
    if problems:
        click.echo(f"{problems} problem(s) found.")
        sys.exit(1)
    click.echo("Nothing wrong found.")


def _passphrase(confirm: bool) -> str:
    """From $HOMEWORK_BACKUP_PASSPHRASE, else one line of stdin, else a prompt."""
    from_env = os.environ.get("HOMEWORK_BACKUP_PASSPHRASE")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("give the passphrase on stdin or in HOMEWORK_BACKUP_PASSPHRASE")
        return line
    return click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm)


@commands.command("backup")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the archive (default: HOMEWORK_BACKUP_DIR).",
)
@click.option(
    "--encrypt",
    is_flag=True,
    help="Encrypt with a passphrase ($HOMEWORK_BACKUP_PASSPHRASE or stdin).",
)
def backup_command(out_dir: Path | None, encrypt: bool) -> None:
    """Back up the database (online, while the app runs) and uploads into one archive."""
    from ..backups import BackupError, take_backup

    cfg = current_app.config
    passphrase = _passphrase(confirm=True) if encrypt else None
    storage.close_db()
    try:
        result = take_backup(
            Path(cfg["HOMEWORK_DATABASE"]),
            Path(cfg["HOMEWORK_UPLOADS"]),
            out_dir or Path(cfg["HOMEWORK_BACKUP_DIR"]),
            passphrase,
            int(cfg["HOMEWORK_BACKUP_KEEP"]),
            secret_key=current_app.secret_key,
        )
    except (BackupError, OSError) as exc:
        raise click.ClickException(f"{exc}; no backup was made") from exc
    click.echo(
        f"backup {result.path} ({result.size:,} bytes, {result.seconds:.1f} s), integrity ok"
    )
    for name in result.removed:
        click.echo(f"removed old backup {name} (keeping the newest {cfg['HOMEWORK_BACKUP_KEEP']})")


@commands.command("restore", with_appcontext=False)
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even though the server seems to be running.")
@_opens_database(create=False, auto_migrate=False)  # a new machine has no database yet
@with_appcontext
def restore_command(archive: Path, force: bool) -> None:
    """Replace the database, uploads and secret key with a backup, after checking it whole.

    Couples erased since the backup was taken are erased again."""
    from ..backups import MAGIC, BackupError, restore
    from ..state import erasure_ledger

    cfg = current_app.config
    instance = Path(current_app.instance_path)
    if not force and _server_running(instance):
        raise click.ClickException(
            "homework serve is running on this instance; stop it first (or use --force)"
        )
    with archive.open("rb") as fh:
        encrypted = fh.read(len(MAGIC)) == MAGIC
    passphrase = _passphrase(confirm=False) if encrypted else None
    key_file = instance / SECRET_KEY_FILE if get_state().standalone else None
    overridden = key_file is None or _file_key(key_file) != current_app.secret_key
    storage.close_db()
    try:
        result = restore(
            archive,
            Path(cfg["HOMEWORK_DATABASE"]),
            Path(cfg["HOMEWORK_UPLOADS"]),
            passphrase,
            ledger=erasure_ledger(),
            secret_key_file=key_file,
        )
    except (BackupError, OSError) as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from exc
    # Kept handouts may print what the restored database no longer holds.
    handout_cache.clear(current_app.instance_path)
    click.echo(f"restored the backup of {result.manifest['created']} from {archive}")
    if result.erased_again:
        click.echo(
            f"erased again {len(result.erased_again)} couple(s) erased after that backup was taken"
        )
    if result.secret_key is None:
        click.echo(
            "this backup holds no secret key (an older version made it): check-in links "
            "printed before work only if this instance's secret key is the old one",
            err=True,
        )
    elif result.secret_key != current_app.secret_key:
        if key_file is not None and not overridden:
            click.echo(f"restored the secret key into {key_file}; restart the server")
        else:
            click.echo(
                "the check-in links printed before were made with the backup's secret key, "
                "but this app's SECRET_KEY is set elsewhere (config.py, FLASK_SECRET_KEY or "
                "the host app): set it to the backup's (the archive's `secret_key` file) "
                "or those links stay dead",
                err=True,
            )


def _file_key(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _server_running(instance: Path) -> bool:
    pid_file = instance / "serve.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@commands.command("plugins")
def plugins_command() -> None:
    """List loaded plugins and the hooks each implements."""
    for row in plugin_summary(get_state().pm):
        click.echo(f"{row['name']}: {', '.join(row['hooks']) or '(no hooks)'}")


# Standalone-only commands: they manage homework's own accounts and server.

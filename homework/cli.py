"""Command line: `homework ...` standalone, `flask homework ...` inside a host app."""

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from . import accounts, audit, schema, storage
from .app import (
    MIGRATION_WAIT_MS,
    SECRET_KEY_FILE,
    ConfigurationError,
    create_app,
    prepare_database,
)
from .checks import check_assignments
from .couples import clean_name
from .extension import assignment_pack_folders, get_state
from .library import (
    CATEGORIES,
    Assignment,
    Problem,
    load_library,
    load_pack,
    validate_file,
)
from .passwords import generate_password
from .plugins import plugin_summary

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
    from .doctor import Setup, run_checks

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


@commands.group("library")
def library_group() -> None:
    """List, show and validate assignment packs."""


@library_group.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only this category.")
def library_list(category: str | None) -> None:
    """List the assignments: id, category, minutes, title and pack."""
    for a in get_state().library.search(category=category):
        click.echo(f"{a.id:<32} {a.category:<20} {a.minutes:>3} min  {a.title}  [{a.pack.id}]")


@library_group.command("show")
@click.argument("assignment_id")
def library_show(assignment_id: str) -> None:
    """Show one assignment's details and its text."""
    a = get_state().library.get(assignment_id)
    if a is None:
        raise click.BadParameter(f"no assignment {assignment_id!r}", param_hint="ID")
    click.echo(f"{a.title}  ({a.id} v{a.version}, pack {a.pack.id}: {a.path})")
    click.echo(a.summary)
    click.echo(f"category: {a.category}; approaches: {', '.join(a.approaches)}")
    click.echo(f"about {a.minutes} min, {a.per_week}x a week for {a.weeks} weeks; {a.who}")
    for c in a.cautions:
        click.echo(f"caution ({c['flag']}): {c['note']}")
    for f in a.fields:
        click.echo(f"field {f.name} ({f.type}): {f.label}; default {f.default!r}")
    for source in a.sources:
        click.echo(f"source: {source}")
    click.echo("")
    click.echo(a.body.strip())


@library_group.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
def library_validate(paths: tuple[Path, ...]) -> None:
    """Check pack folders or assignment files (default: every configured pack).

    Beyond the schema it checks what keeps a text safe and plain: the partner-violence
    caution and a stop signal where an exercise involves conflict, touch or vulnerability,
    a first-speaker choice for turn-taking, and a reading grade of 8 or below. Prints every
    problem as `file: field: message` and exits 1 if there is any."""
    problems: list[Problem] = []
    loaded: list[Assignment] = []
    if not paths:
        library = load_library(assignment_pack_folders(get_state().pm))
        problems, loaded = library.problems, list(library.assignments.values())
    for path in paths:
        if path.is_dir():
            _, found = load_pack(path, problems)
        else:
            found = [a for a in [validate_file(path, problems)] if a]
        loaded += found
    checked = check_assignments(loaded)
    problems = [*problems, *checked]
    count = len(loaded) - len({p.file for p in checked})
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem(s); {count} assignment(s) valid.", err=True)
        sys.exit(1)
    click.echo(f"{count} assignment(s) valid.")


def _parse_sets(assignment, pairs: tuple[str, ...]) -> dict:
    """Turn --set FIELD=VALUE options into typed field values, checked like the web form."""
    declared = {name: f for f in assignment.fields for name in f.merge_names}
    values = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or name not in declared:
            known = ", ".join(declared) or "none"
            raise click.BadParameter(
                f"{pair!r}: use FIELD=VALUE with a field of {assignment.id} ({known})"
            )
        f = declared[name]
        if f.type == "integer":
            if not raw.lstrip("-").isdigit():
                raise click.BadParameter(f"{name} must be a whole number")
            value: object = int(raw)
            if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
                raise click.BadParameter(f"{name} must be between {f.min} and {f.max}")
        elif f.type in ("list", "choices"):
            value = [v.strip() for v in raw.split("|") if v.strip()]
            if f.type == "choices" and set(value) - set(f.options):
                raise click.BadParameter(f"{name} must be among: {', '.join(f.options)}")
        elif f.type == "choice":
            if raw not in f.options:
                raise click.BadParameter(f"{name} must be one of: {', '.join(f.options)}")
            value = raw
        elif f.type == "date":
            try:
                value = date.fromisoformat(raw)
            except ValueError:
                raise click.BadParameter(f"{name} must be a date like 2026-05-01") from None
        else:
            if len(raw) > (2000 if f.type == "long_text" else 200):
                raise click.BadParameter(f"{name} is too long")
            value = raw
        values[name] = value
    return values


def _name(value: str, which: str) -> str:
    value = clean_name(value)
    if not value or len(value) > 100:
        raise click.BadParameter(f"{which} must be 1 to 100 characters")
    return value


@commands.command("render", with_appcontext=False)
@click.argument("assignment_id")
@click.option("--partner-a", required=True, help="Partner A's name as printed.")
@click.option("--partner-b", required=True, help="Partner B's name as printed.")
@click.option(
    "--set", "sets", multiple=True, metavar="FIELD=VALUE", help="A field value; lists use |."
)
@click.option("--therapist", default="", help="The therapist's name as printed.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="Start date (default today).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@_opens_database(create=False, auto_migrate=False)  # it needs no database, only a brand
@with_appcontext
def render_command(
    assignment_id: str,
    partner_a: str,
    partner_b: str,
    sets: tuple[str, ...],
    therapist: str,
    start,
    output: Path,
) -> None:
    """Render one assignment to a PDF handout, without any couple in the database."""
    from .couples import Couple
    from .extension import extra_handout_css, handout_inputs
    from .handouts import build_handout
    from .issuing import build_snapshot, default_personalization
    from .pdf import RenderError

    assignment = get_state().library.get(assignment_id)
    if assignment is None:
        raise click.BadParameter(f"no assignment {assignment_id!r}", param_hint="ASSIGNMENT_ID")
    couple = Couple.unsaved(_name(partner_a, "--partner-a"), _name(partner_b, "--partner-b"))
    begin = start.date() if start else date.today()
    p = default_personalization(assignment, begin, _parse_sets(assignment, sets))
    try:
        inputs = handout_inputs()
    except storage.DatabaseMissing:  # no clinic yet: the default letterhead
        from .branding import Brand
        from .handouts import HandoutInputs

        inputs = HandoutInputs(Brand.from_mapping({}), extra_handout_css())
    snapshot = build_snapshot(
        assignment,
        couple,
        p,
        therapist.strip(),
        inputs.brand.name,
        _long_date,
        crisis=inputs.brand.crisis,
    )
    try:
        pdf = build_handout([snapshot], None, inputs)
    except RenderError as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_bytes(pdf)
    click.echo(f"wrote {output} ({len(pdf):,} bytes)")


def _long_date(value: date) -> str:
    from flask_babel import format_date

    return format_date(value, format="full")


@commands.command("export")
@click.option(
    "--couple", "couple_id", required=True, type=click.IntRange(1, 2**63 - 1), help="Couple id."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def export_command(couple_id: int, out_dir: Path) -> None:
    """Write every active handout of a couple as PDFs, rendering in parallel on all cores."""
    from dataclasses import replace

    from .extension import handout_inputs
    from .handouts import export_couple_handouts
    from .pdf import RenderError

    app = current_app._get_current_object()
    if app.config["HOMEWORK_PUBLIC_URL"]:
        # Check-in links are built as they are for the download button: from
        # HOMEWORK_PUBLIC_URL, as if in a request at the app's root.
        context = app.test_request_context("/")
    else:
        context = contextlib.nullcontext()
        click.echo(
            "note: these handouts have no check-in QR code: set HOMEWORK_PUBLIC_URL (the"
            " address couples reach homework at) to print it as the download button does",
            err=True,
        )
    try:
        with context:
            inputs = handout_inputs()
            if not app.config["HOMEWORK_PUBLIC_URL"]:
                inputs = replace(inputs, checkin_url=lambda packet_id: None)
            written = export_couple_handouts(app, couple_id, out_dir, inputs)
    except LookupError:
        raise click.BadParameter(f"no couple with id {couple_id}", param_hint="--couple") from None
    except RenderError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"{len(written)} handout(s) in {out_dir}")


def _couple_label(couple_id: int) -> str:
    row = storage.get_db().execute("SELECT label FROM couples WHERE id = ?", [couple_id]).fetchone()
    if row is None:
        raise click.BadParameter(f"no couple with id {couple_id}", param_hint="--couple")
    return row["label"]


@commands.command("erase")
@click.option(
    "--couple", "couple_id", required=True, type=click.IntRange(1, 2**63 - 1), help="Couple id."
)
@click.option("--yes", is_flag=True, help="Do not ask for the couple's label to confirm.")
def erase_command(couple_id: int, yes: bool) -> None:
    """Erase a couple for good: every item, practice record and check-in link of theirs."""
    from .erasure import erase_couple
    from .extension import erasure_ledger

    label = _couple_label(couple_id)
    if not yes:
        typed = click.prompt(f"Type the couple's label to erase it for good ({label})")
        if typed.strip() != label:
            raise click.ClickException("the label does not match; nothing was erased")
    erase_couple(storage.get_db(), couple_id, None, erasure_ledger())
    click.echo(f"couple {couple_id} erased; the audit log keeps ids and counts only.")


@commands.command("reassign")
@click.option(
    "--couple", "couple_id", required=True, type=click.IntRange(1, 2**63 - 1), help="Couple id."
)
@click.option("--to", "to", required=True, help="The new therapist's id.")
def reassign_command(couple_id: int, to: str) -> None:
    """Give a couple to another therapist (standalone: an account id; in a host: its id)."""
    from .couples import reassign
    from .identity import therapist_id

    try:
        new_owner = therapist_id(to)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--to") from None
    if get_state().standalone:
        user = (
            accounts.get_user(storage.get_db(), new_owner) if isinstance(new_owner, int) else None
        )
        if user is None or user["disabled"]:
            raise click.BadParameter(
                f"no enabled account with id {to} (see Settings, Therapists and admins)",
                param_hint="--to",
            )
    _couple_label(couple_id)
    reassign(storage.get_db(), couple_id, new_owner, None)
    click.echo(f"couple {couple_id} now belongs to therapist {new_owner}.")


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
    from .backups import BackupError, take_backup

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
    from .backups import MAGIC, BackupError, restore
    from .extension import erasure_ledger

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
    from .demo import DEMO_ACCOUNTS, seed_demo, seed_demo_couples

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
    app = ctx.ensure_object(ScriptInfo).load_app()
    prepare_database(app)  # opens and closes its connection before gunicorn forks
    click.echo(f"homework on http://{host}:{port}/  (instance {app.instance_path})")
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from .server import run_gunicorn

    pid_file = Path(app.instance_path) / "serve.pid"
    pid_file.write_text(str(os.getpid()))  # tells `homework restore` the server is up
    try:
        run_gunicorn(app, host=host, port=port, workers=workers, threads=threads)
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
    except (ConfigurationError, storage.DatabaseUnavailable) as exc:
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

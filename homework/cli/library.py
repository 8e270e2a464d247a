"""Commands for the assignment library: list, show, validate, and render one handout."""

import contextlib
import sys
from datetime import date
from pathlib import Path

import click
from flask.cli import with_appcontext

from .. import storage
from ..authoring.store import authored_assignments
from ..checks import check_assignments
from ..couples import clean_name
from ..library import (
    CATEGORIES,
    Assignment,
    Problem,
    load_library,
    load_pack,
    validate_file,
)
from ..state import assignment_pack_folders, get_state, refresh_library
from .common import _opens_database, commands


@commands.group("library")
def library_group() -> None:
    """List, show and validate assignment packs."""


def _with_authored() -> None:
    """Add the clinic's published assignments to the library, when there is a database."""
    with contextlib.suppress(storage.DatabaseMissing):  # no clinic yet: the packs only
        refresh_library()


@library_group.command("list")
@click.option("--category", type=click.Choice(CATEGORIES), help="Only this category.")
def library_list(category: str | None) -> None:
    """List the assignments: id, category, minutes, title and pack."""
    _with_authored()
    for a in get_state().library.search(category=category):
        click.echo(f"{a.id:<32} {a.category:<20} {a.minutes:>3} min  {a.title}  [{a.pack.id}]")


@library_group.command("show")
@click.argument("assignment_id")
def library_show(assignment_id: str) -> None:
    """Show one assignment's details and its text."""
    _with_authored()
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
    """Check pack folders or assignment files (default: every configured pack, and the
    clinic's published assignments when there is a database).

    Beyond the schema it checks what keeps a text safe and plain: the partner-violence
    caution and a stop signal where an exercise involves conflict, touch or vulnerability,
    a first-speaker choice for turn-taking, and a reading grade of 8 or below. Prints every
    problem as `file: field: message` and exits 1 if there is any."""
    problems: list[Problem] = []
    loaded: list[Assignment] = []
    if not paths:
        library = load_library(assignment_pack_folders(get_state().pm))
        problems, loaded = library.problems, list(library.assignments.values())
        with contextlib.suppress(storage.DatabaseMissing):  # no clinic yet: the packs only
            authored, trouble = authored_assignments(storage.get_db())
            problems, loaded = [*problems, *trouble], [*loaded, *authored]
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
@click.option(
    "--language",
    metavar="CODE",
    help="Print the copy in this language (e.g. es); default: the assignment's own.",
)
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
    language: str | None,
    output: Path,
) -> None:
    """Render one assignment to a PDF handout, without any couple in the database."""
    from ..couples import Couple
    from ..handouts import build_handout, long_date
    from ..issuing import build_snapshot, default_personalization
    from ..pdf import RenderError
    from ..state import extra_handout_css, handout_inputs

    _with_authored()
    assignment = get_state().library.get(assignment_id)
    if assignment is None:
        raise click.BadParameter(f"no assignment {assignment_id!r}", param_hint="ASSIGNMENT_ID")
    if language is not None and language not in assignment.languages:
        have = ", ".join(assignment.languages)
        raise click.BadParameter(
            f"{assignment_id} has no text in {language!r}; it has: {have}",
            param_hint="--language",
        )
    couple = Couple.unsaved(_name(partner_a, "--partner-a"), _name(partner_b, "--partner-b"))
    begin = start.date() if start else date.today()
    p = default_personalization(assignment, begin, _parse_sets(assignment, sets))
    try:
        inputs = handout_inputs()
    except storage.DatabaseMissing:  # no clinic yet: the default letterhead
        from ..branding import Brand
        from ..handouts import HandoutInputs

        inputs = HandoutInputs(Brand.from_mapping({}), extra_handout_css())
    snapshot = build_snapshot(
        assignment,
        couple,
        p,
        therapist.strip(),
        inputs.brand.name,
        long_date,
        crisis=inputs.brand.crisis,
        languages=[language] if language else [],
    )
    try:
        pdf = build_handout([snapshot], None, inputs)
    except RenderError as exc:
        raise click.ClickException(str(exc)) from exc
    output.write_bytes(pdf)
    click.echo(f"wrote {output} ({len(pdf):,} bytes)")


@library_group.command("export")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip to write.",
)
def library_export(out: Path) -> None:
    """Export the clinic's published assignments as a pack folder in a zip."""
    from ..authoring import packs
    from ..branding import load_brand

    db = storage.get_db()
    data = packs.export_zip(db, load_brand(db).name)
    out.write_bytes(data)
    from .. import audit

    with storage.write(db):
        audit.record(db, "assignment.exported")
    click.echo(f"wrote {out} ({len(data):,} bytes)")


@library_group.command("import")
@click.argument("pack_zip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def library_import(pack_zip: Path) -> None:
    """Import a pack zip: checked whole first; each assignment becomes the next version
    of its id. Nothing is stored if any file has a problem."""
    from ..authoring import packs

    try:
        done = packs.import_zip(storage.get_db(), pack_zip.read_bytes(), None)
    except packs.ImportRefused as exc:
        for problem in exc.problems:
            click.echo(str(problem))
        click.echo("Nothing was imported.", err=True)
        sys.exit(1)
    for assignment_id, version in done:
        if version is None:
            click.echo(f"{assignment_id}: unchanged")
        else:
            click.echo(f"{assignment_id}: version {version}")

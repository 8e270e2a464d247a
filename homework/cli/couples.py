"""Commands for one couple's data: export, erase, reassign."""

import contextlib
from pathlib import Path

import click
from flask import current_app

from .. import accounts, storage
from ..state import get_state
from .common import commands


@commands.command("export")
@click.option(
    "--couple", "couple_id", required=True, type=click.IntRange(1, 2**63 - 1), help="Couple id."
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
def export_command(couple_id: int, out_dir: Path) -> None:
    """Write every active handout of a couple as PDFs, rendering in parallel on all cores."""
    from dataclasses import replace

    from ..exports import export_couple_handouts
    from ..handouts import render_limits
    from ..pdf import RenderError, start_render_workers
    from ..state import handout_inputs

    start_render_workers(render_limits())  # they warm up while the items are read
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
    from ..erasure import erase_couple
    from ..handout_cache import cache_root
    from ..state import erasure_ledger

    label = _couple_label(couple_id)
    if not yes:
        typed = click.prompt(f"Type the couple's label to erase it for good ({label})")
        if typed.strip() != label:
            raise click.ClickException("the label does not match; nothing was erased")
    erase_couple(storage.get_db(), couple_id, None, erasure_ledger(), cache_root())
    click.echo(f"couple {couple_id} erased; the audit log keeps ids and counts only.")


@commands.command("reassign")
@click.option(
    "--couple", "couple_id", required=True, type=click.IntRange(1, 2**63 - 1), help="Couple id."
)
@click.option("--to", "to", required=True, help="The new therapist's id.")
def reassign_command(couple_id: int, to: str) -> None:
    """Give a couple to another therapist (standalone: an account id; in a host: its id)."""
    from ..couples import reassign
    from ..identity import therapist_id

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

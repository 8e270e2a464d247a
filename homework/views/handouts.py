"""PDF handouts for one issued item or a whole packet; the clinic's branding page."""

import hashlib
import json

from flask import Blueprint, abort, render_template
from flask_babel import gettext as _

from .. import audit, issuing
from ..handouts import handout_filename
from ..state import UntrustedHost
from ..storage import get_db, write
from .access import current_therapist, login_required, own_homework, own_packet
from .documents import handout_or_error, pdf_download


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/homework/<homework_rowid:hw_id>/handout.pdf", "handout_pdf", handout_pdf)
    bp.add_url_rule("/packets/<homework_rowid:packet_id>/handout.pdf", "packet_pdf", packet_pdf)


def _pdf_response(
    snapshots: list[dict], object_type: str, object_id: int, couple_id: int, packet_id: int
):
    try:
        pdf, rendered, error = handout_or_error(snapshots, packet_id)
    except UntrustedHost as exc:  # no trusted address to print the check-in link with
        body = render_template(
            "homework/error.html", title=_("The handout was not printed"), message=str(exc)
        )
        return body, 400
    if error:
        return error
    detail = {"couple": couple_id, "sha256": hashlib.sha256(pdf).hexdigest(), "bytes": len(pdf)}
    actor = current_therapist().id
    with write(get_db()) as db:
        if rendered:
            audit.record(
                db,
                "handout.generated",
                actor_id=actor,
                object_type=object_type,
                object_id=object_id,
                detail=detail,
            )
        # One row when the handout was kept from earlier (rendered at issue or for an
        # earlier download): it says which bytes went out.
        audit.record(
            db,
            "handout.downloaded",
            actor_id=actor,
            object_type=object_type,
            object_id=object_id,
            detail=detail,
        )
    item_id = object_id if object_type == "homework" else None
    return pdf_download(pdf, handout_filename(snapshots, item_id=item_id, packet_id=packet_id))


@login_required
def handout_pdf(hw_id: int):
    hw = own_homework(hw_id)
    return _pdf_response(
        [json.loads(hw["snapshot"])], "homework", hw["id"], hw["couple_id"], hw["packet_id"]
    )


@login_required
def packet_pdf(packet_id: int):
    couple = own_packet(packet_id)
    items = issuing.packet_items(get_db(), packet_id)
    if not items:
        abort(404)
    return _pdf_response(
        [json.loads(i["snapshot"]) for i in items], "packet", packet_id, couple.id, packet_id
    )

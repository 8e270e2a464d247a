"""A couple's data on the way out: tracking as CSV or JSON, everything as one zip, and
every active handout as PDFs (`homework export`)."""

import csv
import io
import json
import unicodedata
import zipfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import sqlite_utils

from .couples import Couple
from .handouts import HandoutInputs, handout_filename, item_handout, render_limits
from .notes import notes_for_couple
from .safety import screening_record
from .tracking import export_rows

ARCHIVE_README = """This archive holds everything homework stored for one couple.

couple.json
  couple      id, uuid (an identifier never given to another couple), label, the
              partners' names, pronouns and languages, safety flags, the therapist's
              private notes, created/updated times.
  homework    every item they were given: assignment id and version, title, dates,
              frequency, status, the personalization values and the exact text
              snapshot they were handed (with its sha256).
  practice    every practice record: day, who (a, b or together), done/partly/not,
              helpfulness 1-5, reflection, whether the reflection was private,
              whether it came from the couple's check-in or the therapist's session,
              the item it was recorded on (homework_id) and the item that item was
              first issued as (first_issue_id: revisions of one item share it).
  reminder_contacts
              each partner's e-mail address for reminders, whether they agreed
              (consent), who recorded it and when, and when and how reminders
              were stopped (by the partner's stop link, or the therapist).
  reminders   every reminder e-mail planned for them: partner, item, practice
              window, state (planned, claimed, sent, failed, stopped), when sent,
              why stopped.
  screening   whether the couple was screened for partner violence: "state" now
              (not-screened, screened or flagged); "history", each state it was set
              to, with when ("at", UTC), who set it ("recorded_by", a therapist id)
              and the state before ("previous"; none when the couple was added);
              "individual_assessments", each time a therapist recorded that an
              individual safety assessment was done before giving a flagged couple
              homework (when, who, the packet or item it was for, the assignment
              ids); "cautions_confirmed", each time a therapist confirmed the
              cautions before issuing (when, who, the packet or item, the caution
              flags, the assignment ids, the screening state at the time).
  private_notes
              what one partner sent the therapist alone from the check-in page:
              id, written_by (a, b, or "" if they chose not to say), body, the
              packet whose link it came from (packet_id), created_at (UTC).
              THE OTHER PARTNER HAS NEVER SEEN THESE, nor the reflections marked
              private under practice. Take them out before this archive, or any
              part of it, goes to the couple or to either partner.
handouts/     a PDF of every item that was not withdrawn or replaced by a revision.
"""
ITEM_KEYS = (
    "id", "assignment_id", "assignment_version", "title", "start_date", "due_date",
    "per_week", "weeks", "status", "created_at", "snapshot_sha256",
)  # fmt: skip


# Characters a spreadsheet skips or folds before it decides whether a cell is a formula:
# zero-width ones and the byte-order mark, and (under NFKC) fullwidth "＝" and the like.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _csv_safe(value):
    """Keep spreadsheet apps from running typed text as a formula."""
    if not isinstance(value, str):
        return value
    first = unicodedata.normalize("NFKC", value.lstrip(_INVISIBLE + " ")[:1])
    if value[:1] in ("\t", "\r") or first[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def tracking_csv(rows: list[dict]) -> str:
    """Practice records as CSV, formula-safe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["id"])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_safe(v) for k, v in row.items()})
    return out.getvalue()


def tracking_json(couple: Couple, rows: list[dict]) -> str:
    """Practice records as JSON, with the couple's names."""
    names = {"label": couple.label, "partner_a": couple.partner_a, "partner_b": couple.partner_b}
    return json.dumps({"couple": names, "practice": rows}, ensure_ascii=False, indent=2)


def reminder_rows(db: sqlite_utils.Database, couple_id: int) -> dict[str, list[dict]]:
    """A couple's reminder addresses, consent and reminders, for their export."""
    contacts = db.execute(
        "SELECT partner, email, consent, recorded_by, recorded_at, stopped_at, stopped_by"
        " FROM reminder_contacts WHERE couple_id = ? ORDER BY partner",
        [couple_id],
    )
    sent = db.execute(
        "SELECT id, partner, homework_id, window_start, window_end, state, sent_at, channel,"
        " stop_reason, created_at FROM reminder_outbox WHERE couple_id = ? ORDER BY id",
        [couple_id],
    )
    return {
        "reminder_contacts": [dict(r) for r in contacts],
        "reminders": [dict(r) for r in sent],
    }


def couple_archive(
    db: sqlite_utils.Database, couple: Couple, inputs: HandoutInputs
) -> tuple[bytes, int]:
    """One zip: README.txt, couple.json and a PDF of every current handout (the same bytes
    as its download button). Returns the zip and how many items it describes."""
    items = [
        dict(r)
        for r in db.execute("SELECT * FROM homework WHERE couple_id = ? ORDER BY id", [couple.id])
    ]
    document = {
        "format": "homework couple export 1",
        "exported_on": date.today().isoformat(),
        "couple": {k: v for k, v in couple.__dict__.items() if k != "owner_id"},
        "homework": [
            {
                **{k: item[k] for k in ITEM_KEYS},
                "personalization": json.loads(item["personalization"]),
                "snapshot": json.loads(item["snapshot"]),
            }
            for item in items
        ],
        "practice": export_rows(db, couple.id),
        **reminder_rows(db, couple.id),
        "screening": screening_record(db, couple.id),
        "private_notes": notes_for_couple(db, couple.id)[::-1],  # oldest first
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", ARCHIVE_README)
        archive.writestr("couple.json", json.dumps(document, ensure_ascii=False, indent=2))
        for item in items:
            if item["status"] in ("active", "done"):
                pdf = item_handout(item, inputs)
                name = handout_filename([json.loads(item["snapshot"])], item_id=item["id"])
                archive.writestr(f"handouts/{name}", pdf)
    return buffer.getvalue(), len(items)


def export_couple_handouts(app, couple_id: int, out_dir: Path, inputs: HandoutInputs) -> list[Path]:
    """Render every active item of a couple into `out_dir`, in parallel (one per slot)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import audit
    from .storage import get_db, write

    db = get_db()
    if db.execute("SELECT 1 FROM couples WHERE id = ?", [couple_id]).fetchone() is None:
        raise LookupError(couple_id)
    rows = db.execute(
        "SELECT id, packet_id, snapshot, start_date FROM homework"
        " WHERE couple_id = ? AND status = 'active' ORDER BY id",
        [couple_id],
    ).fetchall()
    # Links are looked up here, once: the render threads have no request to build them in.
    links = {row["packet_id"]: inputs.checkin_url(row["packet_id"]) for row in rows}
    fixed = replace(inputs, checkin_url=links.get)

    def one(row) -> tuple[int, bytes]:
        with app.app_context():
            return row["id"], item_handout(row, fixed)

    with ThreadPoolExecutor(max_workers=render_limits().workers) as pool:
        results = list(pool.map(one, rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row, (hw_id, pdf) in zip(rows, results, strict=True):
        path = out_dir / handout_filename([json.loads(row["snapshot"])], item_id=hw_id)
        path.write_bytes(pdf)
        written.append(path)
    with write(db):
        audit.record(
            db,
            "handout.exported",
            object_type="couple",
            object_id=couple_id,
            detail={"items": len(rows)},
        )
    return written

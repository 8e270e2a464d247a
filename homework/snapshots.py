"""An issued item as stored: its frozen snapshot made ready for templates, and its status
as of a day. Low in the house: issuing, tracking and handouts all read these."""

from datetime import date

from flask_babel import format_date
from flask_babel import gettext as _
from markupsafe import Markup, escape

# The parts of a snapshot that a copy in another language prints in its own words.
COPY_KEYS = (
    "sections",
    "note",
    "barrier_plan",
    "keep_for_session",
    "stop_line",
    "stop",
    "start_date_text",
    "due_date_text",
)


def copy_of(snapshot: dict, code: str) -> dict:
    """The snapshot as its copy in `code` prints it (the original when it has no such text)."""
    text = snapshot.get("translations", {}).get(code)
    if text is None:
        out = {**snapshot, "language": snapshot.get("language", "en")}
        if code != out["language"] and "start_date" in snapshot:
            # The item's words stay in its original, but the copy's own lines (its
            # dates in the header and on the cover) speak the copy's language.
            for key in ("start_date", "due_date"):
                out[f"{key}_text"] = format_date(date.fromisoformat(snapshot[key]), "full")
        return out
    out = {**snapshot, **{key: text[key] for key in COPY_KEYS}, "language": code}
    out["assignment"] = {
        **snapshot["assignment"],
        "title": text["title"],
        "summary": text["summary"],
    }
    return out


def print_languages(snapshots: list[dict]) -> list[str]:
    """The languages a handout of these snapshots prints a copy in, in order: every
    language any of them has a copy in (an item without that language's text prints in
    its original within that copy)."""
    found: list[str] = []
    for s in snapshots:
        for code in s.get("copies") or [s.get("language", "en")]:
            if code not in found:
                found.append(code)
    return found


def as_markup(snapshot: dict) -> dict:
    """Mark a stored snapshot's HTML parts safe for templates (we rendered and escaped them)."""
    out = dict(snapshot)
    s = snapshot["sections"]
    out["sections"] = {
        k: [Markup(x) for x in v] if isinstance(v, list) else Markup(v)  # noqa: S704
        for k, v in s.items()
    }
    out["note"] = Markup(snapshot["note"])  # noqa: S704
    out["barrier_plan"] = {k: Markup(v) for k, v in snapshot["barrier_plan"].items()}  # noqa: S704
    # Snapshots from before the safety fields lack these keys; they print without them.
    out["keep_for_session"] = [Markup(t) for t in snapshot.get("keep_for_session", [])]  # noqa: S704
    stop = snapshot.get("stop")
    out["stop"] = {k: Markup(v) for k, v in stop.items()} if stop else None  # noqa: S704
    out["take_turns"] = snapshot.get("take_turns", False)
    out["crisis"] = Markup(snapshot.get("crisis", ""))  # noqa: S704
    out["stop_line"] = Markup(  # noqa: S704
        snapshot.get("stop_line")
        or escape(
            _(
                "Stop if either of you feels unsafe, and tell %(therapist)s.",
                therapist=snapshot["therapist"],
            )
        )
    )
    return out


def effective_status(row: dict, today: date) -> str:
    """active/done/withdrawn/revised as stored, or expired once an active item is past due."""
    if row["status"] == "active" and date.fromisoformat(row["due_date"]) < today:
        return "expired"
    return row["status"]

"""An issued item as stored: its frozen snapshot made ready for templates, and its status
as of a day. Low in the house: issuing, tracking and handouts all read these."""

from datetime import date

from flask_babel import gettext as _
from markupsafe import Markup, escape


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

"""Dashboard and health check."""

from datetime import date

from flask import Blueprint, current_app, jsonify, render_template, request
from markupsafe import Markup

from .. import storage, tracking
from ..storage import get_db
from . import current_therapist, login_required


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "dashboard", dashboard)
    bp.add_url_rule("/healthz", "healthz", healthz)


PAGE = 25


@login_required
def dashboard():
    me = current_therapist()
    data = tracking.dashboard(get_db(), me.id, date.today())
    sort = request.args.get("sort", "attention")
    show = request.args.get("show", "all")
    rows = tracking.arrange_dashboard(data["couples"], sort, show == "attention")
    total = len(rows)
    if request.args.get("all") != "1":
        rows = rows[:PAGE]  # the ones that need attention come first; the rest on request
    for row in rows:
        row["trend"] = Markup(tracking.trend_svg(row["weekly"]))  # noqa: S704 (our own SVG)
    return render_template(
        "homework/dashboard.html",
        therapist=me,
        rows=rows,
        data=data,
        sort=sort if sort in tracking.DASHBOARD_SORTS else "attention",
        show=show,
        total=total,
    )


def healthz():
    """Say whether the database answers and its migrations are current; no login, no PHI."""
    from pathlib import Path

    from ..backups import newest_backup_age_hours

    age = newest_backup_age_hours(Path(current_app.config["HOMEWORK_BACKUP_DIR"]))
    body = {
        "status": "ok",
        "database": "ok",
        "migrations": "current",
        "newest_backup_age_hours": round(age, 2) if age is not None else None,
    }
    status = 200
    try:
        db = storage.get_db()
        db.execute("SELECT 1").fetchone()
        _, pending = storage.migration_status(db)
        if pending:
            body.update(status="degraded", migrations="pending", pending=pending)
            status = 503
    except Exception as exc:  # any failure to reach the database is the answer itself
        current_app.logger.warning("healthz: database unreachable: %s", exc)
        body.update(status="down", database="unreachable")
        status = 503
    return jsonify(body), status

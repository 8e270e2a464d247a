"""Dashboard and health check."""

from flask import Blueprint, current_app, jsonify, render_template

from .. import storage
from . import current_therapist, login_required


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "dashboard", dashboard)
    bp.add_url_rule("/healthz", "healthz", healthz)


@login_required
def dashboard():
    return render_template("homework/dashboard.html", therapist=current_therapist())


def healthz():
    """Say whether the database answers and its migrations are current; no login, no PHI."""
    body = {"status": "ok", "database": "ok", "migrations": "current"}
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

"""Dashboard and health check."""

from datetime import date

from flask import Blueprint, current_app, jsonify, render_template, request
from flask_babel import get_locale
from markupsafe import Markup

from .. import schema, storage
from ..dashboard import (
    DASHBOARD_SORTS,
    KEPT_THERAPISTS,
    arrange_dashboard,
    dashboard_version,
    gather,
    row_key,
    trend_svg,
)
from ..recently_used import RecentlyUsed
from ..storage import get_db
from .access import current_therapist, login_required


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/", "dashboard", dashboard)
    bp.add_url_rule("/healthz", "healthz", healthz)


PAGE = 25


@login_required
def dashboard():
    me = current_therapist()
    db = get_db()
    sort = request.args.get("sort", "attention")
    sort = sort if sort in DASHBOARD_SORTS else "attention"
    show = "attention" if request.args.get("show") == "attention" else "all"
    everyone = request.args.get("all") == "1"
    # The version is read before the data: a change landing in between makes the next
    # request render again, never serves an old page as new.
    key = (
        dashboard_version(db, me.id),
        getattr(db, "_homework_identity", None),  # a restored file counts afresh
        date.today(),
        sort,
        show,
        everyone,
        str(get_locale()),
        me.is_admin,
    )
    cache = dashboard_cache()
    body = cache.get(me.id, key)
    if body is None:
        body = _dashboard_body(db, me, sort, show, everyone)
        cache.put(me.id, body, key)
    return render_template("homework/dashboard.html", therapist=me, body=body)


def _dashboard_body(db, me, sort: str, show: str, everyone: bool) -> Markup:
    stall_after = int(current_app.config["HOMEWORK_STALL_AFTER_MISSED"])
    state = current_app.extensions["homework"]
    kept = state.extra.setdefault("dashboard_figures", RecentlyUsed(KEPT_THERAPISTS))
    data = gather(db, me.id, date.today(), stall_after=stall_after, kept=kept)
    rows = arrange_dashboard(data["couples"], sort, show == "attention")
    total = len(rows)
    if not everyone:
        rows = rows[:PAGE]  # the ones that need attention come first; the rest on request
    _render_rows(me.id, data["couples"], rows)
    return Markup(  # noqa: S704 (a template we render, autoescaped)
        render_template(
            "homework/_dashboard.html",
            is_admin=me.is_admin,
            rows=rows,
            data=data,
            sort=sort,
            show=show,
            everyone=everyone,
            total=total,
        )
    )


def _render_rows(therapist_id: int, couples: list[dict], shown: list[dict]) -> None:
    """Give each shown row its `html`: kept from an earlier render while the couple's row
    reads the same (see dashboard.row_key), else rendered now. After a check-in, one
    couple's row is rendered again, not every row on the page; the therapist's other
    couples' rows stay kept for the next page that shows them."""
    state = current_app.extensions["homework"]
    store = state.extra.setdefault("dashboard_rows", RecentlyUsed(KEPT_THERAPISTS))
    kept = store.get(therapist_id) or {}
    language = str(get_locale())
    macro = None
    fresh = {}
    for row in shown:
        key = row_key(row, language)
        found = kept.get(row["id"])
        if found is None or found[0] != key:
            if macro is None:
                template = current_app.jinja_env.get_template("homework/_dashboard_row.html")
                macro = template.make_module().couple_row
            trend = Markup(trend_svg(row["weekly"]))  # noqa: S704 (our own SVG)
            found = (key, macro(row, trend))
        fresh[row["id"]] = found
        row["html"] = found[1]
    if fresh.keys() - kept.keys() or any(fresh[c] is not kept.get(c) for c in fresh):
        current = {r["id"] for r in couples}
        store.put(therapist_id, {c: v for c, v in {**kept, **fresh}.items() if c in current})


def dashboard_cache() -> RecentlyUsed[int, Markup]:
    """This app's newest rendered dashboard per therapist, kept under the key it was
    rendered for (one app's cache is not another's)."""
    state = current_app.extensions["homework"]
    return state.extra.setdefault("dashboards", RecentlyUsed(KEPT_THERAPISTS))


def healthz():
    """Say whether the database answers, takes a write, has its migrations current and
    room on its disk; no login, no PHI."""
    from pathlib import Path

    from ..backups import newest_backup_age_hours

    cfg = current_app.config
    age = newest_backup_age_hours(Path(cfg["HOMEWORK_BACKUP_DIR"]))
    body = {
        "status": "ok",
        "database": "ok",
        "migrations": "current",
        "disk": "ok",
        "newest_backup_age_hours": round(age, 2) if age is not None else None,
    }
    status = 200
    try:
        db = storage.get_db()
        _, pending = schema.migration_status(db)
        if pending:
            body.update(status="degraded", migrations="pending", pending=pending)
            status = 503
        else:
            storage.probe_write(db)
    except Exception as exc:  # any failure to reach or write the database is the answer
        kind = storage.request_fault(exc)
        if isinstance(exc, storage.DatabaseLocked) or storage.is_locked_error(exc):
            kind = "busy"
        current_app.logger.warning("healthz: database %s: %s", kind or "unreachable", exc)
        body.update(status="down", database=kind or "unreachable")
        status = 503
    try:
        free = storage.free_disk_mb(cfg["HOMEWORK_DATABASE"])
    except OSError:
        free = None
    body["disk_free_mb"] = round(free, 1) if free is not None else None
    if body["database"] == "ok":
        from ..reminders.outbox import health as reminder_health

        # Failing reminders are the admin's to see; they do not make the server unhealthy.
        body["reminders"] = reminder_health(db)
    if free is None or free < float(cfg["HOMEWORK_MIN_FREE_DISK_MB"]):
        body.update(status="down", disk="low" if free is not None else "unreadable")
        status = 503
    headers = {"Retry-After": "60"} if status == 503 else {}
    return jsonify(body), status, headers

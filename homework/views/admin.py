"""An admin's couple pages, in both modes: reassign couples between therapists, erase one."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from .. import couples
from ..erasure import erase_couple as erase
from ..forms import ActionForm, HostReassignForm, ReassignForm, parse_id
from ..handout_cache import cache_root
from ..state import erasure_ledger, get_state
from ..storage import get_db
from .access import admin_required, current_therapist


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/admin/couples", "admin_couples", admin_couples, methods=["GET", "POST"])
    bp.add_url_rule(
        "/admin/couples/<homework_rowid:couple_id>/erase",
        "erase_couple",
        erase_couple,
        methods=["GET", "POST"],
    )


def _therapists() -> tuple[dict, list[SelectChoice]]:
    """Names by id, and the therapists a couple may move to (standalone accounts only)."""
    from .. import accounts

    users = accounts.list_users(get_db())
    names = {u["id"]: u["name"] for u in users}
    return names, [SelectChoice(u["id"], u["name"]) for u in users if not u["disabled"]]


@admin_required
def admin_couples():
    """Reassign couples between therapists. Shows labels and owners only: no notes."""
    db = get_db()
    if get_state().standalone:
        names, choices = _therapists()
        form = ReassignForm()
        form.owner_id.choices = choices
    else:
        # The host keeps its people: homework knows a therapist only by the host's id.
        names, form = {}, HostReassignForm()
    if request.method == "POST":
        couple_id = parse_id(request.form.get("couple_id"))
        if not form.validate_on_submit() or couple_id is None:
            if form.csrf_token.errors or couple_id is None:
                abort(400)
            flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
            return redirect(url_for("homework.admin_couples"))
        new_owner = form.owner_id.data
        try:
            couples.reassign(db, couple_id, new_owner, current_therapist().id)
        except LookupError:
            abort(404)
        flash(_("Couple reassigned to %(name)s.", name=names.get(new_owner, new_owner)), "info")
        return redirect(url_for("homework.admin_couples"))
    return render_template(
        "homework/admin_couples.html",
        couples=couples.list_couples(db, None) + couples.list_couples(db, None, archived=True),
        names=names,
        form=form,
    )


@admin_required
def erase_couple(couple_id: int):
    """Erase a couple for good, after the admin types the couple's label."""
    db = get_db()
    row = db.execute("SELECT id, label FROM couples WHERE id = ?", [couple_id]).fetchone()
    if row is None:
        abort(404)
    form = ActionForm()
    error = None
    if form.validate_on_submit():
        if request.form.get("confirm", "").strip() != row["label"]:
            error = _("Type the label exactly as shown to confirm. Nothing was erased.")
        else:
            erase(db, couple_id, current_therapist().id, erasure_ledger(), cache_root())
            flash(_("The couple and everything of theirs are erased."), "info")
            return redirect(url_for("homework.admin_couples"))
    elif request.method == "POST":
        abort(400)
    return render_template("homework/erase.html", couple=row, form=form, error=error), (
        400 if error else 200
    )

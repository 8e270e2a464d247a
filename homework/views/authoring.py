"""Writing, adapting and sharing assignments in the browser (see homework/authoring/)."""

import functools
from datetime import date

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from .. import accounts, audit, authoring, issuing
from ..authoring import draft as drafts
from ..authoring import packs, store
from ..authoring import problems as draft_problems
from ..forms import ActionForm, parse_id
from ..handouts import long_date
from ..library import CATEGORIES, WHO
from ..snapshots import as_markup
from ..state import current_brand, get_state
from ..storage import get_db, write
from .access import admin_required, current_therapist, login_required
from .documents import pdf_or_error

APPROACHES = (
    "Gottman-informed", "EFT-informed", "Imago-informed", "PREP-informed", "behavioural",
    "narrative", "mindfulness-based", "solution-focused",
)  # fmt: skip


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/authoring", "authoring", index)
    bp.add_url_rule("/authoring/new", "authoring_new", new, methods=["POST"])
    bp.add_url_rule(
        "/library/<assignment_id>/copy", "authoring_copy", copy_assignment, methods=["POST"]
    )
    bp.add_url_rule(
        "/library/<assignment_id>/edit", "authoring_edit", edit_published, methods=["POST"]
    )
    bp.add_url_rule(
        "/authoring/drafts/<homework_rowid:draft_id>",
        "authoring_draft",
        editor,
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/authoring/drafts/<homework_rowid:draft_id>/preview", "authoring_preview", preview
    )
    bp.add_url_rule(
        "/authoring/drafts/<homework_rowid:draft_id>/sample.pdf", "authoring_sample", sample_pdf
    )
    bp.add_url_rule(
        "/authoring/drafts/<homework_rowid:draft_id>/discard",
        "authoring_discard",
        discard,
        methods=["POST"],
    )
    bp.add_url_rule("/authoring/export.zip", "authoring_export", export)
    bp.add_url_rule("/authoring/import", "authoring_import", import_pack, methods=["POST"])
    bp.add_url_rule("/authoring/settings", "authoring_settings", settings, methods=["POST"])


def author_required(view):
    """Admins, and therapists when the clinic lets them write; 404 for everyone else."""

    @login_required
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        me = current_therapist()
        if not store.may_author(get_db(), me.is_admin):
            abort(404)
        return view(*args, **kwargs)

    return wrapped


def _own_draft(draft_id: int) -> store.Draft:
    """The draft, if it is the current person's (or they are an admin); 404 otherwise."""
    db = get_db()
    found = store.get_draft(db, draft_id)
    me = current_therapist()
    if found is None:
        abort(404)
    if found.author_id != me.id and not me.is_admin:
        audit.record_denied(db, "draft", draft_id, me.id)
        abort(404)
    return found


@author_required
def index():
    return _index_page()


def _index_page(**extra) -> str:
    """The authoring page: drafts, published assignments, sharing, who may write."""
    db = get_db()
    me = current_therapist()
    return render_template(
        "homework/authoring.html",
        drafts=store.list_drafts(db, me.id, everyone=me.is_admin),
        published=store.list_published(db),
        therapists_author=store.therapists_may_author(db),
        form=ActionForm(),
        names=accounts.names_by_id(get_db(), get_state().standalone),
        library=get_state().library,
        **extra,
    )


def _check_form() -> None:
    if not ActionForm().validate_on_submit():
        abort(400)


@author_required
def new():
    _check_form()
    draft_id = store.new_draft(get_db(), current_therapist().id, drafts.blank())
    return redirect(url_for("homework.authoring_draft", draft_id=draft_id))


@author_required
def copy_assignment(assignment_id: str):
    """Start a draft from any library assignment ("Make a clinic copy")."""
    _check_form()
    original = get_state().library.get(assignment_id)
    if original is None:
        abort(404)
    if original.pack.id == store.CLINIC_PACK.id:
        return edit_published(assignment_id)
    data = drafts.from_assignment(original)
    data["placement"] = "replace"
    draft_id = store.new_draft(get_db(), current_therapist().id, data, copied_from=original.id)
    flash(_("A clinic copy of “%(title)s” is ready to change.", title=original.title), "info")
    return redirect(url_for("homework.authoring_draft", draft_id=draft_id))


@author_required
def edit_published(assignment_id: str):
    """Open the draft of an authored assignment's next version (start it if none)."""
    _check_form()
    db = get_db()
    row = store.authored_row(db, assignment_id)
    current = get_state().library.get(assignment_id)
    if row is None or current is None or current.pack.id != store.CLINIC_PACK.id:
        abort(404)
    draft_id = store.draft_for(db, row["id"])
    me = current_therapist()
    if draft_id is not None:
        found = store.get_draft(db, draft_id)
        if found.author_id != me.id and not me.is_admin:
            flash(_("Someone else is already writing the next version of this one."), "error")
            return redirect(url_for("homework.assignment", assignment_id=assignment_id))
    else:
        draft_id = store.new_draft(
            db, me.id, drafts.from_assignment(current), authored_id=row["id"]
        )
    return redirect(url_for("homework.authoring_draft", draft_id=draft_id))


def _editor_page(draft: store.Draft, data: dict, errors: dict, problems: list, status: int = 200,
                 revision: int | None = None, notice: str = ""):  # fmt: skip
    library = get_state().library
    original = library.get(draft.copied_from) if draft.copied_from else None
    return (
        render_template(
            "homework/authoring_editor.html",
            draft=draft,
            data=data,
            errors=errors,
            problems=problems,
            revision=draft.revision if revision is None else revision,
            notice=notice,
            original=original,
            publish_id=authoring.publish_id(draft),
            categories=CATEGORIES,
            approaches=APPROACHES,
            whos=WHO,
            field_types=drafts.FIELD_TYPES,
            caution_flags=drafts.CAUTION_FLAGS,
            involves=drafts.INVOLVES,
            sections=drafts.SECTION_TITLES,
            field_label=draft_problems.field_label,
        ),
        status,
    )


def _problems(draft: store.Draft) -> tuple[dict, list]:
    _assignment, problems = authoring.check_draft(draft, get_state().library, get_db())
    data = authoring.pinned(draft)
    return draft_problems.problems_by_field(data, problems), problems


@author_required
def editor(draft_id: int):
    draft = _own_draft(draft_id)
    if request.method == "GET":
        errors, problems = _problems(draft)
        shown = draft.revision > 1 or request.args.get("checked") == "1"
        return _editor_page(draft, draft.data, errors if shown else {}, problems if shown else [])
    _check_form()
    db = get_db()
    data = drafts.from_form(request.form)
    revision = parse_id(request.form.get("revision")) or 0
    action = request.form.get("action", "save")
    big = draft_problems.too_big(data)
    if big is not None:
        return _editor_page(draft, data, {big[0]: [big[1]]}, [], 400, revision=revision)
    structural = drafts.apply_action(data, action)
    try:
        store.save_draft(db, draft.id, data, revision, current_therapist().id)
    except store.StaleDraft:
        latest = store.get_draft(db, draft.id)
        notice = _(
            "This draft changed since you opened it (someone else saved it, or you did in "
            "another tab), so your changes were not saved. They are shown below, nothing is "
            "lost. To keep the other changes, open the draft in a new tab and copy yours "
            "over. To replace the other changes with yours, save again."
        )
        return _editor_page(
            latest or draft, data, {}, [], 409, revision=latest.revision, notice=notice
        )
    except LookupError:
        abort(404)
    draft = store.get_draft(db, draft.id)
    if action == "publish":
        return _publish(draft)
    if action == "preview":
        return redirect(url_for("homework.authoring_preview", draft_id=draft.id))
    anchor = f"#{action.split(':')[1]}" if structural else ""
    if not structural:
        flash(_("Draft saved."), "info")
    return redirect(url_for("homework.authoring_draft", draft_id=draft.id, checked=1) + anchor)


def _publish(draft: store.Draft):
    me = current_therapist()
    db = get_db()
    try:
        version = authoring.publish(draft, get_state().library, db, me.id)
    except authoring.NotPublished as exc:
        data = authoring.pinned(draft)
        errors = draft_problems.problems_by_field(data, exc.problems)
        notice = _(
            "Not published: fix the problems listed below first. Your draft is saved.",
        )
        return _editor_page(draft, draft.data, errors, exc.problems, 400, notice=notice)
    except store.StaleDraft:
        flash(_("This draft changed since you opened it; nothing was published."), "error")
        return redirect(url_for("homework.authoring_draft", draft_id=draft.id))
    # Redirected: the next request, in whichever process, merges the new library.
    assignment_id = authoring.publish_id(draft)
    flash(_("Published as version %(n)d. It is in the library now.", n=version), "info")
    return redirect(url_for("homework.assignment", assignment_id=assignment_id))


def _sample_snapshot(draft: store.Draft) -> dict | None:
    assignment, _problems = draft_problems.check(
        authoring.pinned(draft), store.CLINIC_PACK, version=draft.next_version
    )
    if assignment is None:
        return None
    brand = current_brand()
    me = current_therapist()
    return issuing.sample_snapshot(
        assignment, date.today(), me.name, me.printed_line, brand.name, brand.crisis, long_date
    )


@author_required
def preview(draft_id: int):
    draft = _own_draft(draft_id)
    snapshot = _sample_snapshot(draft)
    return render_template(
        "homework/authoring_preview.html",
        draft=draft,
        snapshot=as_markup(snapshot) if snapshot else None,
    ), (200 if snapshot else 400)


@author_required
def sample_pdf(draft_id: int):
    draft = _own_draft(draft_id)
    snapshot = _sample_snapshot(draft)
    if snapshot is None:
        return redirect(url_for("homework.authoring_preview", draft_id=draft.id))
    return pdf_or_error([snapshot])


@author_required
def discard(draft_id: int):
    _check_form()
    draft = _own_draft(draft_id)
    store.discard_draft(get_db(), draft.id, current_therapist().id)
    flash(_("Draft discarded."), "info")
    return redirect(url_for("homework.authoring"))


@author_required
def export():
    db = get_db()
    data = packs.export_zip(db, current_brand().name)
    with write(db):
        audit.record(db, "assignment.exported", actor_id=current_therapist().id)
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": 'attachment; filename="clinic-assignments.zip"'},
    )


@author_required
def import_pack():
    _check_form()
    upload = request.files.get("pack")
    if upload is None or not upload.filename:
        flash(_("Choose a pack zip to import."), "error")
        return redirect(url_for("homework.authoring"))
    data = upload.stream.read(packs.MAX_ZIP_BYTES + 1)
    try:
        done = packs.import_zip(get_db(), data, current_therapist().id)
    except packs.ImportRefused as exc:
        return _index_page(import_problems=exc.problems), 400
    added = [f"{i} (v{v})" for i, v in done if v]
    same = [i for i, v in done if not v]
    if added:
        flash(_("Imported: %(list)s.", list=", ".join(added)), "info")
    if same:
        flash(_("Already here, unchanged: %(list)s.", list=", ".join(same)), "info")
    return redirect(url_for("homework.authoring"))


@admin_required
def settings():
    _check_form()
    allowed = request.form.get("therapists_author") == "1"
    store.set_therapists_may_author(get_db(), allowed, current_therapist().id)
    flash(
        _("Therapists may now write assignments.")
        if allowed
        else _("Only admins may write assignments now."),
        "info",
    )
    return redirect(url_for("homework.authoring"))

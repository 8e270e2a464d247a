"""Standalone accounts: login, logout, own password, and the admin's therapist list."""

import time

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from wtforms import SelectChoice

from .. import accounts, couples
from ..forms import (
    ActionForm,
    ChangePasswordForm,
    CodeForm,
    DisableTwoFactorForm,
    LoginForm,
    ProfileForm,
    ReassignForm,
    UserForm,
)
from ..passwords import generate_password, verify_password
from ..storage import get_db
from . import admin_required, current_therapist, login_required, safe_next


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
    bp.add_url_rule("/account", "account", account, methods=["GET", "POST"])
    bp.add_url_rule("/login/code", "login_code", login_code, methods=["GET", "POST"])
    bp.add_url_rule("/account/two-factor", "two_factor", two_factor, methods=["GET", "POST"])
    bp.add_url_rule("/admin/require-two-factor", "require_2fa", require_2fa, methods=["POST"])
    bp.add_url_rule(
        "/account/password", "change_password", change_password, methods=["GET", "POST"]
    )
    bp.add_url_rule("/admin/users", "users", users, methods=["GET", "POST"])
    bp.add_url_rule("/admin/users/<id:user_id>", "edit_user", edit_user, methods=["GET", "POST"])
    bp.add_url_rule("/admin/couples", "admin_couples", admin_couples, methods=["GET", "POST"])
    bp.add_url_rule(
        "/admin/couples/<id:couple_id>/erase",
        "erase_couple",
        erase_couple,
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/admin/users/<id:user_id>/<any(disable, enable, reset):action>",
        "user_action",
        user_action,
        methods=["POST"],
    )


def login():
    form = LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
        if current_therapist() is not None:
            return redirect(safe_next(form.next.data))
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            user = accounts.authenticate(
                db, form.email.data, form.password.data, accounts.client_ip()
            )
        except accounts.LoginRefused as exc:
            flash(str(exc), "error")
            status = 429 if isinstance(exc, accounts.LoginThrottled) else 200
        else:
            if user.two_factor:
                # Password right; the session starts only after the second step.
                session.clear()
                session["2fa"] = {"uid": user.id, "at": time.time(), "next": form.next.data or ""}
                return redirect(url_for("homework.login_code"))
            accounts.start_session(db, user)
            return redirect(safe_next(form.next.data))
    elif request.method == "POST":
        status = 400
    expired = g.get("homework_session_expired", False)
    return (
        render_template("homework/login.html", form=form, expired=expired),
        status,
    )


def logout():
    form = ActionForm()
    if form.validate_on_submit():
        accounts.end_session(get_db())
        flash(_("You are signed out."), "info")
        return redirect(url_for("homework.login"))
    abort(400)


@login_required
def account():
    me = current_therapist()
    db = get_db()
    form = ProfileForm(data=accounts.get_user(db, me.id))
    if form.validate_on_submit():
        accounts.update_profile(
            db,
            me.id,
            name=form.name.data,
            credentials=form.credentials.data or "",
            contact=form.contact.data or "",
        )
        flash(_("Saved. New handouts will print these details."), "info")
        return redirect(url_for("homework.account"))
    return render_template("homework/account.html", form=form), 400 if form.errors else 200


@login_required
def change_password():
    form = ChangePasswordForm()
    me = current_therapist()
    if form.validate_on_submit():
        db = get_db()
        user = accounts.get_user(db, me.id)
        if not verify_password(user["password_hash"], form.current.data):
            form.current.errors.append(_("That is not your current password."))
        else:
            try:
                accounts.set_password(
                    db,
                    me.id,
                    form.password.data,
                    actor_id=me.id,
                    keep_session=accounts.current_session_token(),
                )
            except accounts.AccountError as exc:
                form.password.errors.append(str(exc))
            else:
                flash(_("Your password is changed. Other devices were signed out."), "info")
                return redirect(url_for("homework.dashboard"))
    return render_template("homework/password.html", form=form)


@admin_required
def users():
    db = get_db()
    form = UserForm()
    new_password = shown_for = None
    if form.validate_on_submit():
        new_password = generate_password()
        try:
            accounts.create_user(
                db,
                form.email.data,
                form.name.data,
                form.role.data,
                new_password,
                actor_id=current_therapist().id,
            )
        except accounts.AccountError as exc:
            form.email.errors.append(str(exc))
            new_password = None
        else:
            flash(_("Account created for %(email)s.", email=form.email.data), "info")
            shown_for = form.email.data
            form = UserForm(formdata=None)
    return _users_page(form, new_password, shown_for)


def _users_page(form: UserForm, new_password: str | None, shown_for: str | None):
    from ..twofactor import required

    return render_template(
        "homework/users.html",
        require_2fa=required(get_db()),
        users=accounts.list_users(get_db()),
        form=form,
        actions=ActionForm(),
        new_password=new_password,
        shown_for=shown_for,
    )


@admin_required
def edit_user(user_id: int):
    db = get_db()
    user = accounts.get_user(db, user_id)
    if user is None:
        abort(404)
    form = UserForm(data=user)
    if form.validate_on_submit():
        try:
            accounts.update_user(
                db,
                user_id,
                name=form.name.data,
                role=form.role.data,
                credentials=form.credentials.data or "",
                contact=form.contact.data or "",
                actor_id=current_therapist().id,
            )
        except accounts.AccountError as exc:
            form.role.errors.append(str(exc))
        else:
            flash(_("Saved."), "info")
            return redirect(url_for("homework.users"))
    return render_template("homework/user_edit.html", form=form, user=user, actions=ActionForm())


@admin_required
def user_action(user_id: int, action: str):
    db = get_db()
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    user = accounts.get_user(db, user_id)
    if user is None:
        abort(404)
    me = current_therapist()
    try:
        if action == "reset":
            new_password = generate_password()
            accounts.set_password(db, user_id, new_password, actor_id=me.id)
            return _users_page(UserForm(formdata=None), new_password, user["email"])
        accounts.set_disabled(db, user_id, action == "disable", actor_id=me.id)
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    else:
        flash(
            _("Account disabled; its sessions ended.")
            if action == "disable"
            else _("Account enabled."),
            "info",
        )
    return redirect(url_for("homework.users"))


@admin_required
def admin_couples():
    """Reassign couples between therapists. Shows labels and owners only: no notes."""
    db = get_db()
    therapists = [u for u in accounts.list_users(db) if not u["disabled"]]
    names = {u["id"]: u["name"] for u in accounts.list_users(db)}
    form = ReassignForm()
    form.owner_id.choices = [SelectChoice(u["id"], u["name"]) for u in therapists]
    if request.method == "POST":
        couple_id = request.form.get("couple_id", "")
        if not form.validate_on_submit() or not couple_id.isdigit():
            abort(400)
        try:
            couples.reassign(db, int(couple_id), form.owner_id.data, current_therapist().id)
        except LookupError:
            abort(404)
        flash(_("Couple reassigned to %(name)s.", name=names[form.owner_id.data]), "info")
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
    from ..erasure import erase_couple as erase
    from ..extension import erasure_ledger

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
            erase(db, couple_id, current_therapist().id, erasure_ledger())
            flash(_("The couple and everything of theirs are erased."), "info")
            return redirect(url_for("homework.admin_couples"))
    elif request.method == "POST":
        abort(400)
    return render_template("homework/erase.html", couple=row, form=form, error=error), (
        400 if error else 200
    )


SECOND_STEP_SECONDS = 300


def login_code():
    """The login's second step: a code from the authenticator app, or a recovery code."""
    pending = session.get("2fa")
    if not pending or time.time() - pending.get("at", 0) > SECOND_STEP_SECONDS:
        session.pop("2fa", None)
        flash(_("Please sign in again."), "info")
        return redirect(url_for("homework.login"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        db = get_db()
        try:
            kind = accounts.check_second_factor(
                db, pending["uid"], form.code.data, accounts.client_ip()
            )
        except accounts.LoginRefused as exc:
            form.code.errors.append(str(exc))
            status = 429 if isinstance(exc, accounts.LoginThrottled) else 400
        else:
            user = accounts.get_user(db, pending["uid"])
            accounts.start_session(
                db,
                accounts.SessionUser(
                    user["id"], user["name"], user["email"], user["role"], two_factor=True
                ),
            )
            if kind == "recovery":
                flash(
                    _(
                        "You used a recovery code; each works once. "
                        "Set up a new app if you lost yours."
                    ),
                    "info",
                )
            return redirect(safe_next(pending.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("homework/login_code.html", form=form), status


@login_required
def two_factor():
    """Set up or turn off two-factor login for one's own account."""
    from .. import twofactor
    from ..extension import current_brand

    db = get_db()
    me = current_therapist()
    user = accounts.get_user(db, me.id)
    enabled = bool(user["totp_secret"])
    code_form, off_form = CodeForm(prefix="on"), DisableTwoFactorForm(prefix="off")
    code_form.code.description = _("The 6 digits your authenticator app shows now.")
    if not enabled and code_form.validate_on_submit():
        codes = twofactor.finish_enrolment(db, me.id, code_form.code.data)
        if codes:
            return render_template("homework/recovery_codes.html", codes=codes)
        code_form.code.errors.append(
            _("That code is not right. Try the newest code from your app.")
        )
    if enabled and off_form.validate_on_submit():
        if verify_password(user["password_hash"], off_form.password.data):
            twofactor.disable(db, me.id)
            flash(_("Two-factor login is off."), "info")
            return redirect(url_for("homework.account"))
        off_form.password.errors.append(_("That is not your password."))
    context = {"enabled": enabled, "code_form": code_form, "off_form": off_form}
    if enabled:
        context["codes_left"] = twofactor.recovery_codes_left(db, me.id)
    else:
        secret = twofactor.start_enrolment(db, me.id)
        context.update(
            secret=secret, qr=twofactor.qr_code(secret, user["email"], current_brand().name)
        )
    errors = code_form.errors or off_form.errors
    return render_template("homework/two_factor.html", **context), 400 if errors else 200


@admin_required
def require_2fa():
    from .. import twofactor

    if not ActionForm().validate_on_submit():
        abort(400)
    value = request.form.get("required") == "1"
    twofactor.set_required(get_db(), value, current_therapist().id)
    flash(
        _("Two-factor login is now required of everyone.")
        if value
        else _("Two-factor login is now optional."),
        "info",
    )
    return redirect(url_for("homework.users"))

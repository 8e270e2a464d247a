"""Standalone accounts: login, logout, own password, and the admin's therapist list."""

import time

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh

from .. import accounts, submissions
from ..forms import (
    ActionForm,
    ChangePasswordForm,
    CodeForm,
    DisableTwoFactorForm,
    EnrolTwoFactorForm,
    LoginForm,
    ProfileForm,
    UserForm,
)
from ..passwords import generate_password
from ..storage import get_db
from .access import admin_required, current_therapist, login_required, safe_next


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
    bp.add_url_rule(
        "/admin/users/<homework_rowid:user_id>", "edit_user", edit_user, methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/admin/users/<homework_rowid:user_id>/<any(disable, enable, reset, 'reset-2fa'):action>",
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
    status, headers = 200, {}
    if form.validate_on_submit():
        db = get_db()
        try:
            user = accounts.authenticate(
                db, form.email.data, form.password.data, accounts.client_ip()
            )
        except accounts.LoginRefused as exc:
            flash(str(exc), "error")
            if isinstance(exc, accounts.LoginThrottled):
                status, headers = 429, {"Retry-After": str(exc.retry_after)}
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
    return render_template("homework/login.html", form=form, expired=expired), status, headers


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
            language=form.language.data or "",
        )
        refresh()  # the message below in the language just chosen
        flash(_("Saved. New handouts will print these details."), "info")
        return redirect(url_for("homework.account"))
    return render_template("homework/account.html", form=form), 400 if form.errors else 200


@login_required
def change_password():
    form = ChangePasswordForm()
    me = current_therapist()
    if form.validate_on_submit():
        db = get_db()
        if not accounts.password_matches(db, me.id, form.current.data):
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


# A password made for someone else is shown once, on the page the POST redirects to:
# kept in the signed session cookie for that one request, like a flashed message.
NEW_PASSWORD = "homework_new_password"  # noqa: S105 (a session key)


@admin_required
def users():
    db = get_db()
    form = UserForm()
    if form.validate_on_submit():
        me = current_therapist().id
        try:
            key = submissions.checked_key(request.form.get(submissions.FIELD))
            done = submissions.used_result(db, me, key, "account.new")
            if done is None:
                new_password = generate_password()
                email, hashed = accounts.prepare_user(
                    form.email.data, form.name.data, form.role.data, new_password
                )

                def add(db) -> str:
                    accounts.insert_user(db, email, form.name.data, form.role.data, hashed, me)
                    return url_for("homework.users")

                created = submissions.run_once(db, me, key, "account.new", add)
                done = created.result
                if created.first:
                    typed = form.email.data.strip()  # as typed; sign-in ignores case
                    session[NEW_PASSWORD] = {"email": typed, "password": new_password}
                    flash(_("Account created for %(email)s.", email=typed), "info")
                    return redirect(done)
            flash(
                _(
                    "This account was created already; nothing was created twice. If you did "
                    "not note its password, reset it."
                ),
                "info",
            )
            return redirect(done)
        except (accounts.AccountError, submissions.SubmissionError) as exc:
            form.email.errors.append(str(exc))
    return _users_page(form), 400 if form.errors else 200


def _users_page(form: UserForm):
    from ..twofactor import required

    shown = session.pop(NEW_PASSWORD, None) if request.method == "GET" else None
    return render_template(
        "homework/users.html",
        require_2fa=required(get_db()),
        users=accounts.list_users(get_db()),
        form=form,
        actions=ActionForm(),
        new_password=shown["password"] if shown else None,
        shown_for=shown["email"] if shown else None,
    )


def _reset_password(user: dict):
    """An admin's reset: once per form key; the new password shows on the users page."""
    db = get_db()
    me = current_therapist().id
    key = submissions.checked_key(request.form.get(submissions.FIELD))
    if submissions.used_result(db, me, key, "account.reset") is None:
        new_password = generate_password()
        hashed = accounts.prepare_password(db, user["id"], new_password)

        def reset(db) -> str:
            accounts.store_password(db, user["id"], hashed, actor_id=me)
            return url_for("homework.users")

        if submissions.run_once(db, me, key, "account.reset", reset).first:
            session[NEW_PASSWORD] = {"email": user["email"], "password": new_password}
            return redirect(url_for("homework.users"))
    flash(
        _(
            "This password was reset already; nothing was changed twice. If you did not note "
            "the new one, reset it again."
        ),
        "info",
    )
    return redirect(url_for("homework.users"))


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
            return _reset_password(user)
        if action == "reset-2fa":
            accounts.reset_second_factor(db, user_id, actor_id=me.id)
        else:
            accounts.set_disabled(db, user_id, action == "disable", actor_id=me.id)
    except (accounts.AccountError, submissions.SubmissionError) as exc:
        flash(str(exc), "error")
    else:
        flash(
            {
                "disable": _("Account disabled; its sessions ended."),
                "enable": _("Account enabled."),
                "reset-2fa": _(
                    "Two-factor login is off for %(email)s and their sessions ended; they can "
                    "set it up again after signing in.",
                    email=user["email"],
                ),
            }[action],
            "info",
        )
    return redirect(url_for("homework.users"))


SECOND_STEP_SECONDS = 300


def login_code():
    """The login's second step: a code from the authenticator app, or a recovery code."""
    pending = session.get("2fa")
    if not pending or time.time() - pending.get("at", 0) > SECOND_STEP_SECONDS:
        session.pop("2fa", None)
        flash(_("Please sign in again."), "info")
        return redirect(url_for("homework.login"))
    form = CodeForm()
    status, headers = 200, {}
    if form.validate_on_submit():
        db = get_db()
        try:
            kind = accounts.check_second_factor(
                db, pending["uid"], form.code.data, accounts.client_ip()
            )
        except accounts.LoginRefused as exc:
            form.code.errors.append(str(exc))
            status = 400
            if isinstance(exc, accounts.LoginThrottled):
                status, headers = 429, {"Retry-After": str(exc.retry_after)}
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
    return render_template("homework/login_code.html", form=form), status, headers


@login_required
def two_factor():
    """Set up or turn off two-factor login for one's own account."""
    from .. import twofactor
    from ..state import current_brand

    db = get_db()
    me = current_therapist()
    user = accounts.get_user(db, me.id)
    enabled = bool(user["totp_secret"])
    code_form, off_form = EnrolTwoFactorForm(prefix="on"), DisableTwoFactorForm(prefix="off")
    if not enabled and code_form.validate_on_submit():
        # The password again: a session left open (or stolen) must not be able to put its
        # own phone on the account and lock the owner out.
        if not accounts.password_matches(db, me.id, code_form.password.data):
            code_form.password.errors.append(_("That is not your password."))
        else:
            codes = twofactor.finish_enrolment(db, me.id, code_form.code.data)
            if codes:
                return render_template("homework/recovery_codes.html", codes=codes)
            code_form.code.errors.append(
                _("That code is not right. Try the newest code from your app.")
            )
    if enabled and off_form.validate_on_submit():
        if accounts.password_matches(db, me.id, off_form.password.data):
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

"""A minimal practice-management app that mounts homework at /homework.

It has its own users, login and layout; homework asks it who is logged in through the
`current_therapist` hook and sends anonymous visitors to its login page.

Run it (from the repository root, after `make run` or `make test` made .venv):

    FLASK_APP=examples/host_app/host_app.py .venv/bin/flask homework migrate
    FLASK_APP=examples/host_app/host_app.py .venv/bin/flask run

Sign in as dr.rivera@example.invalid with the password printed at start-up.
"""

import os
import secrets
from pathlib import Path

from flask import Flask, redirect, render_template, request, session, url_for
from flask_wtf import CSRFProtect, FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from homework import Homework, hookimpl

# The host's own accounts (a real app keeps these in its database).
THERAPISTS = {
    "dr.rivera@example.invalid": {"id": 501, "name": "Dr. Sol Rivera", "is_admin": True},
    "dr.okafor@example.invalid": {"id": 502, "name": "Dr. Ife Okafor", "is_admin": False},
}


class HostIdentity:
    """Tell homework who is logged in to the host app, and where its login page is."""

    @hookimpl
    def current_therapist(self):
        email = session.get("host_user")
        return THERAPISTS.get(email)

    @hookimpl
    def login_url(self, next_url):
        return url_for("host_login", next=next_url)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def create_app(instance_path: str | None = None, config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=instance_path or str(Path(__file__).parent / "instance"),
        template_folder="templates",
    )
    app.config.update(
        SECRET_KEY=os.environ.get("HOST_SECRET_KEY") or secrets.token_hex(32),
        HOST_PASSWORD=os.environ.get("HOST_PASSWORD") or secrets.token_urlsafe(12),
        HOMEWORK_BASE_TEMPLATE="host/base.html",
    )
    app.config.update(config or {})
    if not os.environ.get("HOST_PASSWORD") and not (config or {}).get("HOST_PASSWORD"):
        print(f"host app: sign in with password {app.config['HOST_PASSWORD']}")
    CSRFProtect(app)
    Homework(app, url_prefix="/homework", plugins=[HostIdentity()])

    @app.route("/")
    def host_home():
        return render_template("host/home.html", user=THERAPISTS.get(session.get("host_user")))

    @app.route("/login", methods=["GET", "POST"])
    def host_login():
        form = LoginForm()
        error = None
        if form.validate_on_submit():
            email = form.email.data.strip().lower()
            if email in THERAPISTS and form.password.data == app.config["HOST_PASSWORD"]:
                session.clear()
                session["host_user"] = email
                target = request.args.get("next", "")
                # Only paths of this app (the same rule homework uses for its own login).
                ok = target.startswith("/") and not target.startswith("//") and "\\" not in target
                return redirect(target if ok else url_for("host_home"))
            error = "Email or password is not right."
        return render_template("host/login.html", form=form, error=error)

    @app.route("/logout", methods=["POST"])
    def host_logout():
        session.clear()
        return redirect(url_for("host_login"))

    return app

"""A practice-management app of the kind homework is mounted into, for the tests.

Its own users (Flask-Login, Flask-SQLAlchemy, string ids), a global CSRFProtect, its own
blueprints, a Bootstrap-style layout with an inline <style> and <script>, and its own
security-header middleware. It mounts homework at /homework the way the README says.
"""

import uuid
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect, FlaskForm
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.routing import UUIDConverter
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from homework import Forbidden, Homework, hookimpl

PASSWORD = "host password for tests"
HERE = Path(__file__).parent

# name, email, role; ids are UUIDs, as many host apps use.
PEOPLE = [
    ("Dr. Mara Quill", "mara@harbour.invalid", "therapist"),
    ("Dr. Ivo Brandt", "ivo@harbour.invalid", "therapist"),
    ("Lena Osei", "admin@harbour.invalid", "admin"),
    ("Pat Desk", "desk@harbour.invalid", "frontdesk"),
    ("Vic Viewer", "viewer@harbour.invalid", "viewer"),
]


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):
    id: Mapped[str] = mapped_column(primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(unique=True)
    display_name: Mapped[str]
    role: Mapped[str]
    password_hash: Mapped[str]


class HostIdentity:
    """The host's answer to "who is this?": therapists and admins only."""

    @hookimpl
    def current_therapist(self):
        if not current_user.is_authenticated:
            return None
        if current_user.role not in ("therapist", "admin"):
            raise Forbidden()
        return {
            "id": current_user.get_id(),
            "name": current_user.display_name,
            "is_admin": current_user.role == "admin",
        }


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


auth = Blueprint("auth", __name__)
schedule = Blueprint("schedule", __name__)


@auth.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    error = None
    if current_user.is_authenticated and request.method == "GET":
        # What real hosts do, and what made homework loop for a signed-in non-therapist.
        return redirect(_safe(request.args.get("next")))
    if form.validate_on_submit():
        user = db.session.scalar(db.select(User).filter_by(email=form.email.data.lower()))
        if user and check_password_hash(user.password_hash, form.password.data):
            login_user(user)
            return redirect(_safe(request.args.get("next")))
        error = "Email or password is not right."
    return render_template("host/login.html", form=form, error=error)


def _safe(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("schedule.home")


@auth.route("/logout", methods=["POST"])
def logout():
    logout_user()
    return redirect(url_for("auth.login"))


@schedule.route("/")
@login_required
def home():
    return render_template("host/home.html")


@schedule.route("/patients/<id:patient_id>")
@login_required
def patient(patient_id: uuid.UUID):
    return {"patient": str(patient_id)}


@schedule.route("/legacy-report", methods=["POST"])
@login_required
def legacy_report():
    """Note a visit in the practice's old SQLite file (no error handler of its own)."""
    import sqlite3

    conn = sqlite3.connect(Path(current_app.instance_path) / "legacy.db", timeout=0)
    try:
        with conn:
            conn.execute("INSERT INTO old_visits DEFAULT VALUES")
        return {"rows": conn.execute("SELECT count(*) FROM old_visits").fetchone()[0]}
    finally:
        conn.close()


@schedule.route("/reports")
@login_required
def reports():
    if current_user.role != "admin":
        abort(403)
    return render_template("host/home.html")


def security_headers(app: Flask) -> None:
    """The host's own header policy, applied to every response (its routes and homework's)."""

    @app.after_request
    def set_headers(response):
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        response.headers["X-Host-Policy"] = "harbour"
        return response


def create_app(
    instance_path: str, config: dict | None = None, identity: object | None = None
) -> Flask:
    """Build the host app; `identity` replaces its own identity plugin (README tests)."""
    app = Flask(__name__, instance_path=instance_path, template_folder=str(HERE / "templates"))
    app.config.update(
        SECRET_KEY="host-secret-" + "h" * 40,
        SQLALCHEMY_DATABASE_URI="sqlite:///" + str(Path(app.instance_path) / "host.db"),
        HOMEWORK_BASE_TEMPLATE="host/layout.html",
    )
    app.config.update(config or {})
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    # The host's own `id` converter: its records have UUIDs.
    app.url_map.converters["id"] = UUIDConverter
    db.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "auth.login"
    login_manager.user_loader(lambda user_id: db.session.get(User, user_id))
    if app.config.get("HOST_CSRF_PROTECT", True):
        CSRFProtect(app)
    app.register_blueprint(auth)
    app.register_blueprint(schedule)
    security_headers(app)
    Homework(app, url_prefix="/homework", plugins=[identity or HostIdentity()])
    with app.app_context():
        db.create_all()
        if db.session.scalar(db.select(User).limit(1)) is None:
            hashed = generate_password_hash(PASSWORD)
            for name, email, role in PEOPLE:
                db.session.add(
                    User(email=email, display_name=name, role=role, password_hash=hashed)
                )
            db.session.commit()
    return app


def user_id(app: Flask, email: str) -> str:
    """The host's id (a UUID string) of the person with `email`."""
    with app.app_context():
        return db.session.scalar(db.select(User.id).filter_by(email=email))

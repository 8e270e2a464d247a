"""Flask-WTF forms. Every POST in homework goes through one, so every POST carries CSRF."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .passwords import MAX_LENGTH, MIN_LENGTH


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ActionForm(FlaskForm):
    """A button-only POST (logout, disable, enable): nothing but the CSRF token."""


class UserForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    name = StringField(
        _l("Display name"),
        description=_l("As printed on handouts, e.g. Dr. Ana Ruiz."),
        validators=[DataRequired(), Length(max=120)],
    )
    role = SelectField(
        _l("Role"),
        choices=[SelectChoice("therapist", _l("Therapist")), SelectChoice("admin", _l("Admin"))],
        default="therapist",
    )
    credentials = StringField(
        _l("Credentials line"),
        description=_l("Optional, e.g. LMFT, licence 12345."),
        validators=[Length(max=200)],
    )
    contact = StringField(
        _l("Contact line"),
        description=_l("Optional, e.g. a direct phone number or email for clients."),
        validators=[Length(max=200)],
    )


class NewPasswordForm(FlaskForm):
    password = PasswordField(
        _l("New password"),
        description=_l(
            "At least %(min)d characters; a passphrase of a few words works well.", min=MIN_LENGTH
        ),
        validators=[DataRequired(), Length(max=MAX_LENGTH)],
    )
    confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two entries differ."))],
    )


class ChangePasswordForm(NewPasswordForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=1024)])

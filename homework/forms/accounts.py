"""Forms for accounts: sign-in, users, profile, passwords, two-factor login."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    EmailField,
    HiddenField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    EqualTo,
    Length,
)

from ..i18n import language_choices
from ..passwords import MAX_LENGTH, MIN_LENGTH
from .base import (
    HomeworkForm,
    offered_language,
)


class LoginForm(HomeworkForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class UserForm(HomeworkForm):
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


class ProfileForm(HomeworkForm):
    name = StringField(
        _l("Display name"),
        description=_l("As printed on handouts, e.g. Dr. Ana Ruiz."),
        validators=[DataRequired(), Length(max=120)],
    )
    credentials = StringField(
        _l("Credentials line"), description=_l("Optional, e.g. LMFT."), validators=[Length(max=200)]
    )
    contact = StringField(
        _l("Contact line"),
        description=_l("Optional; printed on handouts, e.g. a direct phone number."),
        validators=[Length(max=200)],
    )
    language = SelectField(
        _l("Language"),
        description=_l("The language homework speaks to you. Handouts follow each partner's."),
        choices=lambda: [("", _l("The language of your browser")), *language_choices()],
        validate_choice=False,
        validators=[offered_language],
    )


class CodeForm(HomeworkForm):
    code = StringField(
        _l("Code"),
        description=_l("The 6 digits your authenticator app shows now, or a recovery code."),
        validators=[DataRequired(), Length(max=40)],
    )


class EnrolTwoFactorForm(HomeworkForm):
    code = StringField(
        _l("Code"),
        description=_l("The 6 digits your authenticator app shows now."),
        validators=[DataRequired(), Length(max=40)],
    )
    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=1024)])


class DisableTwoFactorForm(HomeworkForm):
    password = PasswordField(_l("Your password"), validators=[DataRequired(), Length(max=1024)])


class NewPasswordForm(HomeworkForm):
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

"""Flask-WTF forms. Every POST in homework goes through one, so every POST carries CSRF.
One module per noun; this package exports them all."""

from .accounts import (
    ChangePasswordForm,
    CodeForm,
    DisableTwoFactorForm,
    EnrolTwoFactorForm,
    LoginForm,
    NewPasswordForm,
    ProfileForm,
    UserForm,
)
from .base import (
    NAME_LIMIT,
    ActionForm,
    AsciiIntegerField,
    HomeworkForm,
    MultiCheckboxField,
    csrf_refused,
    parse_id,
    strip_controls,
)
from .couples import CoupleForm, HostReassignForm, ReassignForm
from .personalize import (
    AssignForm,
    MergeText,
    personalization_form_class,
    personalization_form_data,
    personalization_from_form,
)
from .practice import BrandForm, CheckinForm, PrivateNoteForm, SessionPracticeForm

__all__ = [
    "ActionForm",
    "AsciiIntegerField",
    "AssignForm",
    "BrandForm",
    "ChangePasswordForm",
    "CheckinForm",
    "CodeForm",
    "CoupleForm",
    "DisableTwoFactorForm",
    "EnrolTwoFactorForm",
    "HomeworkForm",
    "HostReassignForm",
    "LoginForm",
    "MergeText",
    "MultiCheckboxField",
    "NAME_LIMIT",
    "NewPasswordForm",
    "PrivateNoteForm",
    "ProfileForm",
    "ReassignForm",
    "SessionPracticeForm",
    "UserForm",
    "csrf_refused",
    "parse_id",
    "personalization_form_class",
    "personalization_form_data",
    "personalization_from_form",
    "strip_controls",
]

"""What every homework form shares: CSRF, text cleaned of control characters, ASCII-only
numbers, WTForms messages in the app's language."""

import functools
import unicodedata

from babel import support
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
)
from wtforms.i18n import messages_path
from wtforms.meta import DefaultMeta
from wtforms.validators import (
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from ..i18n import supported_languages


@functools.lru_cache(maxsize=32)
def _wtforms_catalog(locale: str) -> support.Translations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _WTFormsTranslations:
    """WTForms' own messages in the request's language. Each catalog is read once per
    process; Flask-WTF's own translations read it from disk again on every request."""

    def gettext(self, string: str) -> str:
        return _wtforms_catalog(str(get_locale())).ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return _wtforms_catalog(str(get_locale())).ungettext(singular, plural, n)


_translations = _WTFormsTranslations()


def strip_controls(value: object) -> object:
    """Drop control characters (NUL, ESC, DEL, ...) from typed text; keep newlines and tabs.

    They print as nothing or as garbage, and an ESC sequence in an export can drive the
    terminal that shows it."""
    if not isinstance(value, str):
        return value
    value = value.replace("\r\n", "\n")
    return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def parse_id(value: str | None) -> int | None:
    """An id typed as ASCII digits (not "٣" or "²", which int() and isdigit() accept)."""
    if value and len(value) <= 19 and value.isascii() and value.isdigit():
        return int(value)
    return None


def _ascii_int(value: object) -> int:
    """A SelectField coerce: like int(), but only for ASCII digits."""
    if isinstance(value, int):
        return value
    number = parse_id(str(value))
    if number is None:
        raise ValueError("not an id")
    return number


class AsciiIntegerField(IntegerField):
    """An IntegerField that accepts ASCII digits only (with an optional minus sign)."""

    def process_formdata(self, valuelist: list) -> None:
        if valuelist and not (valuelist[0] == "" or _is_ascii_number(valuelist[0])):
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value."))
        super().process_formdata(valuelist)


def _is_ascii_number(text: str) -> bool:
    text = text.strip()
    return parse_id(text.removeprefix("-")) is not None


class _CleanTextMeta:
    """Form meta that strips control characters from every text field as it is read
    (passwords are left alone, and fields that refuse control characters keep refusing)."""

    def bind_field(self, form, unbound_field, options):
        cls = unbound_field.field_class
        refuses = _no_control_chars in unbound_field.kwargs.get("validators", ())
        if (
            issubclass(cls, StringField)
            and not issubclass(cls, PasswordField | HiddenField)
            and not refuses
        ):
            options = {
                **options,
                "filters": (strip_controls, *unbound_field.kwargs.get("filters", ())),
            }
        return super().bind_field(form, unbound_field, options)


class HomeworkForm(FlaskForm):
    """The base of every homework form: Flask-WTF's CSRF, with cached translations."""

    class Meta(_CleanTextMeta, FlaskForm.Meta):
        # Always on: a host's WTF_CSRF_ENABLED = False (or no CSRFProtect at all) must not
        # leave homework's forms unprotected.
        csrf = True

        def get_translations(self, form: Form) -> object:
            if not current_app.config.get("WTF_I18N_ENABLED", True):
                return DefaultMeta.get_translations(self, form)
            return _translations


def csrf_refused(form: FlaskForm) -> bool:
    """True when `form` failed only because of its CSRF token (expired or missing)."""
    return bool(form.csrf_token.errors)


class ActionForm(HomeworkForm):
    """A button-only POST (logout, disable, enable): nothing but the CSRF token."""


class MultiCheckboxField(SelectMultipleField):
    """Several choices, shown as checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _no_control_chars(form, field) -> None:
    # Bidi overrides and friends are allowed (names in any script); other control
    # characters have no place in a printed name.
    if any(unicodedata.category(ch) == "Cc" for ch in field.data or ""):
        raise ValidationError(_l("Remove the invisible control characters."))


NAME_LIMIT = 100


def offered_language(form, field) -> None:
    """A language field holds one of homework's language codes, or nothing."""
    if field.data and field.data not in supported_languages():
        raise ValidationError(_l("Choose one of the languages in the list; nothing was changed."))

"""Forms for couples: adding and editing one, and giving one to another therapist."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    Form,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Length,
    ValidationError,
)

from ..couples import FLAGS, SCREEN_FLAG, SCREENING
from ..i18n import language_choices
from .base import (
    NAME_LIMIT,
    HomeworkForm,
    MultiCheckboxField,
    _ascii_int,
    _no_control_chars,
    offered_language,
)


def _language_choices() -> list[tuple[str, str]]:
    return [("", _l("Not set")), *language_choices()]


class CoupleForm(HomeworkForm):
    label = StringField(
        _l("Label for your list"),
        description=_l("Only you see this, e.g. 'Tuesday 5pm couple' or initials."),
        validators=[DataRequired(), Length(max=NAME_LIMIT), _no_control_chars],
    )
    partner_a = StringField(
        _l("Partner A's name"),
        description=_l("First name or alias, as printed on the handout."),
        validators=[DataRequired(), Length(max=NAME_LIMIT), _no_control_chars],
    )
    partner_a_pronouns = StringField(_l("Pronouns"), validators=[Length(max=40), _no_control_chars])
    partner_a_language = SelectField(
        _l("Preferred language"),
        description=_l("Handouts, reminders and the check-in page use it."),
        choices=_language_choices,
        validate_choice=False,
        validators=[offered_language],
    )
    partner_b = StringField(
        _l("Partner B's name"),
        description=_l("First name or alias, as printed on the handout."),
        validators=[DataRequired(), Length(max=NAME_LIMIT), _no_control_chars],
    )
    partner_b_pronouns = StringField(_l("Pronouns"), validators=[Length(max=40), _no_control_chars])
    partner_b_language = SelectField(
        _l("Preferred language"),
        description=_l("Handouts, reminders and the check-in page use it."),
        choices=_language_choices,
        validate_choice=False,
        validators=[offered_language],
    )
    notes = TextAreaField(
        _l("Private notes"),
        description=_l("Only you see these. They are never printed or shown to the couple."),
        validators=[Length(max=20_000)],
    )
    screening = RadioField(
        _l("Screening for partner violence"),
        description=_l(
            "Until a couple is screened, every exercise with conflict, touch or vulnerability "
            "shows its violence-or-fear caution. A flagged couple gets no homework to do "
            "together unless you record an individual safety assessment."
        ),
        choices=[SelectChoice(key, label) for key, label in SCREENING.items()],
        default="not-screened",
    )
    flags = MultiCheckboxField(
        _l("Other safety flags"),
        description=_l("Assignments with matching cautions will warn you before you assign them."),
        choices=[SelectChoice(key, label) for key, label in FLAGS.items() if key != SCREEN_FLAG],
        validate_choice=True,
    )


class ReassignForm(HomeworkForm):
    owner_id = SelectField(_l("Therapist"), coerce=_ascii_int)


def _host_therapist_id(form: Form, field: StringField) -> None:
    from ..identity import therapist_id

    try:
        field.data = therapist_id((field.data or "").strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            _l("Enter the therapist's id in your practice app (1 to 200 characters).")
        ) from exc


class HostReassignForm(HomeworkForm):
    """Plugin mode: the new therapist by the host's own id (homework has no staff list)."""

    owner_id = StringField(_l("Therapist id"), validators=[_host_therapist_id])

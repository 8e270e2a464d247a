"""Flask-WTF forms. Every POST in homework goes through one, so every POST carries CSRF."""

import functools
import unicodedata
from datetime import date

from babel import support
from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.i18n import messages_path
from wtforms.meta import DefaultMeta
from wtforms.validators import (
    DataRequired,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from . import merge
from .branding import HEX_COLOUR, WORDS
from .couples import FLAGS, SCREEN_FLAG, SCREENING
from .issuing import BARRIER_KEYS, Personalization, default_due
from .library import Assignment
from .library import Field as LibraryField
from .passwords import MAX_LENGTH, MIN_LENGTH


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


class LoginForm(HomeworkForm):
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class ActionForm(HomeworkForm):
    """A button-only POST (logout, disable, enable): nothing but the CSRF token."""


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
    partner_a_language = StringField(
        _l("Preferred language"), validators=[Length(max=40), _no_control_chars]
    )
    partner_b = StringField(
        _l("Partner B's name"),
        description=_l("First name or alias, as printed on the handout."),
        validators=[DataRequired(), Length(max=NAME_LIMIT), _no_control_chars],
    )
    partner_b_pronouns = StringField(_l("Pronouns"), validators=[Length(max=40), _no_control_chars])
    partner_b_language = StringField(
        _l("Preferred language"), validators=[Length(max=40), _no_control_chars]
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
    from .identity import therapist_id

    try:
        field.data = therapist_id((field.data or "").strip())
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            _l("Enter the therapist's id in your practice app (1 to 200 characters).")
        ) from exc


class HostReassignForm(HomeworkForm):
    """Plugin mode: the new therapist by the host's own id (homework has no staff list)."""

    owner_id = StringField(_l("Therapist id"), validators=[_host_therapist_id])


class MergeText:
    """Validator: free text may use only the allowed {{ merge fields }}, no template tags."""

    def __init__(self, allowed: tuple[str, ...]):
        self.allowed = allowed

    def __call__(self, form, field) -> None:
        problems = merge.merge_problems(field.data or "", self.allowed)
        if problems:
            raise ValidationError("; ".join(problems))


def _list_items(value: str) -> list[str]:
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def _list_limits(form, field) -> None:
    items = _list_items(field.data)
    if len(items) > 20:
        raise ValidationError(_l("Keep the list to 20 items or fewer."))
    if any(len(item) > 200 for item in items):
        raise ValidationError(_l("Keep each item under 200 characters."))


def _assignment_field(f: LibraryField, label: object = None):
    """A form field for one of the assignment's declared fields, typed and validated."""
    required = [InputRequired()] if f.required else [Optional()]
    common = {"label": label or f.label, "description": f.help}
    if f.type == "integer":
        return AsciiIntegerField(
            validators=[
                *([InputRequired()] if f.required else [Optional()]),
                NumberRange(f.min, f.max),
            ],
            default=f.default,
            **common,
        )
    if f.type == "choice":
        return SelectField(
            choices=[SelectChoice(o, o) for o in f.options],
            default=f.default,
            validators=required,
            **common,
        )
    if f.type == "choices":
        return MultiCheckboxField(
            choices=[SelectChoice(o, o) for o in f.options], default=f.default or [], **common
        )
    if f.type == "date":
        return DateField(
            validators=required, default=f.default and date.fromisoformat(f.default), **common
        )
    if f.type == "list":
        return TextAreaField(
            validators=[*required, _list_limits],
            default="\n".join(f.default or []),
            **{**common, "description": f.help or _l("One item per line.")},
        )
    if f.type == "long_text":
        return TextAreaField(validators=[*required, Length(max=2000)], default=f.default, **common)
    return StringField(validators=[*required, Length(max=200)], default=f.default, **common)


def personalization_form_class(
    assignment: Assignment, today: date, names: tuple[str, str] = ("A", "B")
) -> type[Form]:
    """Build the personalization form for one assignment: its declared fields plus the
    common part (note, dates, frequency, steps and prompts, step wording, barrier plan)
    and the built-in safety choices (who goes first, stop signal, keep for session).
    `names` are the partners' names, for the labels of per-partner fields."""
    allowed = assignment.allowed_fields
    free_text = MergeText(allowed)
    attrs: dict = {"Meta": _CleanTextMeta}
    for f in assignment.fields:
        if f.per_partner:
            for suffix, partner in zip(("a", "b"), names, strict=True):
                label = _l("%(label)s (%(name)s)", label=f.label, name=partner)
                attrs[f"field_{f.name}_{suffix}"] = _assignment_field(f, label)
        else:
            attrs[f"field_{f.name}"] = _assignment_field(f)
    if assignment.turns:
        attrs["first_speaker"] = RadioField(
            _l("Who goes first"),
            choices=[
                SelectChoice("turns", _l("Take turns: whoever went second last time goes first")),
                SelectChoice("a", names[0]),
                SelectChoice("b", names[1]),
            ],
            default="turns",
            validators=[InputRequired(_l("Choose who goes first."))],
        )
    if assignment.stop_signal:
        stop = merge.stop_defaults()
        attrs["stop_words"] = StringField(
            _l("Stop words"),
            description=_l("What either of you says to pause, agreed in session."),
            default=stop["stop_words"],
            validators=[
                InputRequired(_l("Give the words that pause the exercise.")),
                Length(max=80),
            ],
        )
        attrs["stop_sign"] = StringField(
            _l("Stop sign without words"),
            description=_l("For when words are hard, e.g. a double tap on the arm."),
            default=stop["stop_sign"],
            validators=[InputRequired(_l("Give a sign that pauses the exercise.")), Length(max=80)],
        )
    attrs["keep_for_session"] = TextAreaField(
        _l("Keep for session"),
        description=_l("Topics not to take on at home; printed in their own box. One per line."),
        validators=[_list_limits, free_text],
    )
    attrs["note"] = TextAreaField(
        _l("A personal note to the couple"),
        description=_l(
            "Printed at the top of the handout. You can use {{ partner_a }} and {{ partner_b }}."
        ),
        validators=[Length(max=2000), free_text],
    )
    attrs["start_date"] = DateField(_l("Start"), default=today, validators=[InputRequired()])
    attrs["due_date"] = DateField(
        _l("Due (usually your next session)"),
        default=default_due(today, assignment.weeks),
        validators=[InputRequired()],
    )
    attrs["per_week"] = AsciiIntegerField(
        _l("Times a week"),
        default=assignment.per_week,
        validators=[InputRequired(), NumberRange(1, 14)],
    )
    attrs["weeks"] = AsciiIntegerField(
        _l("For how many weeks"),
        default=assignment.weeks,
        validators=[InputRequired(), NumberRange(1, 12)],
    )
    steps = assignment.sections["steps"]
    attrs["steps"] = MultiCheckboxField(
        _l("Steps to include"),
        choices=[SelectChoice(str(i), str(i + 1)) for i in range(len(steps))],
        default=[str(i) for i in range(len(steps))],
    )
    for i, step in enumerate(steps):
        locked = i in assignment.locked_steps
        attrs[f"step_{i}"] = TextAreaField(
            _l("Step %(n)d", n=i + 1),
            default=step,
            validators=[Length(max=1000), free_text],
            render_kw={"readonly": True} if locked else None,
        )
    prompts = assignment.sections.get("prompts", ())
    attrs["prompts"] = MultiCheckboxField(
        _l("Questions to include"),
        choices=[SelectChoice(str(i), p) for i, p in enumerate(prompts)],
        default=[str(i) for i in range(len(prompts))],
    )
    labels = {
        "when": _l("When you will do it"),
        "where": _l("Where"),
        "obstacles": _l("What might get in the way"),
        "backup": _l("Backup plan"),
    }
    for key, label in labels.items():
        attrs[f"barrier_{key}"] = StringField(label, validators=[Length(max=300), free_text])

    def validate(self, extra_validators=None) -> bool:
        ok = Form.validate(self, extra_validators)
        if (
            self.start_date.data
            and self.due_date.data
            and self.due_date.data < self.start_date.data
        ):
            self.due_date.errors.append(_l("The due date is before the start."))
            ok = False
        if not self.steps.data:
            self.steps.errors.append(_l("Keep at least one step."))
            ok = False
        for i in sorted(assignment.locked_steps):
            # The page cannot untick or edit a locked step; a request that does anyway
            # was not made by the page, and is refused whole.
            if str(i) not in (self.steps.data or []):
                self.steps.errors.append(
                    _l("Step %(n)d is a safety step and cannot be left out.", n=i + 1)
                )
                ok = False
            wording = self[f"step_{i}"]
            if wording.data is not None and wording.data.strip() != steps[i].strip():
                wording.errors = [
                    *wording.errors,
                    _l("Step %(n)d is a safety step; its wording cannot be changed.", n=i + 1),
                ]
                ok = False
        return ok

    attrs["validate"] = validate
    return type(f"Personalize_{assignment.id.replace('-', '_')}", (Form,), attrs)


def personalization_from_form(form: Form, assignment: Assignment) -> Personalization:
    """Read a validated personalization form into a Personalization."""
    fields = {}
    for f in assignment.fields:
        for name in f.merge_names:
            value = form[f"field_{name}"].data
            fields[name] = _list_items(value) if f.type == "list" else value
    steps = tuple(sorted(int(i) for i in form.steps.data))
    safety = {"keep_for_session": tuple(_list_items(form.keep_for_session.data))}
    if assignment.turns:
        safety["first_speaker"] = form.first_speaker.data
    if assignment.stop_signal:
        safety["stop_words"] = form.stop_words.data.strip()
        safety["stop_sign"] = form.stop_sign.data.strip()
    return Personalization(
        **safety,
        fields=fields,
        note=form.note.data or "",
        start_date=form.start_date.data,
        due_date=form.due_date.data,
        per_week=form.per_week.data,
        weeks=form.weeks.data,
        steps=steps,
        prompts=tuple(sorted(int(i) for i in form.prompts.data)),
        step_text={i: form[f"step_{i}"].data for i in steps},
        barrier={k: form[f"barrier_{k}"].data or "" for k in BARRIER_KEYS},
    )


def personalization_form_data(p: Personalization, assignment: Assignment) -> dict:
    """Turn a stored Personalization back into form data (to revise an issued item)."""
    data = {
        "note": p.note,
        "start_date": p.start_date,
        "due_date": p.due_date,
        "per_week": p.per_week,
        "weeks": p.weeks,
        "steps": [str(i) for i in p.steps],
        "prompts": [str(i) for i in p.prompts],
    }
    for f in assignment.fields:
        for name in f.merge_names:
            value = p.fields.get(name)
            if f.type == "list":
                value = "\n".join(value or [])
            elif f.type == "date" and isinstance(value, str):
                value = date.fromisoformat(value)
            data[f"field_{name}"] = value
    data["keep_for_session"] = "\n".join(p.keep_for_session)
    if assignment.turns:
        data["first_speaker"] = p.first_speaker
    if assignment.stop_signal:
        stop = merge.stop_defaults()
        data["stop_words"] = p.stop_words or stop["stop_words"]
        data["stop_sign"] = p.stop_sign or stop["stop_sign"]
    for i, text in p.step_text.items():
        data[f"step_{i}"] = text
    for k in BARRIER_KEYS:
        data[f"barrier_{k}"] = p.barrier.get(k, "")
    return data


class AssignForm(HomeworkForm):
    """The outer form of the assign page: CSRF, what to do, and the caution confirmation."""

    action = HiddenField(default="preview")
    confirm_cautions = BooleanField(
        _l("I have read the cautions above and still want to give this to this couple.")
    )
    confirm_assessment = BooleanField(
        _l(
            "I have done an individual safety assessment with each partner, and I judge this "
            "homework safe for them to do together."
        )
    )


class BrandForm(HomeworkForm):
    name = StringField(_l("Clinic name"), validators=[DataRequired(), Length(max=120)])
    logo = FileField(
        _l("Logo"),
        description=_l("PNG or JPEG, up to 2 MB. It is checked, resized and stored as PNG."),
    )
    remove_logo = BooleanField(_l("Remove the current logo"))
    primary = StringField(
        _l("Main colour"),
        description=_l("Hex, e.g. #2f6f73. Used for headings and the letterhead rule."),
        validators=[
            DataRequired(),
            Regexp(HEX_COLOUR, message=_l("Use a hex colour like #2f6f73.")),
        ],
    )
    accent = StringField(
        _l("Accent colour"),
        description=_l("Hex, e.g. #a0523a."),
        validators=[
            DataRequired(),
            Regexp(HEX_COLOUR, message=_l("Use a hex colour like #a0523a.")),
        ],
    )
    address = StringField(_l("Address"), validators=[Length(max=200)])
    phone = StringField(_l("Phone"), validators=[Length(max=60)])
    website = StringField(_l("Website"), validators=[Length(max=200)])
    footer = StringField(_l("Footer line"), validators=[Length(max=200)])
    confidentiality = StringField(_l("Confidentiality notice"), validators=[Length(max=300)])
    crisis = StringField(
        _l("Crisis resources line"),
        description=_l(
            "e.g. a local crisis line. Printed in bold on every page. Required: no handout "
            "can be issued until it is set."
        ),
        validators=[Length(max=300)],
    )
    paper = SelectField(
        _l("Paper size"), choices=[SelectChoice("letter", "US Letter"), SelectChoice("a4", "A4")]
    )
    word = SelectField(
        _l("What you call it"),
        choices=[SelectChoice(w, w.capitalize()) for w in WORDS],
    )


class CheckinForm(HomeworkForm):
    """A couple's check-in: one practice of one item."""

    item = SelectField(_l("Which practice"), coerce=_ascii_int, validate_choice=True)
    practiced_on = DateField(_l("When"), validators=[InputRequired(_l("Choose the day."))])
    who = RadioField(_l("Who practised"), validators=[InputRequired(_l("Choose who practised."))])
    outcome = RadioField(
        _l("How far did you get"),
        choices=[
            SelectChoice("done", _l("Done")),
            SelectChoice("partly", _l("Partly")),
            SelectChoice("not", _l("Not this time")),
        ],
        validators=[InputRequired(_l("Choose how far you got."))],
    )
    helpfulness = RadioField(
        _l("How helpful did it feel? (optional)"),
        choices=[SelectChoice(str(n), str(n)) for n in range(1, 6)],
        validators=[Optional()],
    )
    reflection = TextAreaField(
        _l("A few words about it (optional)"),
        validators=[Length(max=2000, message=_l("Please keep it under 2,000 characters."))],
    )
    private = RadioField(
        _l("Who can read your words"),
        choices=[
            SelectChoice("shared", _l("Both of us and our therapist")),
            SelectChoice("private", _l("Only our therapist")),
        ],
        default="shared",
    )


class PrivateNoteForm(HomeworkForm):
    """One partner's note to the therapist, sent from the check-in page."""

    written_by = RadioField(
        _l("Who is writing"),
        default="",
        validators=[Optional()],
    )
    body = TextAreaField(
        _l("Your note"),
        validators=[
            DataRequired(_l("Write your note first.")),
            Length(max=4000, message=_l("Please keep it under 4,000 characters.")),
        ],
    )


class SessionPracticeForm(HomeworkForm):
    """The therapist records a practice in session, in a couple of clicks."""

    who = SelectField(_l("Who"), validate_choice=True)
    practiced_on = DateField(_l("Day"), validators=[InputRequired()])
    outcome = SelectField(
        _l("How far"),
        choices=[
            SelectChoice("done", _l("Done")),
            SelectChoice("partly", _l("Partly")),
            SelectChoice("not", _l("Not done")),
        ],
    )

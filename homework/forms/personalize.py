"""The personalization form, built per assignment from its fields, and the issue form."""

from datetime import date

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    Form,
    HiddenField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from .. import merge
from ..issuing import BARRIER_KEYS, Personalization, default_due
from ..library import Assignment
from ..library import Field as LibraryField
from .base import (
    AsciiIntegerField,
    HomeworkForm,
    MultiCheckboxField,
    _CleanTextMeta,
)


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

"""Forms for practice and the clinic: the couple's check-in, a private note, an in-session
record, and the clinic's branding."""

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
)

from ..branding import HEX_COLOUR, WORDS
from .base import (
    HomeworkForm,
    _ascii_int,
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
    # Who a reflection is for, in plain words: the page never shows it back, so the question
    # is only whether the therapist may raise it with both partners.
    private = RadioField(
        _l("Who are these words for?"),
        choices=[
            SelectChoice("shared", _l("Our therapist, to talk about with both of us")),
            SelectChoice("private", _l("Only our therapist, in private")),
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

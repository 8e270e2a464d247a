"""The forms of the reminder pages: consent per partner, and the admin's test e-mail."""

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import HomeworkForm


class ContactsForm(HomeworkForm):
    """Each partner's address and whether they agreed to reminders."""

    email_a = StringField(_l("E-mail address"), validators=[Length(max=254)])
    consent_a = BooleanField(_l("This partner agreed to e-mail reminders"))
    email_b = StringField(_l("E-mail address"), validators=[Length(max=254)])
    consent_b = BooleanField(_l("This partner agreed to e-mail reminders"))


class TestMailForm(HomeworkForm):
    """Where the admin's test e-mail goes."""

    to = StringField(
        _l("Send a test e-mail to"),
        description=_l("Your own address: the test says nothing about any couple."),
        validators=[DataRequired(_l("Write the address the test should go to.")), Length(max=254)],
    )

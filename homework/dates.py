"""Dates as people read them: one friendly, locale-aware format for every page and PDF.

"Thu, Dec 3, 2026" in English, "Thu, 3 Dec 2026" in British English, "Do., 3. Dez. 2026"
in German (the locale's own order, from Babel's CLDR data); a short form, "Dec 3", for
lists within the current year. Exports, CSV and form fields keep ISO dates: those are
for machines, this is for people.
"""

from datetime import UTC, date, datetime
from functools import lru_cache

from babel.dates import format_skeleton
from flask_babel import format_time, get_locale, to_user_timezone

FULL = "yMMMEd"  # weekday, day, month name, year
SHORT = "MMMd"  # day and month name: for dates in the current year
SHORT_WITH_YEAR = "yMMMd"


def _locale() -> str:
    return str(get_locale() or "en")


def as_date(value: date | datetime | str | None) -> date | None:
    """A date from what the database or a form holds: a date, a datetime (in the user's
    time zone), or an ISO string of either; None for nothing."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    if isinstance(value, datetime):
        return to_user_timezone(value if value.tzinfo else value.replace(tzinfo=UTC)).date()
    return value


def friendly_date(
    value: date | datetime | str | None, short: bool = False, today: date | None = None
) -> str:
    """A date as people say it in the current locale; `short` leaves out the weekday, and
    the year when it is this year's. Empty for no date."""
    day = as_date(value)
    if day is None:
        return ""
    if short:
        this_year = day.year == (today or date.today()).year
        skeleton = SHORT if this_year else SHORT_WITH_YEAR
    else:
        skeleton = FULL
    return _formatted(skeleton, day, _locale())


@lru_cache(maxsize=4096)
def _formatted(skeleton: str, day: date, locale: str) -> str:
    # Babel works the pattern out from CLDR data on every call, dearer than the rest of
    # a dashboard row; a page shows the same few dozen dates again and again.
    return format_skeleton(skeleton, day, locale=locale)


def friendly_datetime(value: datetime | str | None) -> str:
    """A moment as people say it: the friendly date and the time in the user's time zone."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{friendly_date(moment)}, {format_time(moment, 'short')}"

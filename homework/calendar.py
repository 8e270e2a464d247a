"""Practice reminders as an iCalendar (RFC 5545) file, built with the `icalendar` library.

The library writes what hand-built files got wrong: CRLF line ends, lines folded at 75
octets (never inside a UTF-8 character), escaped text, and a DTSTAMP in UTC.
"""

from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _

PRODID = "-//homework//between-session practice//EN"
# Evening practice: floating local times (no time zone), so the reminder comes at 7 pm
# wherever the couple's phone is.
REMINDER_AT = time(19, 0)
REMINDER_MINUTES = 30
ALARM_BEFORE = timedelta(minutes=10)


def practice_days(start: date, per_week: int, weeks: int) -> list[tuple[int, int, date]]:
    """(week, n, day): `per_week` days a week for `weeks` weeks, spread over each week."""
    offsets = sorted({round(i * 7 / per_week) for i in range(per_week)})
    return [
        (week, n, start + timedelta(weeks=week, days=offset))
        for week in range(weeks)
        for n, offset in enumerate(offsets)
    ]


def practice_reminders(item: dict, now: datetime | None = None) -> bytes:
    """An iCalendar file with an evening reminder for each planned practice of `item`.

    `item` needs id, title, start_date (ISO), per_week and weeks; `now` (UTC-aware)
    stamps the file and defaults to the current time."""
    # On first use: the library takes 7 MB in every process that imports it; most web
    # processes never hand out a calendar file.
    from icalendar import Alarm, Calendar, Event

    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    summary = _("Practice: %(title)s", title=item["title"])
    days = practice_days(date.fromisoformat(item["start_date"]), item["per_week"], item["weeks"])
    for week, n, day in days:
        begins = datetime.combine(day, REMINDER_AT)
        event = Event()
        # The same UIDs as files handed out before, so a re-import updates, not doubles.
        event.add("uid", f"homework-{item['id']}-{week}-{n}@homework")
        event.add("dtstamp", stamp)
        event.add("dtstart", begins)
        event.add("dtend", begins + timedelta(minutes=REMINDER_MINUTES))
        event.add("summary", summary)
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", -ALARM_BEFORE)
        alarm.add("description", item["title"])
        event.add_component(alarm)
        calendar.add_component(event)
    return calendar.to_ical()

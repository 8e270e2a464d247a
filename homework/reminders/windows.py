"""Planned practice windows: the days between one planned practice and the next.

An item asks for `per_week` practices a week for `weeks` weeks (the same days as its
calendar file). Each planned practice opens a window that lasts until the next one; the
last ends with the plan or on the due date. Reminders and the dashboard's "missed
practices in a row" both count in these windows."""

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from ..calendar import practice_days

# Day names a barrier plan's "when" may name ("Sundays after dinner", "Tue and Thu").
_DAYS = {
    "mon": 0, "monday": 0, "mondays": 0, "tue": 1, "tues": 1, "tuesday": 1, "tuesdays": 1,
    "wed": 2, "wednesday": 2, "wednesdays": 2, "thu": 3, "thur": 3, "thurs": 3,
    "thursday": 3, "thursdays": 3, "fri": 4, "friday": 4, "fridays": 4, "sat": 5,
    "saturday": 5, "saturdays": 5, "sun": 6, "sunday": 6, "sundays": 6,
}  # fmt: skip
_WEEKEND = {"weekend": (5, 6), "weekends": (5, 6)}


@dataclass(frozen=True)
class Window:
    """One planned practice's days, first and last included."""

    start: date
    end: date

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def middle(self) -> date:
        return self.start + timedelta(days=(self.end - self.start).days // 2)


def practice_windows(start: date, due: date, per_week: int, weeks: int) -> list[Window]:
    """Every planned practice window of an item, oldest first, none past its due date."""
    days = [d for _, _, d in practice_days(start, max(1, per_week), max(1, weeks))]
    last = min(start + timedelta(weeks=max(1, weeks), days=-1), due)
    out = []
    for n, day in enumerate(days):
        if day > last:
            break
        end = days[n + 1] - timedelta(days=1) if n + 1 < len(days) else last
        out.append(Window(day, min(end, last)))
    return out


def window_on(windows: list[Window], day: date) -> Window | None:
    """The window that holds `day`, if any."""
    return next((w for w in windows if day in w), None)


def named_weekdays(when: str) -> set[int]:
    """The weekdays (Monday 0) a barrier plan's "when" names, in English."""
    found: set[int] = set()
    for word in re.findall(r"[a-z]+", (when or "").lower()):
        if word in _DAYS:
            found.add(_DAYS[word])
        found.update(_WEEKEND.get(word, ()))
    return found


def reminder_day(window: Window, when: str) -> date:
    """The day to remind in `window`: the first day in it that the plan names, else its
    middle."""
    days = named_weekdays(when)
    day = window.start
    while day <= window.end:
        if day.weekday() in days:
            return day
        day += timedelta(days=1)
    return window.middle


@lru_cache(maxsize=256)
def _planned_offsets(per_week: int, weeks: int) -> tuple[int, ...]:
    """The planned practice days as days after the start (practice_windows' days)."""
    start = date(2000, 1, 3)
    days = practice_days(start, max(1, per_week), max(1, weeks))
    return tuple((d - start).days for _, _, d in days)


def missed_in_a_row_for(
    start: date, due: date, per_week: int, weeks: int, last_practice: date | None, today: date
) -> int:
    """How many planned practices in a row went by, ended before today, with none recorded
    since the last practice: the count of `practice_windows(start, due, per_week, weeks)`
    that ended before today and began after `last_practice`, worked out without building
    the windows (the dashboard asks this for every active item at once).

    Window n starts on planned day n and ends the day before planned day n + 1 (the last
    one on the plan's last day), so both conditions hold for a run of windows: those
    ended before today are the first k, those begun after the last practice all from the
    j-th on."""
    planned = _planned_offsets(per_week, weeks)
    last = min(7 * max(1, weeks) - 1, (due - start).days)  # the plan's last day, relative
    open_ = bisect_right(planned, last)  # windows that begin by then
    before = (today - start).days
    ended = open_ if last < before else min(open_, max(0, bisect_right(planned, before, 1) - 1))
    begun = 0 if last_practice is None else bisect_right(planned, (last_practice - start).days)
    return max(0, ended - min(open_, begun))

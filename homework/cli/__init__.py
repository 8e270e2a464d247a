"""Command line: `homework ...` standalone (homework.console), `flask homework ...` inside a
host app. `commands` is the group both share; each module adds the commands of its noun."""

from . import couples, database, library, reminders
from .common import commands

__all__ = ["commands"]

# The modules above add their commands to the group when imported.
_ = (couples, database, library, reminders)

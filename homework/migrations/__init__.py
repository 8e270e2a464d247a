"""The database's history: every named migration, oldest first. Never edit one that has
shipped; add a new one at the end of recent.py."""

from . import first, later, recent
from .steps import Step

STEPS: list[Step] = first.STEPS + later.STEPS + recent.STEPS

"""Issuing homework: personalize an assignment for one couple, freeze what they are handed.

The snapshot is the exact text the couple gets, rendered once at issue time and stored
with its sha256; the handout page and the PDF print from it, never from the library.
plan.py builds the personalization and the snapshot (and each language copy's choices);
copies.py picks the copies' languages; items.py stores and reads items, and shows a
preview of their copies.
"""

from .copies import copy_languages, partner_languages
from .items import (
    Item,
    active_by_assignment,
    couples_with_active,
    get_homework,
    issue_packet,
    last_homework_id,
    list_for_couple,
    packet_couple,
    packet_items,
    preview_copies,
    revise_homework,
    revisions,
    set_status,
    store_packet,
    store_revision,
)
from .plan import (
    BARRIER_KEYS,
    SNAPSHOT_SCHEMA,
    LockedStepError,
    Personalization,
    build_snapshot,
    canonical,
    default_due,
    default_personalization,
    locked_step_problems,
    merge_values,
    plan_last_day,
    sample_snapshot,
)

__all__ = [
    "BARRIER_KEYS",
    "Item",
    "LockedStepError",
    "Personalization",
    "SNAPSHOT_SCHEMA",
    "active_by_assignment",
    "couples_with_active",
    "build_snapshot",
    "canonical",
    "copy_languages",
    "partner_languages",
    "default_due",
    "default_personalization",
    "get_homework",
    "issue_packet",
    "last_homework_id",
    "list_for_couple",
    "locked_step_problems",
    "merge_values",
    "packet_couple",
    "packet_items",
    "plan_last_day",
    "preview_copies",
    "revise_homework",
    "revisions",
    "sample_snapshot",
    "set_status",
    "store_packet",
    "store_revision",
]

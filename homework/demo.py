"""A demo clinic with invented people, for trying homework out."""

from dataclasses import replace
from datetime import date, timedelta

import sqlite_utils
from flask_babel import format_date

from . import accounts, couples, issuing
from .branding import Brand, load_brand, save_brand
from .library import Library
from .passwords import generate_password

DEMO_CLINIC = "Willow Lane Couples Practice"
# An invented clinic: the address and phone number are placeholders.
DEMO_BRAND = Brand(
    name=DEMO_CLINIC,
    address="14 Willow Lane, Springfield",
    phone="555-0142",
    website="willowlane.example",
    footer="Sessions by appointment, Monday to Saturday",
    crisis="If you feel unsafe or in crisis, call your local emergency number right away.",
)
DEMO_ACCOUNTS = [
    ("admin@demo.invalid", "Clinic Admin", "admin"),
    ("therapist@demo.invalid", "Dr. Noor Halvorsen", "therapist"),
]


def seed_demo(db: sqlite_utils.Database) -> list[str]:
    """Create the demo clinic and accounts that do not exist yet; return lines to print."""
    lines = []
    if not db.execute("SELECT 1 FROM clinic WHERE id = 1").fetchone():
        save_brand(db, DEMO_BRAND, actor_id=None)
    lines.append(f"Demo clinic: {DEMO_CLINIC}")
    for email, name, role in DEMO_ACCOUNTS:
        if db.execute("SELECT 1 FROM users WHERE email = ?", [email]).fetchone():
            lines.append(f"  {role:<9} {email}  (exists already; password unchanged)")
            continue
        password = generate_password()
        accounts.create_user(db, email, name, role, password)
        lines.append(f"  {role:<9} {email}  password: {password}")
    lines.append("Keep these passwords; they are shown only once.")
    return lines


# Invented couples; any likeness to real people is a coincidence.
DEMO_COUPLES = [
    {
        "label": "Tuesday 6pm",
        "partner_a": "Maya",
        "partner_a_pronouns": "she/her",
        "partner_b": "Jonah",
        "partner_b_pronouns": "he/him",
        "notes": "Demo couple. Working on reconnecting after a busy year with a new baby.",
        "screening": "screened",
        "flags": [],
        "homework": [
            (
                "memory-walk",
                "active",
                0,
                {"place": "the harbour path where you had your first date"},
            ),
            ("daily-appreciation", "done", -21, {}),
        ],
    },
    {
        "label": "Thursday 10am",
        "partner_a": "Rosa",
        "partner_a_pronouns": "she/her",
        "partner_b": "Imani",
        "partner_b_pronouns": "she/her",
        "notes": "Demo couple. Frequent escalation around household tasks.",
        "screening": "screened",
        "flags": ["high-conflict"],
        "homework": [
            ("time-out-and-repair", "active", -2, {}),
            ("speaker-listener", "active", -30, {}),
        ],
    },
    {
        "label": "Monday 4pm",
        "partner_a": "Leo",
        "partner_a_pronouns": "he/him",
        "partner_b": "Anders",
        "partner_b_pronouns": "he/him",
        "notes": "Demo couple. Planning a move; want more time together.",
        "screening": "screened",
        "flags": [],
        "homework": [
            ("state-of-us", "active", -3, {}),
            ("gratitude-letter", "withdrawn", -14, {}),
        ],
    },
]


def seed_demo_couples(
    db: sqlite_utils.Database,
    library: Library,
    therapist_email: str,
    checkin: tuple[str, int] | None = None,
) -> list[str]:
    """Give the demo therapist three invented couples with homework in various states."""
    row = db.execute("SELECT id, name FROM users WHERE email = ?", [therapist_email]).fetchone()
    if (
        row is None
        or db.execute("SELECT 1 FROM couples WHERE owner_id = ?", [row["id"]]).fetchone()
    ):
        return []
    therapist_id, therapist_name = row["id"], row["name"]
    brand = load_brand(db)
    clinic = brand.name
    lines = []
    for spec in DEMO_COUPLES:
        couple_id = couples.create_couple(db, therapist_id, spec)
        couple = couples.get_owned_couple(db, couple_id, therapist_id)
        for assignment_id, status, start_offset, overrides in spec["homework"]:
            assignment = library.get(assignment_id)
            if assignment is None:
                continue
            start = date.today() + timedelta(days=start_offset)
            p = issuing.default_personalization(assignment, start, overrides)
            if status == "done":
                p = replace(p, note=f"Thank you both, {couple.partner_a} and {couple.partner_b}!")
            snapshot = issuing.build_snapshot(
                assignment,
                couple,
                p,
                therapist_name,
                clinic,
                lambda d: format_date(d, "full"),
                crisis=brand.crisis,
            )
            _, [hw_id] = issuing.issue_packet(
                db,
                couple,
                therapist_id,
                [issuing.Item(assignment, p, snapshot)],
                list(couple.flags),
                checkin,
            )
            _demo_practice(db, hw_id, couple_id, assignment.who, start)
            if status != "active":
                issuing.set_status(db, {"id": hw_id, "couple_id": couple_id}, status, therapist_id)
        lines.append(f"  couple    {spec['label']}: {spec['partner_a']} and {spec['partner_b']}")
    return lines


DEMO_REFLECTIONS = [
    ("It felt awkward at first, then we laughed about it.", False),
    ("I noticed I wanted to interrupt. I didn't!", False),
    ("I'm not sure we are doing this right.", True),
]


def _demo_practice(db, hw_id: int, couple_id: int, who: str, start: date) -> None:
    """A few invented practice records, so the demo dashboard has something to show."""
    from .tracking import record_practice

    item = {"id": hw_id, "couple_id": couple_id, "start_date": start.isoformat()}
    days = [d for d in range(0, 12, 3) if start + timedelta(days=d) <= date.today()]
    for n, offset in enumerate(days):
        reflection, private = DEMO_REFLECTIONS[n % len(DEMO_REFLECTIONS)] if n < 3 else ("", False)
        record_practice(
            db,
            item,
            practiced_on=start + timedelta(days=offset),
            who=("a", "b")[n % 2] if who == "each partner" else "together",
            outcome=("done", "done", "partly")[n % 3],
            helpfulness=(4, 5, 3)[n % 3],
            reflection=reflection,
            private=private,
            source="checkin" if n % 2 else "session",
        )

"""A demo clinic with invented people, for trying homework out."""

import json

import sqlite_utils

from . import accounts, audit
from .passwords import generate_password
from .storage import write

DEMO_CLINIC = "Willow Lane Couples Practice"
DEMO_ACCOUNTS = [
    ("admin@demo.invalid", "Clinic Admin", "admin"),
    ("therapist@demo.invalid", "Dr. Noor Halvorsen", "therapist"),
]


def seed_demo(db: sqlite_utils.Database) -> list[str]:
    """Create the demo clinic and accounts that do not exist yet; return lines to print."""
    lines = []
    with write(db):
        if not db.execute("SELECT 1 FROM clinic WHERE id = 1").fetchone():
            db.execute(
                "INSERT INTO clinic (id, name, settings) VALUES (1, ?, ?)",
                [DEMO_CLINIC, json.dumps({"demo": True})],
            )
            audit.record(db, "clinic.created", object_type="clinic", object_id=1)
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

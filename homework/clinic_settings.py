"""The clinic's settings: one JSON object in the `settings` column of the clinic's single
row (id 1), one key per setting (`brand`, `require_2fa`, `therapists_author`, ...)."""

import json
from typing import Any

import sqlite_utils


def get(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    """The setting stored under `key`, or `default` before anyone has set it."""
    row = db.execute("SELECT settings FROM clinic WHERE id = 1").fetchone()
    return json.loads(row[0] or "{}").get(key, default) if row else default


def put(db: sqlite_utils.Database, key: str, value: Any, name: str | None = None) -> None:
    """Store `value` under `key` (and the clinic's name, when given), keeping every other
    setting. Call it inside the caller's `write(db)`, beside the audit row that says so."""
    if not db.conn.in_transaction:
        raise RuntimeError("clinic_settings.put runs inside a write() block")
    row = db.execute("SELECT settings FROM clinic WHERE id = 1").fetchone()
    settings = json.loads(row[0] or "{}") if row else {}
    settings[key] = value
    if row is None:
        db.execute(
            "INSERT INTO clinic (id, name, settings) VALUES (1, ?, ?)",
            [name or "", json.dumps(settings)],
        )
    elif name is None:
        db.execute("UPDATE clinic SET settings = ? WHERE id = 1", [json.dumps(settings)])
    else:
        db.execute(
            "UPDATE clinic SET name = ?, settings = ? WHERE id = 1", [name, json.dumps(settings)]
        )

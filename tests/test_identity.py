"""Therapist ids from a host: integers, digit strings, UUIDs; stored and compared exactly."""

import uuid

import pytest

from homework import audit, schema
from homework.couples import create_couple, get_owned_couple
from homework.identity import therapist_id
from homework.storage import connect, write


def test_ids_keep_their_form_and_digit_strings_match_stored_integers():
    assert therapist_id(42) == 42
    assert therapist_id("42") == 42  # Flask-Login's get_id() of an integer key
    assert therapist_id("007") == "007"
    assert therapist_id("1e5") == "1e5"
    u = uuid.UUID("6f1c8e52-6a53-4d2e-9f5b-0d6f1f2a9c11")
    assert therapist_id(u) == str(u)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "not None"),
        (True, "not True"),
        (4.5, "not float"),
        ("", "1 to 200 characters"),
        (" 7", "without surrounding spaces"),
        ("x" * 201, "1 to 200 characters"),
    ],
)
def test_bad_ids_are_refused_with_a_clear_message(value, message):
    with pytest.raises((TypeError, ValueError), match=message):
        therapist_id(value)


COUPLE = {
    "label": "L",
    "partner_a": "A",
    "partner_b": "B",
    "partner_a_pronouns": "",
    "partner_b_pronouns": "",
    "partner_a_language": "",
    "partner_b_language": "",
    "notes": "",
    "flags": [],
}


def test_numeric_looking_string_ids_are_different_therapists(tmp_path):
    db = connect(tmp_path / "h.db")
    schema.apply_migrations(db)
    mine = create_couple(db, "007", COUPLE)
    theirs = create_couple(db, 7, COUPLE)
    assert get_owned_couple(db, mine, "007") is not None
    assert get_owned_couple(db, mine, 7) is None
    assert get_owned_couple(db, theirs, "007") is None
    assert audit.verify(db).ok


def test_the_migration_keeps_rows_indexes_triggers_and_the_audit_chain(tmp_path):
    db = connect(tmp_path / "h.db")
    schema.migrations.apply(db, stop_before="0018_therapist_ids_any_type")
    couple = create_couple(db, 5, COUPLE)
    with write(db):
        audit.record(db, "test.event", actor_id=5, object_type="couple", object_id=couple)
    before = {
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')"
        ).fetchall()
    }
    # Only 0018: a later migration's own indexes are not what this test compares.
    schema.migrations.apply(db, stop_before="0020_homework_series")
    assert "0018_therapist_ids_any_type" in schema.migration_status(db)[0]
    after = {
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger')"
        ).fetchall()
    }
    # The new primary key of owner_changes (no longer the rowid) brings its own index.
    assert after == before | {"sqlite_autoindex_owner_changes_1"}
    assert get_owned_couple(db, couple, 5) is not None
    assert db.execute("SELECT n FROM owner_changes WHERE owner_id = 5").fetchone()[0] >= 1
    assert audit.verify(db).ok
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    # The triggers still work on the rebuilt tables.
    with pytest.raises(Exception, match="append-only"), write(db):
        db.execute("DELETE FROM audit_log")
    db.close()

"""Erasure that survives restores, and never reaches a couple it did not mean."""

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import demo_clinic, homework_cli

from homework import create_app
from homework.backups import restore, take_backup
from homework.couples import create_couple
from homework.erasure import erase_couple, read_ledger
from homework.migrations.later import legacy_couple_uuid
from homework.schema import apply_migrations, migrations
from homework.storage import connect, get_db, write

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def backup(instance: Path) -> Path:
    result = homework_cli("backup", instance=instance)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split()[1])


def couple_labels(instance: Path) -> dict[int, str]:
    conn = connect(instance / "homework.db")
    try:
        return dict(conn.execute("SELECT id, label FROM couples").fetchall())
    finally:
        conn.close()


def test_restore_never_erases_a_new_couple_given_an_erased_couples_old_id(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    app = create_app(instance_path=instance)
    with app.app_context():
        db = get_db()
        newest, owner = db.execute(
            "SELECT id, owner_id FROM couples ORDER BY id DESC LIMIT 1"
        ).fetchone()
        assert erase_couple(db, newest, None, instance / "erasures.jsonl", None)
        new_id = create_couple(
            db, owner, {"label": "Quinn & Rue", "partner_a": "Quinn", "partner_b": "Rue"}
        )
    assert new_id != newest  # a row id is never handed out twice
    archive = backup(instance)  # taken after the erasure: it holds the new couple
    result = homework_cli("restore", str(archive), instance=instance)
    assert result.returncode == 0, result.stderr
    assert "erased again" not in result.stdout
    assert couple_labels(instance)[new_id] == "Quinn & Rue"


def pre_0008_database(path: Path):
    db = connect(path)
    migrations.apply(db, stop_before="0008_couples_never_reuse_ids")
    now = datetime.now(UTC)
    for n in (1, 2, 3):
        created = (now - timedelta(days=10 - n)).isoformat(timespec="seconds")
        db.execute(
            "INSERT INTO couples (id, owner_id, label, partner_a, partner_b, created_at,"
            " updated_at) VALUES (?, 1, ?, 'A', 'B', ?, ?)",
            [n, f"Couple {n}", created, created],
        )
        db.execute(
            "INSERT INTO packets (id, couple_id, created_by, created_at) VALUES (?, ?, 1, ?)",
            [n, n, created],
        )
    return db


def test_0008_keeps_every_couple_and_reference_and_never_reuses_an_id(tmp_path):
    from homework import audit

    db = pre_0008_database(tmp_path / "homework.db")
    with write(db):  # a couple 7 existed once, and was erased before this version
        audit.record(db, "couple.created", actor_id=1, object_type="couple", object_id=7)
    schema_before = {
        (r[0], r[1])
        for r in db.execute("SELECT type, name FROM sqlite_master WHERE type != 'table'")
    }
    created = dict(db.execute("SELECT id, created_at FROM couples").fetchall())
    assert apply_migrations(db)[0] == "0008_couples_never_reuse_ids"
    rows = db.execute("SELECT id, uuid, created_at FROM couples ORDER BY id").fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        (n, legacy_couple_uuid(n, created[n])) for n in (1, 2, 3)
    ]
    schema_after = {
        (r[0], r[1])
        for r in db.execute("SELECT type, name FROM sqlite_master WHERE type != 'table'")
    }
    dropped_later = {("index", "rate_counts_started")}  # 0026 drops its unused table
    assert schema_before - dropped_later <= schema_after  # every index and trigger came back
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with write(db):
        cur = db.execute(
            "INSERT INTO couples (owner_id, label, partner_a, partner_b, created_at, updated_at)"
            " VALUES (1, 'New', 'C', 'D', 'now', 'now')"
        )
    assert cur.lastrowid == 8  # past every id the audit log ever named
    fresh = db.execute("SELECT uuid FROM couples WHERE id = 8").fetchone()[0]
    assert UUID4.match(fresh)
    # The triggers still bump the owner's change counter, and foreign keys still hold.
    assert db.execute("SELECT n FROM owner_changes WHERE owner_id = 1").fetchone()[0] >= 1
    try:
        with write(db):
            db.execute(
                "INSERT INTO packets (couple_id, created_by, created_at) VALUES (99, 1, 'x')"
            )
    except Exception as exc:  # noqa: BLE001 (the message is what matters)
        assert "FOREIGN KEY" in str(exc)
    else:
        raise AssertionError("a packet of a missing couple was stored")
    db.close()


def test_a_couple_erased_after_the_upgrade_stays_erased_in_a_backup_from_before(tmp_path):
    db_path = tmp_path / "homework.db"
    db = pre_0008_database(db_path)
    db.close()
    archive = take_backup(db_path, tmp_path / "uploads", tmp_path / "backups").path
    db = connect(db_path)
    apply_migrations(db)
    ledger = tmp_path / "erasures.jsonl"
    assert erase_couple(db, 2, None, ledger, None)
    db.close()
    assert read_ledger(ledger)[0].couple_uuid  # named by UUID, not by id
    result = restore(archive, db_path, tmp_path / "uploads", ledger=ledger)
    assert result.erased_again == [2]
    db = connect(db_path)
    assert [r[0] for r in db.execute("SELECT id FROM couples ORDER BY id")] == [1, 3]
    assert db.execute("SELECT COUNT(*) FROM packets WHERE couple_id = 2").fetchone()[0] == 0
    db.close()


def test_an_old_ledger_line_erases_only_the_couple_created_before_it(tmp_path):
    db_path = tmp_path / "homework.db"
    db = pre_0008_database(db_path)
    db.close()
    older = take_backup(db_path, tmp_path / "u", tmp_path / "backups").path
    # The version before 0008 erased couple 3, wrote an id-only ledger line, then gave id
    # 3 to the next couple added.
    ledger = tmp_path / "erasures.jsonl"
    erased_at = datetime.now(UTC)
    ledger.write_text(json.dumps({"couple_id": 3, "erased_at": erased_at.isoformat()}) + "\n")
    db = connect(db_path)
    later = (erased_at + timedelta(seconds=5)).isoformat(timespec="seconds")
    db.execute("DELETE FROM packets WHERE couple_id = 3")
    db.execute("DELETE FROM couples WHERE id = 3")
    db.execute(
        "INSERT INTO couples (id, owner_id, label, partner_a, partner_b, created_at,"
        " updated_at) VALUES (3, 1, 'Innocent', 'E', 'F', ?, ?)",
        [later, later],
    )
    db.close()
    newer = take_backup(db_path, tmp_path / "u", tmp_path / "backups").path

    result = restore(newer, db_path, tmp_path / "u", ledger=ledger)
    assert result.erased_again == []
    db = connect(db_path)
    assert db.execute("SELECT label FROM couples WHERE id = 3").fetchone()[0] == "Innocent"
    db.close()
    # The ledger was migrated: its line now says which couple 3 it means.
    line = json.loads(ledger.read_text())
    assert line["couple_id"] == 3 and line["created_before"] == erased_at.isoformat()

    result = restore(older, db_path, tmp_path / "u", ledger=ledger)
    assert result.erased_again == [3]
    db = connect(db_path)
    assert [r[0] for r in db.execute("SELECT id FROM couples ORDER BY id")] == [1, 2]
    db.close()


def test_an_unreadable_ledger_line_stops_the_restore_and_changes_nothing(tmp_path):
    db_path = tmp_path / "homework.db"
    db = pre_0008_database(db_path)
    apply_migrations(db)
    db.close()
    archive = take_backup(db_path, tmp_path / "u", tmp_path / "backups").path
    ledger = tmp_path / "erasures.jsonl"
    ledger.write_text('{"couple_id": "three"}\n')
    before = db_path.read_bytes()
    homework_dir = tmp_path
    try:
        restore(archive, db_path, tmp_path / "u", ledger=ledger)
    except Exception as exc:  # noqa: BLE001
        assert "line 1 of the erasure ledger" in str(exc)
    else:
        raise AssertionError("restored past an unreadable ledger line")
    assert db_path.read_bytes() == before
    assert not [p for p in homework_dir.iterdir() if p.name.startswith(".restore-")]


def test_a_line_torn_by_a_crash_does_not_swallow_the_next_erasure(tmp_path):
    db_path = tmp_path / "homework.db"
    db = pre_0008_database(db_path)
    apply_migrations(db)
    ledger = tmp_path / "erasures.jsonl"
    ledger.write_text('{"couple_uuid": "0000')  # the writer died mid-line, before erasing
    uuid = db.execute("SELECT uuid FROM couples WHERE id = 1").fetchone()[0]
    assert erase_couple(db, 1, None, ledger, None)
    db.close()
    assert [e.couple_uuid for e in read_ledger(ledger)] == [uuid]


def test_a_couples_export_names_it_by_its_uuid(therapist, db):
    import io
    import zipfile

    from test_couples import add_couple

    couple_id = add_couple(therapist)
    response = therapist.get(f"/couples/{couple_id}/export.zip")
    data = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("couple.json"))
    stored = db.execute("SELECT uuid FROM couples WHERE id = ?", [couple_id]).fetchone()[0]
    assert UUID4.match(stored) and data["couple"]["uuid"] == stored

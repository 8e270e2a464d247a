import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ADMIN_PASSWORD, csrf_token, demo_clinic, homework_cli, signed_in
from test_assign import form_for, post_assign
from test_couples import add_couple

from homework.backups import restore
from homework.storage import connect

PASS = {"HOMEWORK_BACKUP_PASSPHRASE": "correct horse battery staple"}


def backup(instance: Path, *args: str, env=None) -> Path:
    result = homework_cli("backup", *args, instance=instance, env=env)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split()[1])


def test_backup_and_restore_bring_everything_back(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    uploads = instance / "uploads"
    uploads.mkdir()
    (uploads / "logo-0123456789abcdef0123.png").write_bytes(b"logo bytes")
    archive = backup(instance)
    assert archive.exists() and oct(archive.stat().st_mode)[-3:] == "600"
    db = sqlite3.connect(instance / "homework.db")
    before = db.execute("SELECT COUNT(*) FROM practice").fetchone()[0]
    db.execute("DELETE FROM practice")
    db.commit()
    db.close()
    (uploads / "logo-0123456789abcdef0123.png").unlink()
    result = homework_cli("restore", str(archive), instance=instance)
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(instance / "homework.db")
    assert db.execute("SELECT COUNT(*) FROM practice").fetchone()[0] == before > 0
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (uploads / "logo-0123456789abcdef0123.png").read_bytes() == b"logo bytes"
    assert homework_cli("audit", "verify", instance=instance).returncode == 0


WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("CREATE TABLE IF NOT EXISTS stress (writer INTEGER, n INTEGER, at REAL)")
n = 0
while True:
    conn.execute("INSERT INTO stress VALUES (?, ?, ?)", (int(sys.argv[2]), n, time.time()))
    n += 1
"""


def test_backup_while_two_processes_write(tmp_path):
    instance = tmp_path / "inst"
    homework_cli("migrate", instance=instance)
    db_path = instance / "homework.db"
    setup = sqlite3.connect(db_path)
    setup.execute("CREATE TABLE stress (writer INTEGER, n INTEGER, at REAL)")
    setup.commit()
    setup.close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(w)]) for w in (1, 2)
    ]
    try:
        probe = sqlite3.connect(db_path, timeout=30)
        while probe.execute("SELECT COUNT(*) FROM stress").fetchone()[0] < 200:
            assert all(w.poll() is None for w in writers), "a writer process died"
            time.sleep(0.05)  # wait until both writers are busy (a poll, not a timing test)
        committed = probe.execute("SELECT writer, MAX(n) FROM stress GROUP BY writer").fetchall()
        probe.close()
        archive = backup(instance)
    finally:
        for w in writers:
            w.kill()
            w.wait()
    restored = tmp_path / "restored"
    restored.mkdir()
    result = homework_cli("restore", str(archive), instance=restored)
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(restored / "homework.db")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for writer, last in committed:
        got = conn.execute(
            "SELECT COUNT(DISTINCT n) FROM stress WHERE writer = ? AND n <= ?", [writer, last]
        ).fetchone()[0]
        assert got == last + 1  # every row committed before the backup began


def test_encrypted_backup_needs_its_passphrase(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = backup(instance, "--encrypt", env=PASS)
    assert archive.name.endswith(".tar.gz.enc")
    assert b"SQLite format" not in archive.read_bytes()
    original = (instance / "homework.db").read_bytes()
    wrong = homework_cli(
        "restore", str(archive), instance=instance, env={"HOMEWORK_BACKUP_PASSPHRASE": "nope"}
    )
    assert (
        wrong.returncode == 1
        and "wrong passphrase" in wrong.stderr
        and "nothing was changed" in wrong.stderr
    )
    assert (instance / "homework.db").read_bytes() == original
    ok = homework_cli("restore", str(archive), instance=instance, env=PASS)
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("damage", ["truncate", "corrupt-db", "garbage"])
def test_damaged_backups_are_refused_and_nothing_is_replaced(tmp_path, damage):
    import io
    import tarfile

    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = backup(instance)
    data = archive.read_bytes()
    if damage == "truncate":
        archive.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        archive.write_bytes(os.urandom(4096))
    else:  # a database that does not match its manifest
        buffer = io.BytesIO()
        with (
            tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as src,
            tarfile.open(fileobj=buffer, mode="w:gz") as dst,
        ):
            for member in src.getmembers():
                content = src.extractfile(member).read()
                if member.name == "homework.db":
                    content = content[:4096] + b"\0" * 100 + content[4196:]
                member.size = len(content)
                dst.addfile(member, io.BytesIO(content))
        archive.write_bytes(buffer.getvalue())
    db_before = (instance / "homework.db").read_bytes()
    result = homework_cli("restore", str(archive), instance=instance)
    assert result.returncode == 1, result.stdout
    assert "nothing was changed" in result.stderr and "Traceback" not in result.stderr
    assert (instance / "homework.db").read_bytes() == db_before


def test_keeps_the_newest_n_and_says_what_it_removed(tmp_path):
    instance = tmp_path / "inst"
    homework_cli("migrate", instance=instance)
    (instance / "config.py").write_text("HOMEWORK_BACKUP_KEEP = 2\n")
    for _ in range(3):
        result = homework_cli("backup", instance=instance)
    assert "removed old backup homework-backup-" in result.stdout
    assert len(list((instance / "backups").glob("homework-backup-*"))) == 2


def test_restore_refuses_while_the_server_runs(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = backup(instance)
    (instance / "serve.pid").write_text(str(os.getpid()))  # a live process
    refused = homework_cli("restore", str(archive), instance=instance)
    assert refused.returncode == 1 and "homework serve is running" in refused.stderr
    forced = homework_cli("restore", str(archive), "--force", instance=instance)
    assert forced.returncode == 0


def test_stale_wal_files_are_removed_on_restore(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = backup(instance)
    db_path = instance / "homework.db"
    wal = db_path.with_name("homework.db-wal")
    # A real WAL of the old database: changes made after the backup that were never
    # checkpointed into the file, as a crashed server would leave them.
    old = sqlite3.connect(db_path, isolation_level=None)
    old.execute("PRAGMA wal_autocheckpoint = 0")
    backed_up = old.execute(
        "SELECT (SELECT name FROM clinic), (SELECT COUNT(*) FROM practice)"
    ).fetchone()
    assert backed_up[1] > 0
    old.execute("UPDATE clinic SET name = 'Changed After The Backup'")
    old.execute("DELETE FROM practice")
    stale_wal = wal.read_bytes()
    old.close()  # checkpoints and deletes the WAL; put it back as the crash left it
    wal.write_bytes(stale_wal)
    assert len(stale_wal) > 32  # header and frames, not an empty file
    # Called directly: `homework restore` opens the database first, which would replay and
    # checkpoint this WAL itself before the swap, hiding whether restore removes it.
    restore(archive, db_path, instance / "uploads", ledger=instance / "erasures.jsonl")
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored = conn.execute(
        "SELECT (SELECT name FROM clinic), (SELECT COUNT(*) FROM practice)"
    ).fetchone()
    assert restored == backed_up


def test_healthz_reports_the_newest_backup_age(tmp_path):
    from homework import create_app

    instance = tmp_path / "inst"
    homework_cli("migrate", instance=instance)
    backup(instance)
    app = create_app(instance_path=instance)
    age = app.test_client().get("/healthz").json["newest_backup_age_hours"]
    assert age is not None and 0 <= age < 1


def admin_client(app):
    return signed_in(app, "admin@example.org", ADMIN_PASSWORD)


def test_erasure_needs_the_typed_label_and_removes_every_row(app, therapist, db):
    couple_id = add_couple(therapist, label="Erase me")
    post_assign(therapist, couple_id, form_for(therapist, couple_id, "memory-walk"), "issue")
    keep_id = add_couple(therapist, label="Keep me")
    admin = admin_client(app)
    token = csrf_token(admin, f"/admin/couples/{couple_id}/erase")
    wrong = admin.post(
        f"/admin/couples/{couple_id}/erase", data={"csrf_token": token, "confirm": "erase me"}
    )
    assert wrong.status_code == 400 and "Nothing was erased" in wrong.get_data(as_text=True)
    assert db.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 2
    response = admin.post(
        f"/admin/couples/{couple_id}/erase", data={"csrf_token": token, "confirm": "Erase me"}
    )
    assert response.status_code == 302
    for table in ("practice", "checkin_tokens", "homework", "packets"):
        sql = f"SELECT COUNT(*) FROM {table} WHERE couple_id = ?"  # noqa: S608
        assert db.execute(sql, [couple_id]).fetchone()[0] == 0  # noqa: S608
    assert db.execute("SELECT COUNT(*) FROM couples WHERE id = ?", [couple_id]).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM couples WHERE id = ?", [keep_id]).fetchone()[0] == 1
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    tombstone = db.execute(
        "SELECT detail FROM audit_log WHERE action = 'couple.erased'"
    ).fetchone()[0]
    assert "Erase me" not in tombstone
    assert therapist.get(f"/couples/{couple_id}").status_code == 404
    assert therapist.get(f"/admin/couples/{keep_id}/erase").status_code == 404


def test_an_erased_couple_stays_erased_after_restoring_an_older_backup(tmp_path):
    from homework import create_app
    from homework.accounts import create_user
    from homework.erasure import erase_couple
    from homework.storage import get_db

    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = backup(instance)  # has all three demo couples
    app = create_app(instance_path=instance)
    with app.app_context():
        create_user(get_db(), "a2@example.org", "Admin Two", "admin", "a long admin passphrase")
        erase_couple(get_db(), 2, None, instance / "erasures.jsonl", None)
    result = homework_cli("restore", str(archive), instance=instance)
    assert result.returncode == 0, result.stderr
    assert "erased again 1 couple" in result.stdout
    conn = connect(instance / "homework.db")
    assert conn.execute("SELECT COUNT(*) FROM couples WHERE id = 2").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM homework WHERE couple_id = 2").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 2
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_couple_export_zip_has_documented_json_and_pdfs(app, therapist, db):
    import io
    import json
    import zipfile

    couple_id = add_couple(therapist, partner_a="Ana", partner_b="Ben", notes="private note")
    post_assign(
        therapist,
        couple_id,
        form_for(therapist, couple_id, "memory-walk", "daily-appreciation"),
        "issue",
    )
    response = therapist.get(f"/couples/{couple_id}/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "Ana" not in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    assert "README.txt" in names and "couple.json" in names
    assert len([n for n in names if n.startswith("handouts/") and n.endswith(".pdf")]) == 2
    data = json.loads(archive.read("couple.json"))
    assert data["couple"]["partner_a"] == "Ana" and data["couple"]["notes"] == "private note"
    assert [h["assignment_id"] for h in data["homework"]] == ["memory-walk", "daily-appreciation"]
    assert data["homework"][0]["snapshot"]["partner_a"] == "Ana"
    assert "couple.exported" in [r[0] for r in db.execute("SELECT action FROM audit_log")]
    from test_couples import login_other

    assert login_other(app).get(f"/couples/{couple_id}/export.zip").status_code == 404

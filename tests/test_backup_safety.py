"""Backups and restores that a crafted archive, a kill, a crash, root or a wrong clock
cannot turn into a loss."""

import io
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import demo_clinic, homework_cli

from homework import backups, create_app
from homework.backups import BackupError, restore, take_backup

PASS = {"HOMEWORK_BACKUP_PASSPHRASE": "correct horse battery staple"}
LOGO = "logo-0123456789abcdef0123.png"


def cli_backup(instance: Path, *args: str, env=None) -> Path:
    result = homework_cli("backup", *args, instance=instance, env=env)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.split()[1])


@pytest.fixture
def instance(app):
    """The app fixture's instance, with a logo, and one archive of it."""
    folder = Path(app.instance_path)
    (folder / "uploads").mkdir()
    (folder / "uploads" / LOGO).write_bytes(b"logo bytes")
    return folder


def make_archive(instance: Path, app, **kwargs) -> Path:
    return take_backup(
        instance / "homework.db",
        instance / "uploads",
        instance / "backups",
        secret_key=app.secret_key,
        **kwargs,
    ).path


def state(instance: Path) -> dict:
    """Every file under the instance except the archives, with its bytes."""
    return {
        str(p.relative_to(instance)): p.read_bytes()
        for p in sorted(instance.rglob("*"))
        if p.is_file() and "backups" not in p.parts
    }


def recrafted(archive: Path, craft: str) -> None:
    """Rewrite `archive` with one crafted member added; the manifest stays as it was."""
    members = []
    with tarfile.open(archive, "r:gz") as src:
        for m in src.getmembers():
            members.append((m, src.extractfile(m).read()))

    def file(name: str, data: bytes = b"x") -> tuple:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        return info, data

    def special(name: str, kind: bytes, target: str = "") -> tuple:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, target
        return info, b""

    extra = {
        "extra-directory": [special("uploads/evil", tarfile.DIRTYPE), file("uploads/evil/x")],
        "extra-file": [file("uploads/extra.png")],
        "symlink": [special("uploads/link.png", tarfile.SYMTYPE, "../manifest.json")],
        "hardlink": [special("uploads/hard.png", tarfile.LNKTYPE, "homework.db")],
        "absolute": [file("/tmp/evil.png")],
        "dotdot": [file("uploads/../../evil.png")],
        "fifo": [special("uploads/pipe", tarfile.FIFOTYPE)],
    }[craft]
    with tarfile.open(archive, "w:gz") as dst:
        for info, data in members + extra:
            dst.addfile(info, io.BytesIO(data) if info.isreg() else None)


@pytest.mark.parametrize(
    ("craft", "says"),
    [
        ("extra-directory", "'uploads/evil', a directory; refusing"),
        ("extra-file", "'uploads/extra.png', which its manifest does not list; refusing"),
        ("symlink", "'uploads/link.png', a link; refusing"),
        ("hardlink", "'uploads/hard.png', a link; refusing"),
        ("absolute", "'/tmp/evil.png', which its manifest does not list; refusing"),
        ("dotdot", "'uploads/../../evil.png', which its manifest does not list; refusing"),
        ("fifo", "'uploads/pipe', a special file; refusing"),
    ],
)
def test_a_crafted_archive_is_refused_before_anything_changes(app, instance, craft, says):
    archive = make_archive(instance, app)
    recrafted(archive, craft)
    before = state(instance)
    with pytest.raises(BackupError) as refused:
        restore(archive, instance / "homework.db", instance / "uploads", ledger=instance / "e")
    assert says in str(refused.value)
    assert state(instance) == before
    assert not Path("/tmp/evil.png").exists()
    assert not (instance.parent / "evil.png").exists()


def test_the_manifest_may_name_only_the_database_key_and_plain_uploads(app, instance):
    import hashlib
    import json

    archive = make_archive(instance, app)
    with tarfile.open(archive, "r:gz") as src:
        members = {m.name: src.extractfile(m).read() for m in src.getmembers()}
    manifest = json.loads(members["manifest.json"])
    members["config.py"] = b"SECRET_KEY = 'x'"
    manifest["files"]["config.py"] = hashlib.sha256(members["config.py"]).hexdigest()
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(archive, "w:gz") as dst:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    before = state(instance)
    with pytest.raises(BackupError, match="names 'config.py'; refusing"):
        restore(archive, instance / "homework.db", instance / "uploads", ledger=instance / "e")
    assert state(instance) == before


KILLED = """
import os, sys, tarfile
from homework.console import main
point, instance, archive = sys.argv[1], sys.argv[2], sys.argv[3]
real_fsync, real_replace = os.fsync, os.replace

def name(fd):
    return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))

if point == "packing":  # the database is copied, the archive not yet written
    tarfile.TarFile.addfile = lambda *a, **k: os._exit(9)
elif point == "writing":  # the archive is written but not renamed
    def fsync(fd):
        real_fsync(fd)
        if name(fd).startswith(".partial-"):
            os._exit(9)
    os.fsync = fsync
elif point in ("before-swap", "after-swap"):
    def replace(src, dst, **kw):
        if os.path.basename(dst) == "homework.db" and point == "before-swap":
            os._exit(9)
        real_replace(src, dst, **kw)
        if os.path.basename(dst) == "homework.db":
            os._exit(9)
    os.replace = replace
command = ["backup", "--encrypt"] if point in ("packing", "writing") else ["restore", archive]
main([*command, "--instance", instance])
"""


def run_killed(point: str, instance: Path, archive: Path | str = "-") -> None:
    result = subprocess.run(
        [sys.executable, "-c", KILLED, point, str(instance), str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **PASS},
    )
    assert result.returncode == 9, result.stderr  # it was killed where it was meant to be


def plaintext_copies(instance: Path) -> list[str]:
    """Files other than the database itself that hold an unencrypted SQLite database."""
    found = []
    for p in instance.rglob("*"):
        live = p.parent == instance and p.name.startswith("homework.db")
        if p.is_file() and not live:
            with p.open("rb") as fh:
                if b"SQLite format 3\0" in fh.read():
                    found.append(str(p.relative_to(instance)))
    return found


@pytest.mark.parametrize("point", ["packing", "writing"])
def test_a_killed_encrypted_backup_leaves_no_plaintext_and_is_cleared_up(tmp_path, point):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    run_killed(point, instance)
    assert plaintext_copies(instance) == []
    archive = cli_backup(instance, "--encrypt", env=PASS)
    assert [p.name for p in (instance / "backups").iterdir() if p.name[0] == "."] == []
    assert [p.name for p in (instance / "backups").glob("homework-backup-*")] == [archive.name]


def test_a_killed_restore_leaves_the_old_database_and_the_next_restore_clears_up(tmp_path):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = cli_backup(instance)
    before = (instance / "homework.db").read_bytes()
    run_killed("before-swap", instance, archive)
    assert (instance / "homework.db").read_bytes() == before
    again = homework_cli("restore", str(archive), instance=instance)
    assert again.returncode == 0, again.stderr
    assert [p.name for p in instance.iterdir() if p.name.startswith(".restore-")] == []


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA wal_autocheckpoint = 0")  # the commit below stays in the WAL alone
conn.execute("CREATE TABLE late (n INTEGER)")
conn.execute("INSERT INTO late VALUES (42)")
print("committed", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("point", ["before-swap", "after-swap"])
def test_a_restore_killed_at_the_swap_leaves_one_whole_database(tmp_path, point):
    instance = tmp_path / "inst"
    demo_clinic(instance)
    archive = cli_backup(instance)
    db_path = instance / "homework.db"
    # Another process committed a write that is still only in the old database's WAL.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "committed"
        run_killed(point, instance, archive)
    finally:
        holder.send_signal(signal.SIGKILL)  # it dies too: no tidy close rescues its WAL
        holder.wait()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if point == "before-swap":  # the old database, with its last commit
        assert conn.execute("SELECT n FROM late").fetchall() == [(42,)]
    else:  # the new one: the backup's content
        assert "late" not in tables
        assert conn.execute("SELECT COUNT(*) FROM couples").fetchone()[0] == 3
    conn.close()


def test_backup_and_restore_sync_each_file_before_its_rename_and_the_folder_after(
    app, instance, monkeypatch
):
    events = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, os.unlink

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst, **kw):
        events.append(("rename", str(src), str(dst)))
        real_replace(src, dst, **kw)

    def unlink(path, **kw):
        events.append(("unlink", str(path)))
        real_unlink(path, **kw)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "unlink", unlink)
    archive = make_archive(instance, app)
    (rename,) = [e for e in events if e[0] == "rename"]
    at = events.index(rename)
    assert ("fsync", rename[1]) in events[:at]
    assert ("fsync", str(archive.parent)) in events[at + 1 :]

    events.clear()
    db_path = instance / "homework.db"
    (instance / "homework.db-wal").write_bytes(b"")  # an (empty) WAL of the old database
    restore(archive, db_path, instance / "uploads", ledger=instance / "erasures.jsonl")
    (swap,) = [e for e in events if e[0] == "rename" and e[2] == str(db_path)]
    at = events.index(swap)
    assert ("fsync", swap[1]) in events[:at]
    assert ("fsync", str(instance)) in events[at + 1 :]
    assert ("unlink", str(db_path) + "-wal") in events[at + 1 :]
    assert ("unlink", str(db_path) + "-wal") not in events[:at]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_root_run_backup_and_restore_keep_the_service_users_files(tmp_path):
    service = 65534  # "nobody": the account the server runs as
    instance = tmp_path / "inst"
    demo_clinic(instance)
    (instance / "uploads").mkdir()
    (instance / "uploads" / LOGO).write_bytes(b"logo bytes")
    for p in [instance, *instance.rglob("*")]:
        os.chown(p, service, service)
    os.chmod(instance / "homework.db", 0o640)
    (instance / "backups").mkdir(mode=0o700)  # left to root by an earlier root-run backup

    def not_the_service_users() -> list[str]:
        return [
            str(p.relative_to(instance))
            for p in [instance, *instance.rglob("*")]
            if (p.lstat().st_uid, p.lstat().st_gid) != (service, service)
        ]

    archive = cli_backup(instance)
    assert not_the_service_users() == []
    result = homework_cli("restore", str(archive), instance=instance)
    assert result.returncode == 0, result.stderr
    assert not_the_service_users() == []
    assert oct((instance / "homework.db").stat().st_mode & 0o777) == "0o640"
    assert oct((instance / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_a_clock_set_ahead_never_makes_a_backup_remove_itself(app, instance, monkeypatch):
    class Clock(datetime):
        moment = datetime(2099, 1, 1, tzinfo=UTC)

        @classmethod
        def now(cls, tz=None):
            return cls.moment

    monkeypatch.setattr(backups.taking, "datetime", Clock)
    first = take_backup(instance / "homework.db", instance / "uploads", instance / "b", keep=2)
    second = take_backup(instance / "homework.db", instance / "uploads", instance / "b", keep=2)
    Clock.moment = datetime(2026, 12, 2, tzinfo=UTC)  # the clock is put right
    third = take_backup(instance / "homework.db", instance / "uploads", instance / "b", keep=2)
    assert third.path.exists()
    assert third.removed == [first.path.name]
    assert [p.name for p in backups.list_backups(instance / "b")] == [
        second.path.name,
        third.path.name,
    ]
    fourth = take_backup(instance / "homework.db", instance / "uploads", instance / "b", keep=0)
    assert fourth.path.exists() and fourth.removed == [second.path.name, third.path.name]


def test_printed_checkin_links_work_after_restoring_on_a_new_machine(tmp_path):
    from homework.storage import get_db
    from homework.tracking import current_link

    old = tmp_path / "old"
    demo_clinic(old)
    app = create_app(instance_path=old)
    with app.app_context():
        db = get_db()
        packet = db.execute(
            "SELECT packet_id FROM checkin_tokens WHERE revoked_at IS NULL"
            " AND expires_on >= date('now') ORDER BY id LIMIT 1"
        ).fetchone()[0]
        token = current_link(db, app.secret_key, packet).token
    assert app.test_client().get(f"/c/{token}").status_code == 200
    archive = cli_backup(old, "--encrypt", env=PASS)

    new = tmp_path / "new"
    assert homework_cli("migrate", instance=new).returncode == 0  # its own, new key
    assert (new / "secret_key").read_text() != (old / "secret_key").read_text()
    result = homework_cli("restore", str(archive), instance=new, env=PASS)
    assert result.returncode == 0, result.stderr
    assert "restored the secret key" in result.stdout
    restored = create_app(instance_path=new)
    assert restored.test_client().get(f"/c/{token}").status_code == 200

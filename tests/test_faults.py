"""Faults while serving: read-only, full, damaged or vanished database files, forks and
concurrent migrations. Each fault is a real one SQLite reports, not a mock."""

import os
import resource
import secrets
import signal
import sqlite3
import subprocess
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlite_utils
from conftest import csrf_token, homework_cli

from homework import create_app
from homework.schema import apply_migrations, migrations
from homework.storage import DatabaseMissing, connect, get_db, release_connections

COUPLE = {"label": "Rivera", "partner_a": "Ana", "partner_b": "Ben"}


@contextmanager
def read_only(path: Path):
    """Make `path` truly unwritable for this process (root ignores file modes, so root
    marks it immutable), and writable again afterwards."""
    as_root = os.geteuid() == 0
    if as_root:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr!r}")
    else:
        os.chmod(path, 0o444)
    try:
        try:
            os.close(os.open(path, os.O_RDWR))
        except PermissionError:
            pass
        else:
            pytest.skip("this filesystem lets the process write a read-only file")
        yield
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        else:
            os.chmod(path, 0o644)


def add_couple(client, token: str, **changes):
    """Send a new add-couple form (a fresh one-time key, as a newly loaded page has)."""
    data = {**COUPLE, **changes, "csrf_token": token, "form_key": secrets.token_urlsafe(24)}
    return client.post("/couples/new", data=data)


def couples_stored(db) -> int:
    return db.execute("SELECT COUNT(*) FROM couples").fetchone()[0]


def test_read_only_database_gets_a_clear_page_and_does_not_poison_the_pool(app, therapist):
    path = app.config["HOMEWORK_DATABASE"]
    token = csrf_token(therapist, "/couples/new")
    # The next request opens its connection while the file is read-only, as a busy
    # server's would: SQLite then holds that connection read-only for good.
    release_connections(path)
    with read_only(Path(path)):
        refused = add_couple(therapist, token)
        health = therapist.get("/healthz")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"]
    page = refused.get_data(as_text=True)
    assert "Your work was not saved" in page
    assert "read-only" in page
    assert health.status_code == 503
    assert health.json["database"] == "read-only"
    # Writable again: every request works, none meets the read-only connection again.
    for n in range(3):
        assert add_couple(therapist, token, label=f"Couple {n}").status_code == 302
    assert therapist.get("/healthz").status_code == 200
    db = connect(path)
    assert couples_stored(db) == 3
    db.close()


def test_disk_write_error_gets_a_clear_page_and_stores_nothing(app, therapist, db):
    path = app.config["HOMEWORK_DATABASE"]
    token = csrf_token(therapist, "/couples/new")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert Path(path + "-wal").stat().st_size == 0
    # With a file-size limit of 100 bytes the kernel refuses the first WAL frame
    # (EFBIG): SQLite reports a disk I/O error.
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100, old_limit[1]))
    try:
        refused = add_couple(therapist, token)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    assert refused.status_code == 503
    page = refused.get_data(as_text=True)
    assert "Your work was not saved" in page
    assert "the server&#39;s disk reported an error" in page
    assert couples_stored(db) == 0
    assert add_couple(therapist, token).status_code == 302
    assert couples_stored(db) == 1


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB filesystem of its own (tmpfs), or a skip where mounting is not allowed."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_gets_a_clear_page_and_stores_nothing(small_disk):
    from conftest import THERAPIST_PASSWORD, signed_in

    from homework.accounts import create_user

    app = create_app(instance_path=small_disk, config={"TESTING": True}, create_database=True)
    with app.app_context():
        create_user(get_db(), "t@example.org", "Dr. T", "therapist", THERAPIST_PASSWORD)
    therapist = signed_in(app, "t@example.org", THERAPIST_PASSWORD)
    token = csrf_token(therapist, "/couples/new")
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # take every last block
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    refused = add_couple(therapist, token)
    health = therapist.get("/healthz")
    filler.unlink()
    assert refused.status_code == 503
    page = refused.get_data(as_text=True)
    assert "Your work was not saved" in page
    assert "the server&#39;s disk is full" in page
    assert health.status_code == 503
    assert health.json["disk"] == "low"
    assert add_couple(therapist, token).status_code == 302
    db = connect(app.config["HOMEWORK_DATABASE"])
    assert couples_stored(db) == 1
    db.close()


def test_damaged_database_gets_a_clear_page(app, therapist, db):
    path = Path(app.config["HOMEWORK_DATABASE"])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    release_connections(str(path))
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as fh:  # keep the header page, scramble every other page
        size = path.stat().st_size
        fh.seek(page_size)
        fh.write(b"\xa5" * (size - page_size))
    response = therapist.get("/couples")
    assert response.status_code == 503
    assert "the database file is damaged" in response.get_data(as_text=True)
    assert therapist.get("/healthz").json["database"] == "corrupt"


def test_healthz_says_when_the_disk_is_low(app, client):
    app.config["HOMEWORK_MIN_FREE_DISK_MB"] = 10**12  # more than any disk has free
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["disk"] == "low"
    assert response.json["status"] == "down"


def test_a_deleted_database_is_not_recreated_and_the_server_says_so(app, therapist):
    path = Path(app.config["HOMEWORK_DATABASE"])
    assert therapist.get("/couples").status_code == 200  # a pooled connection is open
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    response = therapist.get("/couples")
    assert response.status_code == 503
    assert "the database file is missing" in response.get_data(as_text=True)
    health = therapist.get("/healthz")
    assert health.status_code == 503
    assert health.json["database"] == "missing"
    assert not path.exists()


def test_a_server_start_does_not_create_a_missing_database(tmp_path):
    instance = tmp_path / "instance"
    create_app(instance_path=instance, create_database=True)
    (instance / "homework.db").unlink()
    with pytest.raises(DatabaseMissing, match="restore"):
        create_app(instance_path=instance)
    refused = homework_cli("create-user", "t@example.org", "--name", "T", instance=instance)
    assert refused.returncode == 1
    assert "does not exist" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (instance / "homework.db").exists()


def test_migrate_creates_the_database_and_says_truly_how_many_it_applied(tmp_path):
    first = homework_cli("migrate", instance=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"{len(list(migrations._migrations))} migration(s) applied" in first.stdout
    again = homework_cli("migrate", instance=tmp_path)
    assert "0 migration(s) applied" in again.stdout


def test_a_second_migrate_waits_for_the_first_then_finds_nothing_to_do(tmp_path, monkeypatch):
    from homework.storage import locks

    path = tmp_path / "homework.db"
    first, second = connect(path), connect(path, busy_timeout_ms=120_000)
    first_inside, second_queued, let_first_go = (threading.Event() for _ in range(3))

    def trace(sql: str) -> None:  # hold the first migrate in the middle of its work
        if sql.lstrip().upper().startswith("CREATE TABLE USERS"):
            first_inside.set()
            let_first_go.wait(120)

    first.conn.set_trace_callback(trace)
    queue = locks._WriterLock.acquire

    def acquire(self, timeout):  # note when the second one joins the writers' queue
        if threading.current_thread().name == "second":
            second_queued.set()
        return queue(self, timeout)

    monkeypatch.setattr(locks._WriterLock, "acquire", acquire)
    outcome = {}

    def run(name: str, db) -> None:
        try:
            outcome[name] = apply_migrations(db)
        except Exception as exc:  # the answer under test
            outcome[name] = exc

    threads = [threading.Thread(target=run, args=("first", first), name="first")]
    threads[0].start()
    assert first_inside.wait(60)
    threads.append(threading.Thread(target=run, args=("second", second), name="second"))
    threads[1].start()
    assert second_queued.wait(60)  # it read everything as pending, and now waits its turn
    let_first_go.set()
    for thread in threads:
        thread.join(120)
    assert outcome["first"] == [m.name for m in migrations.pending(connect(tmp_path / "x.db"))]
    assert outcome["second"] == []
    first.close()
    second.close()


def test_a_forked_child_never_uses_its_parents_pooled_connection(app):
    with app.app_context():
        parent = get_db()
        parent.execute("SELECT COUNT(*) FROM users").fetchone()
    # That connection is idle in the pool now; a child forked from here must open its own.
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child reports through its exit code)
        code = 3
        try:
            with app.app_context():
                child = get_db()
                child.execute("SELECT COUNT(*) FROM users").fetchone()
                code = 0 if child is not parent else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_sqlite_utils_database_is_what_connect_returns(tmp_path):
    assert isinstance(connect(tmp_path / "x.db"), sqlite_utils.Database)
    with pytest.raises(sqlite3.OperationalError):
        connect(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlite_utils

from homework import create_app
from homework.schema import apply_migrations, migration_status, migrations
from homework.storage import DatabaseLocked, connect, write


def test_pragmas(db):
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_applying_migrations_twice_is_a_no_op(app, db):
    before = db.execute("SELECT * FROM _sqlite_migrations").fetchall()
    assert apply_migrations(db) == []
    assert db.execute("SELECT * FROM _sqlite_migrations").fetchall() == before
    applied, pending = migration_status(db)
    assert pending == [] and applied[0] == "0001_initial"


def test_database_from_the_first_migration_upgrades_with_rows_intact(tmp_path):
    path = tmp_path / "homework.db"
    old = connect(path)
    migrations.apply(old, stop_before="0002_user_last_login")
    old.execute(
        "INSERT INTO users (email, name, role, password_hash, password_changed_at, created_at)"
        " VALUES ('a@b.example', 'Early Bird', 'therapist', 'x', 'now', 'now')"
    )
    old.close()
    app = create_app(instance_path=tmp_path)  # standalone start applies what is pending
    conn = connect(app.config["HOMEWORK_DATABASE"])
    row = conn.execute("SELECT name, last_login_at FROM users").fetchone()
    assert tuple(row) == ("Early Bird", None)
    assert migration_status(conn)[1] == []


def test_write_rolls_back_everything_on_error(db):
    with pytest.raises(ZeroDivisionError), write(db):
        db.execute("INSERT INTO clinic (id, name) VALUES (1, 'Half Done')")
        1 / 0  # noqa: B018
    assert db.execute("SELECT COUNT(*) FROM clinic").fetchone()[0] == 0


def test_write_takes_the_write_lock_up_front(app):
    path = app.config["HOMEWORK_DATABASE"]
    holder = connect(path)
    # A plain sqlite3 connection shares none of homework's own locks: only SQLite's write
    # lock can stop it, and before the block's first statement only BEGIN IMMEDIATE holds it.
    outsider = sqlite3.connect(path, timeout=0, isolation_level=None)
    with write(holder):
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            outsider.execute("BEGIN IMMEDIATE")
        assert outsider.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 3  # reads go on
    outsider.execute("BEGIN IMMEDIATE")  # and the lock is released with the block
    outsider.execute("ROLLBACK")
    outsider.close()
    holder.close()


def test_a_second_writer_gives_up_with_database_locked(app):
    path = app.config["HOMEWORK_DATABASE"]
    holder = connect(path)
    waiter = connect(path, busy_timeout_ms=100)
    with write(holder), pytest.raises(DatabaseLocked), write(waiter):
        pass
    holder.close()
    waiter.close()


def test_locked_database_answers_503_with_retry_after(app, client, therapist):
    app.config["HOMEWORK_BUSY_TIMEOUT_MS"] = 100
    holder = sqlite3.connect(app.config["HOMEWORK_DATABASE"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        # Logging in writes (attempt row, session row): it must wait, then fail calmly.
        from conftest import csrf_token

        token = csrf_token(client, "/account/password")
        response = client.post(
            "/account/password",
            data={
                "csrf_token": token,
                "current": "correct horse battery",
                "password": "a new long passphrase",
                "confirm": "a new long passphrase",
            },
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    body = response.get_data(as_text=True)
    assert "try again" in body and "Traceback" not in body


def test_concurrent_writers_all_land(app):
    path = app.config["HOMEWORK_DATABASE"]
    setup = sqlite_utils.Database(path)
    setup.execute("CREATE TABLE counter (n INTEGER)")
    setup.close()

    def bump():
        conn = connect(path)
        for _ in range(25):
            with write(conn):
                conn.execute("INSERT INTO counter VALUES (1)")
        conn.close()

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = connect(path)
    assert check.execute("SELECT COUNT(*) FROM counter").fetchone()[0] == 100


def test_writers_in_forked_server_processes_exclude_each_other(app):
    """`homework serve` opens the database before forking its workers; one worker must
    still wait for a write that another has started."""
    import os

    from homework.storage.locks import _writer_lock

    path = app.config["HOMEWORK_DATABASE"]
    mine = connect(path, busy_timeout_ms=200)  # opened before the fork, as the server does
    held, done = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the other worker: takes the write lock, as `write` does first
        lock = _writer_lock(mine.execute("PRAGMA database_list").fetchone()[2])
        ok = lock.acquire(1)
        os.write(held[1], b"1" if ok else b"0")
        os.read(done[0], 1)
        os._exit(0)
    try:
        assert os.read(held[0], 1) == b"1"
        with pytest.raises(DatabaseLocked), write(mine) as db:
            db.execute("CREATE TABLE written_while_locked (n INTEGER)")
    finally:
        os.write(done[1], b"x")
        os.waitpid(pid, 0)
    assert "written_while_locked" not in mine.table_names()


def test_shared_commits_keep_each_writers_work_apart(app):
    """Check-ins share commits under load: a failing one undoes only its own rows and
    gets its own error; every other one is stored, once."""
    from homework.storage import write_together

    path = app.config["HOMEWORK_DATABASE"]
    setup = sqlite_utils.Database(path)
    setup.execute("CREATE TABLE marks (who INTEGER, n INTEGER)")
    setup.close()
    errors: list[tuple[int, int]] = []

    def writer(who: int) -> None:
        conn = connect(path)
        for n in range(20):

            def work(db, n=n):
                db.execute("INSERT INTO marks VALUES (?, ?)", [who, n])
                if n % 5 == 4:
                    raise ValueError(n)
                return n

            try:
                assert write_together(conn, work) == n
            except ValueError:
                errors.append((who, n))
        conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check = connect(path)
    rows = {tuple(r) for r in check.execute("SELECT who, n FROM marks")}
    assert len(errors) == 8 * 4
    assert rows == {(w, n) for w in range(8) for n in range(20) if n % 5 != 4}
    assert check.execute("SELECT COUNT(*) FROM marks").fetchone()[0] == 8 * 16


def test_a_replaced_database_file_is_never_read_through_an_old_connection(app, tmp_path):
    from homework.storage import get_db

    path = app.config["HOMEWORK_DATABASE"]
    with app.app_context(), write(get_db()) as db:
        db.execute("INSERT INTO clinic (id, name) VALUES (1, 'Before')")
    copy = tmp_path / "copy.db"
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.execute("UPDATE clinic SET name = 'After'")
    target.commit()
    target.close()
    # What `homework restore` does from another process: drop the old WAL, swap the file.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    copy.replace(path)
    with app.app_context():
        assert get_db().execute("SELECT name FROM clinic").fetchone()[0] == "After"


def test_each_clinic_setting_keeps_the_others(db):
    """Branding, two-factor and who may write share one settings row: saving one of them
    leaves the others as they were."""
    from homework import branding, twofactor
    from homework.authoring import store

    brand = branding.Brand(name="Harbour Light", primary="#1d4e89", crisis="Call 988")
    branding.save_brand(db, brand, None)
    twofactor.set_required(db, True, None)
    store.set_therapists_may_author(db, True, None)
    assert branding.load_brand(db) == brand
    assert twofactor.required(db) and store.therapists_may_author(db)
    branding.save_brand(db, branding.Brand(name="Harbour Light East"), None)
    assert twofactor.required(db) and store.therapists_may_author(db)
    twofactor.set_required(db, False, None)
    assert store.therapists_may_author(db) and not twofactor.required(db)
    assert branding.load_brand(db).name == "Harbour Light East"


def test_a_clinic_setting_is_written_only_inside_a_write(db):
    from homework import clinic_settings

    with pytest.raises(RuntimeError):
        clinic_settings.put(db, "require_2fa", True)
    assert clinic_settings.get(db, "require_2fa") is None


def test_the_unused_rate_counts_table_is_dropped(tmp_path):
    """Rate-limit counts live in their own file; the database keeps no table for them."""
    db = sqlite_utils.Database(tmp_path / "old.db")
    migrations.apply(db, stop_before="0026_drop_rate_counts")
    assert "rate_counts" in db.table_names()
    assert "0026_drop_rate_counts" in apply_migrations(db)
    assert "rate_counts" not in db.table_names()
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
    assert not [name for name in names if name.startswith("rate_counts")]

import sqlite3

from conftest import homework_cli

from homework import audit


def actions(db):
    return [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]


def test_logins_logouts_and_account_changes_are_audited(auth, db):
    auth.login(password="wrong password")
    auth.login()
    auth.logout()
    assert actions(db)[-3:] == ["login.failed", "login.ok", "logout"]
    assert actions(db)[:3] == ["account.created"] * 3


def test_audit_rows_hold_no_names_or_emails(auth, db):
    auth.login()
    dump = "\n".join(str(tuple(r)) for r in db.execute("SELECT * FROM audit_log"))
    for secret in ("Tess", "Ward", "therapist@example.org", "Omar"):
        assert secret not in dump


def test_audit_log_refuses_update_and_delete(db, auth):
    auth.login()
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        try:
            db.execute(sql)
        except sqlite3.IntegrityError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{sql} was allowed")


def test_verify_detects_an_altered_row(app, db, auth):
    auth.login()
    assert audit.verify(db).ok
    instance = app.instance_path
    ok = homework_cli("audit", "verify", instance=instance)
    assert ok.returncode == 0 and "intact" in ok.stdout
    # Someone with the file in hand drops the trigger and edits a row.
    db.execute("DROP TRIGGER audit_log_no_update")
    db.execute("UPDATE audit_log SET object_id = 99 WHERE id = 2")
    result = audit.verify(db)
    assert not result.ok and result.first_bad_id == 2
    bad = homework_cli("audit", "verify", instance=instance)
    assert bad.returncode == 1
    assert "row 2" in bad.stderr


def test_verify_detects_a_removed_row(db, auth):
    auth.login()
    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE id = 2")
    result = audit.verify(db)
    assert not result.ok and result.first_bad_id == 3


def test_audit_log_refuses_replacing_inserts(app, db, auth):
    auth.login()
    row = db.execute("SELECT * FROM audit_log WHERE id = 2").fetchone()
    columns = ", ".join(row.keys())
    marks = ", ".join("?" for _ in row)
    # A plain connection, as the sqlite3 shell opens one: recursive triggers are off, so
    # the rows REPLACE deletes would not meet the DELETE trigger.
    shell = sqlite3.connect(app.config["HOMEWORK_DATABASE"], isolation_level=None)
    assert shell.execute("PRAGMA recursive_triggers").fetchone()[0] == 0
    for values in (
        [*row[:3], "forged", *row[4:]],  # the same id: would replace row 2
        [None, *row[1:3], "forged", *row[4:]],  # the same hash under a new id
    ):
        try:
            shell.execute(f"INSERT OR REPLACE INTO audit_log ({columns}) VALUES ({marks})", values)  # noqa: S608
        except sqlite3.IntegrityError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError("INSERT OR REPLACE was allowed")
    shell.close()
    assert db.execute("SELECT action FROM audit_log WHERE id = 2").fetchone()[0] == row["action"]
    assert audit.verify(db).ok


def test_verify_against_an_anchor_detects_removed_newest_rows(app, db, auth):
    auth.login()
    instance = app.instance_path
    printed = homework_cli("audit", "anchor", instance=instance)
    assert printed.returncode == 0, printed.stderr
    head = printed.stdout.strip()
    count, digest = head.split(":")
    assert int(count) == db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    assert digest == db.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()[0]
    auth.logout()  # the log grows past the anchor: it still extends it
    ok = homework_cli("audit", "verify", "--anchor", head, instance=instance)
    assert ok.returncode == 0 and "extends the anchor" in ok.stdout, ok.stderr

    db.execute("DROP TRIGGER audit_log_no_delete")
    db.execute("DELETE FROM audit_log WHERE id >= ?", [int(count)])  # the newest rows go
    assert audit.verify(db).ok  # what is left is a whole chain: only the anchor can tell
    cut = homework_cli("audit", "verify", "--anchor", head, instance=instance)
    assert cut.returncode == 1
    assert "the newest rows were removed" in cut.stderr

    auth.login()  # new rows after the cut: as many as before, but not the same ones
    auth.logout()
    regrown = audit.verify(db, audit.parse_anchor(head))
    assert not regrown.ok and "was rewritten or replaced" in regrown.problem

    db.execute("DELETE FROM audit_log")
    emptied = homework_cli("audit", "verify", "--anchor", head, instance=instance)
    assert emptied.returncode == 1 and "has 0 row(s)" in emptied.stderr


def test_verify_refuses_a_malformed_anchor(app):
    for bad, says in (
        ("12", "give the anchor as COUNT:HASH"),
        ("x:" + "0" * 64, "give the anchor as COUNT:HASH"),
        ("3:" + "0" * 63, "give the anchor as COUNT:HASH"),
        ("3:" + "G" * 64, "64 lowercase hexadecimal digits"),
    ):
        result = homework_cli("audit", "verify", "--anchor", bad, instance=app.instance_path)
        assert result.returncode == 2, bad
        assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr

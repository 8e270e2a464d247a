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

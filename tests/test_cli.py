import sqlite3

import argon2
import sqlite_utils
from conftest import homework_cli

from homework.console import main
from homework.schema import migration_status, migrations
from homework.storage import connect


def test_init_with_flags_creates_everything_and_the_admin(tmp_path):
    instance = tmp_path / "clinic"
    result = homework_cli(
        "init",
        "--email",
        "Boss@Example.org",
        "--password-stdin",
        instance=instance,
        stdin="a long admin passphrase\n",
    )
    assert result.returncode == 0, result.stderr
    assert "admin boss@example.org created" in result.stdout
    assert (instance / "secret_key").exists()
    conn = sqlite3.connect(instance / "homework.db")
    assert conn.execute("SELECT email, role FROM users").fetchall() == [
        ("boss@example.org", "admin")
    ]
    again = homework_cli("init", instance=instance)
    assert again.returncode == 0 and "nothing else to do" in again.stdout


def test_the_homework_command_hashes_at_full_cost(tmp_path):
    """The suite hashes cheaply in its own process (see conftest); a real command does not."""
    result = homework_cli(
        "init", "--email", "a@example.org", "--password-stdin", instance=tmp_path,
        stdin="a long admin passphrase\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(tmp_path / "homework.db")
    stored = conn.execute("SELECT password_hash FROM users").fetchone()[0]
    recommended = argon2.PasswordHasher()  # argon2-cffi's recommended argon2id parameters
    assert argon2.extract_parameters(stored) == argon2.extract_parameters(recommended.hash("x"))
    assert recommended.verify(stored, "a long admin passphrase")


def test_init_refuses_a_weak_password_in_one_line(tmp_path):
    result = homework_cli(
        "init",
        "--email",
        "a@example.org",
        "--password-stdin",
        instance=tmp_path,
        stdin="password\n",
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "most common" in result.stderr
    conn = sqlite3.connect(tmp_path / "homework.db")
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0


def test_create_user_and_duplicate(tmp_path):
    assert homework_cli("migrate", instance=tmp_path).returncode == 0
    args = ("create-user", "t@example.org", "--name", "Dr. T", "--password-stdin")
    ok = homework_cli(*args, instance=tmp_path, stdin="a long enough password\n")
    assert ok.returncode == 0 and "therapist t@example.org created" in ok.stdout
    dup = homework_cli(*args, instance=tmp_path, stdin="a long enough password\n")
    assert dup.returncode == 2 and "already exists" in dup.stderr


def test_bad_arguments_give_one_line_and_exit_2(tmp_path):
    for args in (
        ("create-user", "x@example.org", "--role", "king", "--name", "X"),
        ("migrate", "--frobnicate"),
        ("serve", "--port", "99999"),
        ("create-user",),
    ):
        result = homework_cli(*args, instance=tmp_path)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("homework: error:"), result.stderr


def test_every_command_has_help(capsys):
    for command in (
        "init",
        "create-user",
        "migrate",
        "serve",
        "demo",
        "audit",
        "reset-password",
        "reset-2fa",
        "plugins",
    ):
        try:
            main([command, "--help"])
        except SystemExit as exc:
            assert exc.code in (0, None)
        out = capsys.readouterr().out
        assert "Usage: homework" in out and "--instance" in out, command


def test_migrate_lists_applied_and_pending(tmp_path):
    every = migration_status(sqlite_utils.Database(memory=True))[1]
    first, rest = every[0], every[1:]
    old = connect(tmp_path / "homework.db")
    migrations.apply(old, stop_before=rest[0])  # a database from the first release
    old.close()

    listed = homework_cli("migrate", "--list", instance=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"applied  {first}"] + [f"pending  {n}" for n in rest]
    still = connect(tmp_path / "homework.db")
    assert migration_status(still) == ([first], rest)  # listing applied nothing
    still.close()

    applied = homework_cli("migrate", instance=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        f"applied  {first}",
        *[f"applied  {n}  (just now)" for n in rest],
        f"{len(rest)} migration(s) applied; the database is current.",
    ]
    listed = homework_cli("migrate", "--list", instance=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"applied  {n}" for n in every]


def test_demo_prints_passwords_once_and_second_run_keeps_them(tmp_path):
    first = homework_cli("demo", "--if-empty", instance=tmp_path)
    assert first.returncode == 0
    assert first.stdout.count("password: ") == 2
    second = homework_cli("demo", "--if-empty", instance=tmp_path)
    assert "password: " not in second.stdout and "existing clinic" in second.stdout
    conn = sqlite3.connect(tmp_path / "homework.db")
    assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 2


def test_reset_password_prints_a_new_one(tmp_path):
    homework_cli("demo", instance=tmp_path)
    result = homework_cli("reset-password", "therapist@demo.invalid", instance=tmp_path)
    assert result.returncode == 0 and "new password for" in result.stdout
    missing = homework_cli("reset-password", "nobody@demo.invalid", instance=tmp_path)
    assert missing.returncode == 2


def test_weak_secret_key_refuses_from_the_cli(tmp_path):
    (tmp_path / "secret_key").write_text("changeme")
    result = homework_cli("migrate", instance=tmp_path)
    assert result.returncode == 1
    assert "secret key" in result.stderr and "Traceback" not in result.stderr


def test_reassign_and_erase_commands_standalone(app, runner):
    from homework.couples import create_couple
    from homework.storage import get_db

    with app.app_context():
        couple_id = create_couple(
            get_db(),
            2,
            {"label": "Standalone couple", "partner_a": "A", "partner_b": "B", "flags": []},
        )
    result = runner.invoke(args=["homework", "reassign", "--couple", str(couple_id), "--to", "99"])
    assert result.exit_code == 2
    assert "no enabled account with id 99" in result.output
    result = runner.invoke(args=["homework", "reassign", "--couple", str(couple_id), "--to", "3"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        owner = get_db().execute("SELECT owner_id FROM couples").fetchone()[0]
    assert owner == 3
    result = runner.invoke(args=["homework", "erase", "--couple", str(couple_id), "--yes"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM couples").fetchone()[0] == 0

"""`homework doctor`: each problem named with its fix, exit 1 while any is left."""

import os
import sqlite3
from pathlib import Path

import pytest

from homework.backups import take_backup
from homework.storage import release_connections


def doctor(app) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["homework", "doctor"])
    return result.exit_code, result.output


@pytest.fixture
def healthy(app):
    """An instance with nothing wrong: private files, a fresh backup, an HTTPS address."""
    app.config["HOMEWORK_PUBLIC_URL"] = "https://practice.example"
    app.config["HOMEWORK_MIN_FREE_DISK_MB"] = 1
    instance = Path(app.instance_path)
    take_backup(
        Path(app.config["HOMEWORK_DATABASE"]),
        Path(app.config["HOMEWORK_UPLOADS"]),
        Path(app.config["HOMEWORK_BACKUP_DIR"]),
    )
    for path in [instance, *instance.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)
    return app


def test_a_healthy_instance_passes(healthy):
    code, output = doctor(healthy)
    assert code == 0, output
    assert "PROBLEM" not in output and "Nothing wrong found." in output


def problem_lines(output: str) -> list[str]:
    lines = output.splitlines()
    return [f"{line}\n{lines[i + 1]}" for i, line in enumerate(lines) if line.startswith("PROBLEM")]


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (lambda app: Path(app.instance_path).chmod(0o755), "chmod -R go-rwx"),
        (
            lambda app: (Path(app.instance_path) / "secret_key").chmod(0o644),
            "secret_key holds secrets and has mode 0644",
        ),
        (lambda app: app.config.update(HOMEWORK_PUBLIC_URL=None), "HOMEWORK_PUBLIC_URL is not set"),
        (
            lambda app: app.config.update(HOMEWORK_PUBLIC_URL="http://practice.example"),
            "not an https:// address",
        ),
        (
            lambda app: app.config.update(HOMEWORK_RENDER_CPU_SECONDS=0),
            "HOMEWORK_RENDER_CPU_SECONDS (CPU seconds a render may use) is 0",
        ),
        (
            lambda app: app.config.update(HOMEWORK_RENDER_TIMEOUT_SECONDS=None),
            "HOMEWORK_RENDER_TIMEOUT_SECONDS (seconds a render may take) is None",
        ),
        (lambda app: app.config.update(HOMEWORK_MIN_FREE_DISK_MB=10**12), "MB free on the disk"),
        (
            lambda app: [p.unlink() for p in Path(app.config["HOMEWORK_BACKUP_DIR"]).iterdir()],
            "there is no backup in",
        ),
        (
            lambda app: [
                os.utime(p, (1, 1)) for p in Path(app.config["HOMEWORK_BACKUP_DIR"]).iterdir()
            ],
            "the newest backup in",
        ),
    ],
)
def test_each_problem_is_named_with_its_fix(healthy, break_it, expected):
    break_it(healthy)
    code, output = doctor(healthy)
    assert code == 1
    named = [p for p in problem_lines(output) if expected in p]
    assert len(named) == 1, output
    assert "\n         fix: " in named[0]


def test_debug_mode_is_named(healthy, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    code, output = doctor(healthy)
    assert code == 1 and "PROBLEM  debug mode is on" in output


def test_a_database_out_of_wal_mode_is_named(healthy):
    path = healthy.config["HOMEWORK_DATABASE"]
    release_connections(path)  # the app's idle connections would keep it in WAL mode
    for suffix in ("-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    conn.close()
    code, output = doctor(healthy)
    assert code == 1
    assert "the database is in delete mode, not WAL" in output


def test_proxy_count_is_checked_against_the_headers_seen(healthy):
    client = healthy.test_client()
    code, output = doctor(healthy)
    assert code == 0 and "no request has reached the server yet" in output

    # Requests come through a proxy, but homework was not told to trust one.
    client.get("/login", headers={"X-Forwarded-For": "203.0.113.9"})
    code, output = doctor(healthy)
    assert code == 1
    assert "requests arrive through 1 proxy(ies)" in output
    assert "set HOMEWORK_PROXY_COUNT = 1" in output

    # Told to trust two, but no request carried two addresses: a client could pick its own.
    healthy.config["HOMEWORK_PROXY_COUNT"] = 2
    code, output = doctor(healthy)
    assert code == 1 and "HOMEWORK_PROXY_COUNT is 2 but no request carried more than 1" in output

    healthy.config["HOMEWORK_PROXY_COUNT"] = 1
    code, output = doctor(healthy)
    assert code == 0 and "HOMEWORK_PROXY_COUNT 1 matches the proxy headers seen" in output


def test_the_proxy_record_holds_no_address(healthy):
    healthy.test_client().get("/login", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    record = (Path(healthy.instance_path) / "proxy-headers-seen.json").read_text()
    assert "203.0.113.9" not in record and "10.0.0.1" not in record
    assert record == '{"x_forwarded_for_hops": [2]}'

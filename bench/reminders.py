"""Reminders: a week of them for 2,000 couples through a local SMTP server, and the
dashboard's p95 with and without the reminder loop, side by side in one run.

1. Seeds 20 therapists and 2,000 couples, each with an active item (three practices a
   week for two weeks) and both partners' consent, then runs the reminder loop in this
   process once per simulated hour for seven days (Europe/Berlin) against aiosmtpd in its
   own process. Reports wall time, messages and per-message cost.
2. Starts `homework serve` (its own reminder loop on) on a fresh copy whose items are due
   today, measures dashboard GETs from 8 clients while nothing is due, then records every
   partner's consent at once (4,000 reminders due now) and measures the dashboard again
   while serve's loop sends them, and once more when all are sent. Reports the p95s and
   how much the loop sent meanwhile.

Prints one JSON object as its last line. `--quick`: 200 couples, shorter measurements.
"""

import argparse
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import PASSWORD, Client, dashboard_client, free_port, p95, run_clients  # noqa: E402

from homework import create_app, reminders  # noqa: E402
from homework.passwords import hash_password  # noqa: E402
from homework.tracking import derive_token  # noqa: E402

ZONE = "Europe/Berlin"
WEEK_START = date(2026, 3, 2)  # a Monday
SMTP_SERVER = """
import sys, threading
from aiosmtpd.controller import Controller
class Count:
    n = 0
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
for line in sys.stdin:
    print(Count.n, flush=True)
c.stop()
"""


class Smtp:
    """aiosmtpd in its own process, counting what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SMTP_SERVER, str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def count(self) -> int:
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def cpu_seconds(self) -> float:
        """The server process's own CPU time so far (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def config(smtp: Smtp, **extra) -> dict:
    return {
        "HOMEWORK_SMTP_HOST": "127.0.0.1",
        "HOMEWORK_SMTP_PORT": smtp.port,
        "HOMEWORK_SMTP_SECURITY": "none",
        "HOMEWORK_MAIL_FROM": "reminders@bench.invalid",
        "HOMEWORK_PUBLIC_URL": "https://practice.example",
        "HOMEWORK_TIMEZONE": ZONE,
        **extra,
    }


def seed(instance: Path, therapists: int, couples: int, start: date, consent: bool) -> None:
    """A clinic in plain SQL: couples with one active item and a check-in link each."""
    app = create_app(instance_path=instance, create_database=True)
    secret = app.config["SECRET_KEY"]
    conn = sqlite3.connect(instance / "homework.db", isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    now = "2026-01-01T00:00:00+00:00"
    hashed = hash_password(PASSWORD)
    conn.executemany(
        "INSERT INTO users (id, email, name, role, password_hash, password_changed_at,"
        " created_at) VALUES (?, ?, ?, 'therapist', ?, ?, ?)",
        [(t + 1, f"t{t}@bench.invalid", f"Dr. Bench {t}", hashed, now, now)
         for t in range(therapists)],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO couples (id, owner_id, label, partner_a, partner_b, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(c + 1, c % therapists + 1, f"Couple {c}", f"A{c}", f"B{c}", now, now)
         for c in range(couples)],
    )  # fmt: skip
    due = start + timedelta(days=13)
    conn.executemany(
        "INSERT INTO packets (id, couple_id, created_by, created_at) VALUES (?,?,?,?)",
        [(c + 1, c + 1, c % therapists + 1, now) for c in range(couples)],
    )
    conn.executemany(
        "INSERT INTO homework (id, couple_id, packet_id, assignment_id, assignment_version,"
        " pack_id, title, personalization, snapshot, snapshot_sha256, start_date, due_date,"
        " per_week, weeks, status, created_by, created_at, who, series_id)"
        " VALUES (?,?,?,'memory-walk',1,'core','A memory walk','{}','{}',?,?,?,3,2,'active',"
        " ?,?,'together',?)",
        [(c + 1, c + 1, c + 1, "0" * 64, start.isoformat(), due.isoformat(),
          c % therapists + 1, now, c + 1) for c in range(couples)],
    )  # fmt: skip
    for c in range(couples):
        salt = f"{c:032x}"
        token = derive_token(secret, c + 1, salt)
        conn.execute(
            "INSERT INTO checkin_tokens (id, token_sha256, salt, couple_id, packet_id,"
            " created_at, expires_on) VALUES (?,?,?,?,?,?,?)",
            (c + 1, hashlib.sha256(token.encode()).hexdigest(), salt, c + 1, c + 1, now,
             (due + timedelta(weeks=8)).isoformat()),
        )  # fmt: skip
    if consent:
        add_consent(conn, couples)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def add_consent(conn: sqlite3.Connection, couples: int) -> None:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    conn.executemany(
        "INSERT INTO reminder_contacts (couple_id, partner, email, consent, recorded_by,"
        " recorded_at, salt) VALUES (?, ?, ?, 1, 1, ?, ?)",
        [(c + 1, p, f"{p}{c}@home.invalid", now, f"{c:030x}{p}{p}")
         for c in range(couples) for p in ("a", "b")],
    )  # fmt: skip


def week_of_reminders(tmp: Path, couples: int) -> dict:
    instance = tmp / "week"
    seed(instance, 20, couples, WEEK_START, consent=True)
    smtp = Smtp()
    try:
        app = create_app(instance_path=instance, config=config(smtp))
        zone = ZoneInfo(ZONE)
        first = datetime.combine(WEEK_START, datetime.min.time(), tzinfo=zone)
        server_cpu = smtp.cpu_seconds()
        started, cpu = time.perf_counter(), time.process_time()
        sent = failed = 0
        for hour in range(7 * 24):
            report = reminders.run_once(app, now=first + timedelta(hours=hour))
            sent, failed = sent + report.sent, failed + report.failed
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        server_cpu = smtp.cpu_seconds() - server_cpu
        received = smtp.count()
    finally:
        smtp.stop()
    return {
        "couples": couples,
        "ticks": 7 * 24,
        "sent": sent,
        "failed": failed,
        "received_by_smtp": received,
        "seconds": round(seconds, 2),
        "ms_per_message": round(seconds * 1000 / max(1, sent), 3),
        # The sender's own CPU time: on a machine busy with other work the wall time
        # above includes waiting for a core.
        "sender_cpu_seconds": round(cpu, 2),
        "sender_cpu_ms_per_message": round(cpu * 1000 / max(1, sent), 3),
        # What the SMTP server spent receiving them (its own process, the other core).
        "smtp_server_cpu_ms_per_message": round(server_cpu * 1000 / max(1, sent), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def dashboard_p95(port: int, therapists: int, seconds: float, clients: int = 8) -> dict:
    latencies, outcomes, wall = run_clients(clients, seconds, dashboard_client(port, therapists))
    return {
        "requests": len(latencies),
        "errors": sum(1 for s in outcomes if s != 200),
        "p95_ms": round(p95(latencies) * 1000, 1),
        "median_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
    }


def loop_beside_dashboard(tmp: Path, couples: int, seconds: float) -> dict:
    instance = tmp / "serve"
    today = date.today()
    seed(instance, 20, couples, today, consent=False)
    smtp = Smtp()
    settings = config(
        smtp,
        HOMEWORK_REMINDER_HOURS=[0, 24],  # due now, whenever the bench runs
        HOMEWORK_REMINDER_INTERVAL_SECONDS=1,
        HOMEWORK_TIMEZONE="UTC",
    )
    (instance / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in settings.items()))
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("homework")), "serve", "--port", str(port),
         "--instance", str(instance)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(3000):
            try:
                if Client(port).request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        without = dashboard_p95(port, 20, seconds)
        conn = sqlite3.connect(instance / "homework.db", isolation_level=None, timeout=60)
        conn.execute("BEGIN IMMEDIATE")
        add_consent(conn, couples)  # every partner's reminder is due at once
        conn.execute("COMMIT")
        before = smtp.count()
        with_loop = dashboard_p95(port, 20, seconds)
        during = smtp.count() - before
        deadline = time.monotonic() + 600
        while smtp.count() < 2 * couples and time.monotonic() < deadline:
            time.sleep(0.2)
        total = smtp.count()
        # Once more with nothing left to send: on a machine shared with other work this
        # shows how much of any difference above is the machine, not the loop.
        after = dashboard_p95(port, 20, seconds)
        states = dict(conn.execute("SELECT state, COUNT(*) FROM reminder_outbox GROUP BY state"))
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
        smtp.stop()
    return {
        "dashboard_without_loop": without,
        "dashboard_while_loop_sends": with_loop,
        "dashboard_after_loop_sent_all": after,
        "sent_while_measuring": during,
        "sent_in_all": total,
        "outbox": states,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--couples", type=int, help="how many couples (default 2,000)")
    parser.add_argument("--week-only", action="store_true", help="only part 1, the week")
    args = parser.parse_args()
    couples = args.couples or (200 if args.quick else 2000)
    seconds = 5 if args.quick else 15
    tmp = Path(tempfile.mkdtemp(prefix="homework-bench-reminders-"))
    try:
        week = week_of_reminders(tmp, couples)
        print(f"a week of reminders: {json.dumps(week)}", file=sys.stderr)
        side = {} if args.week_only else loop_beside_dashboard(tmp, couples, seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "reminders", "week": week, **side}))


if __name__ == "__main__":
    main()

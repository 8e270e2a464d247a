"""Reminders: a week of them for 2,000 couples through a local SMTP server, and the
dashboard's p95 with and without the reminder loop, side by side in one run.

1. Seeds 20 therapists and 2,000 couples, each with an active item (three practices a
   week for two weeks) and both partners' consent, then runs the reminder loop in this
   process once per simulated hour for seven days (Europe/Berlin) against aiosmtpd in its
   own process. Reports wall time, messages and per-message cost, and beside it the
   floor any careful sender has (see `sending_floor`): the same number of messages sent
   already built by bare smtplib, plus as many one-row durable commits.
2. Starts `homework serve` (its own reminder loop on) on a fresh copy whose items are due
   today, and measures dashboard GETs from 8 clients in short windows that take turns:
   idle (nothing due), sending (just before it, a share of the couples' consent is
   recorded, so serve's loop has more reminders due than it can send in the window),
   idle again once all are sent, and so on. A shared machine drifts over a minute; a
   pair of neighbouring windows hardly does. Reports each window's p95, and per sending
   window its p95 over the mean of the idle windows either side; the median of those
   ratios says whether the loop moves the dashboard (1.0: not at all).

Prints one JSON object as its last line. `--quick`: 200 couples, shorter measurements.
"""

import argparse
import hashlib
import json
import os
import shutil
import smtplib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import PASSWORD, Client, csrf, free_port, p95  # noqa: E402

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
    last = b""
    async def handle_DATA(self, server, session, envelope):
        Count.n += 1
        Count.last = envelope.original_content
        return "250 OK"
c = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
for line in sys.stdin:
    print(Count.last.hex() if line.strip() == "last" else Count.n, flush=True)
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

    def last_message(self) -> bytes:
        """The bytes of the last message the server received."""
        self.proc.stdin.write("last\n")
        self.proc.stdin.flush()
        return bytes.fromhex(self.proc.stdout.readline().strip())

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


def add_consent(conn: sqlite3.Connection, couples: int, first: int = 0) -> None:
    """Both partners' consent for couples `first` to `first + couples - 1` (0-based)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    conn.executemany(
        "INSERT INTO reminder_contacts (couple_id, partner, email, consent, recorded_by,"
        " recorded_at, salt) VALUES (?, ?, ?, 1, 1, ?, ?)",
        [(c + 1, p, f"{p}{c}@home.invalid", now, f"{c:030x}{p}{p}")
         for c in range(first, first + couples) for p in ("a", "b")],
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
        floor = sending_floor(smtp, smtp.last_message(), sent, tmp)
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
        # The anchor from the same run: what the two things each message cannot do without
        # cost on their own (see sending_floor), and the loop's time over their sum.
        "floor": floor,
        "over_floor": round(seconds / (floor["smtp_seconds"] + floor["commit_seconds"]), 2),
    }


def sending_floor(smtp: Smtp, message: bytes, count: int, tmp: Path) -> dict:
    """The anchor for the week: the least any sender that keeps "at most one duplicate
    per crash" under `synchronous=FULL` must do per message, each part timed alone.

    - SMTP: the same server takes `count` copies of the last reminder it received, sent
      already built with bare smtplib over one connection (no database, no templates).
    - Commits: `count` transactions of one UPDATE each on a WAL database with
      synchronous=FULL beside the clinic's database (one fsync each): a sender has to
      record each message as sent, durably, before it sends the next."""
    with smtplib.SMTP("127.0.0.1", smtp.port) as client:
        started = time.perf_counter()
        for n in range(count):
            client.sendmail("reminders@bench.invalid", [f"floor{n}@home.invalid"], message)
        smtp_seconds = time.perf_counter() - started
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, state TEXT)")
    conn.executemany("INSERT INTO outbox VALUES (?, 'planned')", [(n,) for n in range(count)])
    started = time.perf_counter()
    for n in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE outbox SET state = 'sent' WHERE id = ?", [n])
        conn.execute("COMMIT")
    commit_seconds = time.perf_counter() - started
    conn.close()
    return {
        "messages": count,
        "message_bytes": len(message),
        "smtp_seconds": round(smtp_seconds, 2),
        "commit_seconds": round(commit_seconds, 2),
    }


class Dashboards:
    """`clients` therapists signed in once (a sign-in hashes a password: it would weigh
    on whichever window it fell in), loading their dashboards in turns of `measure`."""

    def __init__(self, port: int, clients: int = 8):
        self.clients = []
        for i in range(clients):
            client = Client(port)
            _, page, _ = client.request("GET", "/login")
            login = {"email": f"t{i}@bench.invalid", "password": PASSWORD,
                     "csrf_token": csrf(page)}  # fmt: skip
            assert client.request("POST", "/login", login)[0] == 302
            self.clients.append(client)

    def measure(self, seconds: float) -> dict:
        latencies: list[float] = []
        statuses: list[int] = []
        deadline = time.monotonic() + seconds

        def work(client: Client) -> None:
            while time.monotonic() < deadline:
                status, _, elapsed = client.request("GET", "/")
                latencies.append(elapsed)
                statuses.append(status)

        threads = [threading.Thread(target=work, args=(c,)) for c in self.clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return {
            "requests": len(latencies),
            "errors": sum(1 for s in statuses if s != 200),
            "p95_ms": round(p95(latencies) * 1000, 1),
            "median_ms": round(statistics.median(latencies) * 1000, 1),
        }


def loop_beside_dashboard(tmp: Path, couples: int, seconds: float, turns: int) -> dict:
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
    conn = sqlite3.connect(instance / "homework.db", isolation_level=None, timeout=60)
    windows: list[dict] = []

    def window(kind: str) -> dict:
        before = smtp.count()
        found = {"kind": kind, **dashboards.measure(seconds)}
        found["sent_meanwhile"] = smtp.count() - before
        windows.append(found)
        return found

    def drain(total: int) -> None:
        deadline = time.monotonic() + 600
        while smtp.count() < total and time.monotonic() < deadline:
            time.sleep(0.2)

    try:
        for _ in range(3000):
            try:
                if Client(port).request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        dashboards = Dashboards(port)
        dashboards.measure(seconds)  # warm: each worker renders each dashboard once
        share = couples // turns
        window("idle")
        for turn in range(turns):
            conn.execute("BEGIN IMMEDIATE")
            add_consent(conn, share, first=turn * share)  # 2 reminders a couple, due now
            conn.execute("COMMIT")
            drain(2 * share * turn + 1)  # the loop's next run has begun to send
            sending = window("sending")
            # The loop had more to send than the window lasted: it sent all through it.
            sending["still_due_at_end"] = 2 * share * (turn + 1) - smtp.count()
            drain(2 * share * (turn + 1))
            window("idle")
        states = dict(conn.execute("SELECT state, COUNT(*) FROM reminder_outbox GROUP BY state"))
        total = smtp.count()
    finally:
        conn.close()
        server.terminate()
        server.wait(timeout=60)
        smtp.stop()
    ratios = []
    for i, found in enumerate(windows):
        if found["kind"] == "sending":
            idle = (windows[i - 1]["p95_ms"] + windows[i + 1]["p95_ms"]) / 2
            found["p95_over_idle_either_side"] = round(found["p95_ms"] / idle, 3)
            ratios.append(found["p95_over_idle_either_side"])
    idle = [w["p95_ms"] for w in windows if w["kind"] == "idle"]
    busy = [w["p95_ms"] for w in windows if w["kind"] == "sending"]
    return {
        "dashboard_windows": windows,
        "dashboard_p95_ms_median_idle": statistics.median(idle),
        "dashboard_p95_ms_median_sending": statistics.median(busy),
        # Each sending window against its own neighbours, then the median over turns.
        "dashboard_p95_ratio_sending_to_idle_median": statistics.median(ratios),
        "dashboard_p95_ratio_min_max": [min(ratios), max(ratios)],
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
    seconds = 4 if args.quick else 8
    turns = 3 if args.quick else 5
    tmp = Path(tempfile.mkdtemp(prefix="homework-bench-reminders-"))
    try:
        week = week_of_reminders(tmp, couples)
        print(f"a week of reminders: {json.dumps(week)}", file=sys.stderr)
        side = {} if args.week_only else loop_beside_dashboard(tmp, couples, seconds, turns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "reminders", "week": week, **side}))


if __name__ == "__main__":
    main()

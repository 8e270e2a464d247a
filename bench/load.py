"""Load: a clinic-sized database behind `homework serve`, hit from this second process.

Seeds 20 therapists, 2,000 couples, 40,000 items and 400,000 practice records (a tenth
of that with --quick), starts `homework serve` with its default workers, then measures
the dashboard and check-in POSTs at 16 concurrent clients, each alone, then both at once
(8 clients each: the check-ins keep changing the dashboards being read), then GET /healthz,
the lightest request that reaches the database, as the floor this server and machine set.
Prints one JSON object as its last line: latencies, throughput, errors and lost writes.

Then a scale run in this process (see `scale_run`): the dashboard for therapists with 1,
10, 100 and 1,000 couples in clinics of 200 and 2,000 couples (`--scale 200,2000,20000`
adds a clinic of 20,000, with about 3 minutes more seeding).
"""

import argparse
import http.client
import json
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from homework import create_app  # noqa: E402
from homework.passwords import hash_password  # noqa: E402
from homework.tracking import derive_token  # noqa: E402

PASSWORD = "bench password for load"


def seed(
    instance: Path,
    therapists: int,
    couples: int,
    items: int,
    practices: int,
    owners: list[int] | None = None,
    links: bool = True,
) -> dict:
    """Fill a fresh instance quickly with plain SQL (one transaction); return what clients
    need. `owners` gives each couple's therapist (1-based; round robin without it), and
    `links=False` leaves out the check-in links (hashing each one is slow)."""
    owner = owners.__getitem__ if owners else (lambda c: c % therapists + 1)
    app = create_app(instance_path=instance, create_database=True)
    secret = app.config["SECRET_KEY"]
    snapshot = json.dumps(
        {
            "schema": 1,
            "assignment": {"id": "memory-walk", "title": "A memory walk", "who": "together"},
        }
    )
    conn = sqlite3.connect(instance / "homework.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN IMMEDIATE")
    now = "2026-01-01T00:00:00+00:00"
    today = date.today()
    hashed = hash_password(PASSWORD)
    for t in range(therapists):
        conn.execute(
            "INSERT INTO users (id, email, name, role, password_hash, password_changed_at,"
            " created_at) VALUES (?, ?, ?, 'therapist', ?, ?, ?)",
            (t + 1, f"t{t}@bench.invalid", f"Dr. Bench {t}", hashed, now, now),
        )
    conn.executemany(
        "INSERT INTO couples (id, owner_id, label, partner_a, partner_b, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(c + 1, owner(c), f"Couple {c}", f"A{c}", f"B{c}", now, now) for c in range(couples)],
    )
    per_couple = items // couples
    packets, homework, tokens = [], [], []
    rng = random.Random(1)
    for c in range(couples):
        for k in range(per_couple):
            hw_id = c * per_couple + k + 1
            packet_id = hw_id  # one item per packet, one check-in link each
            start = today - timedelta(days=rng.randint(0, 70))
            due = start + timedelta(days=14)
            status = "active" if due >= today - timedelta(days=7) else "done"
            packets.append((packet_id, c + 1, owner(c), now))
            homework.append(
                (hw_id, c + 1, packet_id, "memory-walk", 1, "core", "A memory walk", "{}",
                 snapshot, "0" * 64, start.isoformat(), due.isoformat(), 3, 2, status,
                 owner(c), now, "together")
            )  # fmt: skip
            tokens.append(
                (
                    packet_id,
                    f"pending-{packet_id}",
                    f"{packet_id:032x}",
                    c + 1,
                    packet_id,
                    now,
                    (due + timedelta(weeks=8)).isoformat(),
                )
            )
    conn.executemany(
        "INSERT INTO packets (id, couple_id, created_by, created_at) VALUES (?,?,?,?)", packets
    )
    conn.executemany(
        "INSERT INTO homework (id, couple_id, packet_id, assignment_id, assignment_version,"
        " pack_id, title, personalization, snapshot, snapshot_sha256, start_date, due_date,"
        " per_week, weeks, status, created_by, created_at, who)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        homework,
    )
    tokens = tokens if links else []
    conn.executemany(
        "INSERT INTO checkin_tokens (id, token_sha256, salt, couple_id, packet_id, created_at,"
        " expires_on) VALUES (?,?,?,?,?,?,?)",
        tokens,
    )
    import hashlib

    live_links = []
    for token_id, _, salt, _couple_id, packet_id, _, _ in tokens:
        token = derive_token(secret, token_id, salt)
        conn.execute(
            "UPDATE checkin_tokens SET token_sha256 = ? WHERE id = ?",
            (hashlib.sha256(token.encode()).hexdigest(), token_id),
        )
        live_links.append((token, packet_id))
    whos, outcomes = ("a", "b", "together"), ("done", "done", "partly", "not")
    conn.executemany(
        "INSERT INTO practice (homework_id, couple_id, practiced_on, who, outcome, helpfulness,"
        " reflection, source, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            (
                (hw := rng.randint(1, couples * per_couple)),
                (hw - 1) // per_couple + 1,
                (today - timedelta(days=rng.randint(0, 56))).isoformat(),
                rng.choice(whos),
                rng.choice(outcomes),
                rng.randint(1, 5),
                "A seeded reflection." if rng.random() < 0.05 else "",
                "checkin",
                now,
            )
            for _ in range(practices)
        ),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    active = {r[0] for r in conn.execute("SELECT packet_id FROM homework WHERE status = 'active'")}
    conn.close()
    return {"links": [(t, p) for t, p in live_links if p in active]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP client with its own cookies."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookie = ""

    def request(
        self, method: str, path: str, body: dict | None = None, raw: bool = False
    ) -> tuple[int, str | bytes, float]:
        """(status, the body as text, or as bytes with `raw`, seconds)."""
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - start
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, payload if raw else payload.decode("utf-8", "replace"), elapsed


def csrf(text: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', text).group(1)


def dashboard_client(port: int, therapists: int):
    """A load client's work: sign in as one of the bench therapists, then load the
    dashboard until the deadline, noting each answer's time and status."""

    def work(i, deadline, latencies, outcomes):
        client = Client(port)
        _, page, _ = client.request("GET", "/login")
        login = {"email": f"t{i % therapists}@bench.invalid", "password": PASSWORD,
                 "csrf_token": csrf(page)}  # fmt: skip
        status, _, _ = client.request("POST", "/login", login)
        assert status == 302, status
        while time.monotonic() < deadline:
            status, _, elapsed = client.request("GET", "/")
            latencies.append(elapsed)
            outcomes.append(status)

    return work


def run_clients(n: int, seconds: float, work) -> tuple[list[float], list, int]:
    """Run `work(client_index, deadline, latencies, outcomes)` in n threads."""
    latencies: list[float] = []
    outcomes: list = []
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=work, args=(i, deadline, latencies, outcomes)) for i in range(n)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, outcomes, time.monotonic() - start


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


CASELOADS = (1, 10, 100, 1000)


def scale_run(sizes: list[int], rounds: int) -> list[dict]:
    """The dashboard rendered afresh, in this process, for therapists with 1, 10, 100 and
    1,000 couples in clinics of each size (the rest of each clinic in caseloads of 100;
    10 items and 50 practice records a couple). Per therapist, medians of `rounds`:
    the page as the worker keeps it (the anchor: nothing changed), after one new
    practice record of one of their couples, and with nothing kept (a first load)."""
    out = []
    for size in sizes:
        caseloads = [n for n in CASELOADS if n <= size // 2]
        owners = [t + 1 for t, n in enumerate(caseloads) for _ in range(n)]
        rest = size - len(owners)
        owners += [len(caseloads) + 1 + k // 100 for k in range(rest)]
        with tempfile.TemporaryDirectory() as tmp:
            instance = Path(tmp) / "instance"
            started = time.perf_counter()
            seed(instance, max(owners), size, size * 10, size * 50, owners=owners, links=False)
            seed_s = time.perf_counter() - started
            app = create_app(instance_path=instance)
            state = app.extensions["homework"]
            conn = sqlite3.connect(instance / "homework.db", isolation_level=None)
            rng = random.Random(size)
            for t, caseload in enumerate(caseloads):
                client = app.test_client()
                page = client.get("/login").get_data(as_text=True)
                login = {"email": f"t{t}@bench.invalid", "password": PASSWORD,
                         "csrf_token": csrf(page)}  # fmt: skip
                assert client.post("/login", data=login).status_code == 302
                items = conn.execute(
                    "SELECT h.id, h.couple_id FROM homework h JOIN couples c"
                    " ON c.id = h.couple_id WHERE c.owner_id = ? AND h.status = 'active'",
                    [t + 1],
                ).fetchall()

                def timed(client=client) -> float:
                    begun = time.perf_counter()
                    response = client.get("/")
                    assert response.status_code == 200, response.status_code
                    return time.perf_counter() - begun

                kept, changed, fresh = [], [], []
                for _ in range(rounds):
                    state.extra.pop("dashboards", None)
                    state.extra.pop("dashboard_figures", None)
                    fresh.append(timed())
                    kept.append(timed())
                    hw, couple = rng.choice(items)
                    conn.execute(
                        "INSERT INTO practice (homework_id, couple_id, practiced_on, who,"
                        " outcome, source, created_at) VALUES (?, ?, ?, 'a', 'done', 'checkin',"
                        " '2026-01-01T00:00:00+00:00')",
                        [hw, couple, date.today().isoformat()],
                    )
                    changed.append(timed())
                out.append(
                    {
                        "clinic_couples": size,
                        "caseload": caseload,
                        "seed_s": round(seed_s, 1),
                        "kept_ms": round(statistics.median(kept) * 1000, 2),
                        "after_checkin_ms": round(statistics.median(changed) * 1000, 2),
                        "first_load_ms": round(statistics.median(fresh) * 1000, 2),
                    }
                )
                print(json.dumps(out[-1]), file=sys.stderr)
            conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--scale",
        default=None,
        help="clinic sizes for the scale run, comma-separated (default 200,2000, with"
        " --quick 200; 20000 adds about 3 minutes of seeding); 0 skips it",
    )
    parser.add_argument("--only-scale", action="store_true", help="skip the server phases")
    args = parser.parse_args()
    sizes = [int(n) for n in (args.scale or ("200" if args.quick else "200,2000")).split(",")]
    sizes = [n for n in sizes if n > 0]
    if args.only_scale:
        print(json.dumps({"benchmark": "load", "scale": scale_run(sizes, 3 if args.quick else 7)}))
        return
    scale = 10 if args.quick else 1
    therapists, couples = 20 // (2 if args.quick else 1), 2000 // scale
    items, practices = 40_000 // scale, 400_000 // scale
    seconds = 8 if args.quick else 25
    clients = 16

    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        started = time.perf_counter()
        seeded = seed(instance, therapists, couples, items, practices)
        seed_s = time.perf_counter() - started
        (instance / "config.py").write_text(
            "HOMEWORK_CHECKIN_LIMIT_PER_TOKEN = 1000000\nHOMEWORK_CHECKIN_LIMIT_PER_IP = 1000000\n"
        )
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("homework")),
                "serve",
                "--port",
                str(port),
                "--instance",
                str(instance),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)

            dashboard_work = dashboard_client(port, therapists)

            links = seeded["links"]

            def checkin_work(i, deadline, latencies, outcomes):
                client = Client(port)
                token, packet_id = links[i * 97 % len(links)]
                status, page, _ = client.request("GET", f"/c/{token}")
                assert status == 200, status
                item = re.search(r'name="item" value="(\d+)"', page).group(1)
                n = 0
                while time.monotonic() < deadline:
                    note = f"load client {i} note {n}"
                    form = {
                        "csrf_token": csrf(page),
                        "item": item,
                        "practiced_on": date.today().isoformat(),
                        "who": "together",
                        "outcome": "done",
                        "private": "shared",
                        "reflection": note,
                    }
                    status, _, elapsed = client.request("POST", f"/c/{token}", form)
                    latencies.append(elapsed)
                    outcomes.append((status, note))
                    n += 1

            def floor_work(i, deadline, latencies, outcomes):
                client = Client(port)
                while time.monotonic() < deadline:
                    status, _, elapsed = client.request("GET", "/healthz")
                    latencies.append(elapsed)
                    outcomes.append(status)

            mixed_dash, mixed_check, mixed_posts = [], [], []

            def mixed_work(i, deadline, _latencies, outcomes):
                # Half the clients check in (for other couples than the check-in phase),
                # half read dashboards that those check-ins keep changing.
                if i % 2:
                    checkin_work(i + clients, deadline, mixed_check, mixed_posts)
                else:
                    dashboard_work(i, deadline, mixed_dash, outcomes)

            dash_lat, dash_out, dash_s = run_clients(clients, seconds, dashboard_work)
            check_lat, check_out, check_s = run_clients(clients, seconds, checkin_work)
            _, mixed_out, mixed_s = run_clients(clients, seconds, mixed_work)
            floor_lat, floor_out, floor_s = run_clients(clients, seconds / 2, floor_work)
        finally:
            server.terminate()
            server.wait(timeout=30)
        conn = sqlite3.connect(instance / "homework.db")
        stored = {
            r[0]
            for r in conn.execute(
                "SELECT reflection FROM practice WHERE reflection LIKE 'load client %'"
            )
        }
        posts = check_out + mixed_posts
        acknowledged = {note for status, note in posts if status == 302}
        conn.close()

    result = {
        "benchmark": "load",
        "therapists": therapists,
        "couples": couples,
        "items": items,
        "practice_records": practices,
        "seed_s": round(seed_s, 1),
        "clients": clients,
        "dashboard_requests": len(dash_lat),
        "dashboard_ms_median": round(statistics.median(dash_lat) * 1000, 1),
        "dashboard_ms_p95": round(p95(dash_lat) * 1000, 1),
        "dashboard_rps": round(len(dash_lat) / dash_s, 1),
        "dashboard_errors": sum(1 for s in dash_out if s != 200),
        "checkin_posts": len(check_lat),
        "checkin_ms_median": round(statistics.median(check_lat) * 1000, 1),
        "checkin_ms_p95": round(p95(check_lat) * 1000, 1),
        "checkin_rps": round(len(check_lat) / check_s, 1),
        "checkin_errors": sum(1 for s, _ in check_out if s != 302),
        "mixed_dashboard_ms_median": round(statistics.median(mixed_dash) * 1000, 1),
        "mixed_dashboard_ms_p95": round(p95(mixed_dash) * 1000, 1),
        "mixed_checkin_ms_median": round(statistics.median(mixed_check) * 1000, 1),
        "mixed_checkin_ms_p95": round(p95(mixed_check) * 1000, 1),
        "mixed_rps": round((len(mixed_dash) + len(mixed_check)) / mixed_s, 1),
        "mixed_errors": sum(1 for s in mixed_out if s != 200)
        + sum(1 for s, _ in mixed_posts if s != 302),
        "healthz_ms_median": round(statistics.median(floor_lat) * 1000, 1),
        "healthz_ms_p95": round(p95(floor_lat) * 1000, 1),
        "healthz_rps": round(len(floor_lat) / floor_s, 1),
        "healthz_errors": sum(1 for s in floor_out if s != 200),
        "lost_writes": len(acknowledged - stored),
        "extra_writes": len(stored - acknowledged),
        "scale": scale_run(sizes, 3 if args.quick else 7),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

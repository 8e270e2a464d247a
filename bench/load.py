"""Load: a clinic-sized database behind `homework serve`, hit from this second process.

Seeds 20 therapists, 2,000 couples, 40,000 items and 400,000 practice records (a tenth
of that with --quick), starts `homework serve` with its default workers, then measures
the dashboard and check-in POSTs at 16 concurrent clients, each alone, then both at once
(8 clients each: the check-ins keep changing the dashboards being read), then two floors
this server and machine set: GET /healthz, the lightest request that reaches the
database (it commits a probe write), and a small static file (no database at all).
Each phase also reports the CPU milliseconds per request that the server's processes
used (from /proc) and that this load generator used: on a shared machine wall-clock
figures wander, CPU per request hardly does. Prints one JSON object as its last line:
latencies, throughput, CPU, errors, and lost or doubled writes.

Then a scale run in this process (see `scale_run`): the dashboard for therapists with 1,
10, 100 and 1,000 couples in clinics of 200 and 2,000 couples (`--scale 200,2000,20000`
adds a clinic of 20,000, with about 3 minutes more seeding).
"""

import argparse
import collections
import json
import os
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

# The floor anchor: a small file the server sends as it is (3.4 KB), no database.
STATIC_FILE = "/_static/checkin.css"


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
    """One HTTP/1.1 client on a plain socket, with its own cookie.

    As cheap as an honest client can be, since it shares the machine's cores with the
    server it measures: a request is bytes built once per call (or once per run, see
    `prepare`), and of the answer it reads the status line, the headers it needs
    (Content-Length, Transfer-Encoding, Connection, Set-Cookie) and the whole body.
    It keeps the connection when the server does, and opens a new one when it closes it."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.cookie = ""

    def prepare(self, method: str, path: str, body: dict | bytes | None = None) -> bytes:
        """The request as bytes on the wire, with this client's cookie as it is now."""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if self.cookie:
            head += f"Cookie: {self.cookie}\r\n"
        data = b""
        if body is not None:
            data = (
                body
                if isinstance(body, bytes)
                else urllib.parse.urlencode(body, doseq=True).encode()
            )
            head += (
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(data)}\r\n"
            )
        return (head + "\r\n").encode() + data

    def send(self, request: bytes) -> tuple[int, bytes, float]:
        """(status, body, seconds) for a prepared request; cookies it sets are kept."""
        start = time.perf_counter()
        for attempt in (0, 1):
            reused = self.sock is not None
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
            try:
                self.sock.sendall(request)
                status, head, payload = self._answer()
                break
            except ConnectionError:
                self.close()
                if not reused or attempt:  # a kept connection the server had closed
                    raise
        elapsed = time.perf_counter() - start
        headers = head.lower()
        at = headers.find(b"\r\nset-cookie:")
        if at >= 0:  # the header's name in any case; its value as sent
            value = head[at + len(b"\r\nset-cookie:") :]
            self.cookie = value.split(b";", 1)[0].split(b"\r\n", 1)[0].strip().decode()
        if b"\r\nconnection: close" in headers:
            self.close()
        return status, payload, elapsed

    def request(
        self, method: str, path: str, body: dict | None = None, raw: bool = False
    ) -> tuple[int, str | bytes, float]:
        """(status, the body as text, or as bytes with `raw`, seconds)."""
        status, payload, elapsed = self.send(self.prepare(method, path, body))
        return status, payload if raw else payload.decode("utf-8", "replace"), elapsed

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _answer(self) -> tuple[int, bytes, bytes]:
        """(status, the header block as sent, body)."""
        sock = self.sock
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("the server closed the connection")
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        status = int(head[9:12])
        headers = head.lower()  # names in any case
        if b"content-length:" in headers:
            length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            while len(rest) < length:
                chunk = sock.recv(max(65536, length - len(rest)))
                if not chunk:
                    raise ConnectionResetError("the server closed the connection mid-body")
                rest += chunk
            return status, head, rest[:length]
        if b"transfer-encoding: chunked" in headers:
            return status, head, self._chunked(rest)
        while chunk := sock.recv(65536):  # no length: the body ends with the connection
            rest += chunk
        self.close()
        return status, head, rest

    def _chunked(self, rest: bytes) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += self._more()
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            while len(rest) < size + 2:
                rest += self._more()
            if size == 0:
                return body
            body += rest[:size]
            rest = rest[size + 2 :]

    def _more(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection mid-body")
        return chunk


def csrf(text: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', text).group(1)


def dashboard_client(port: int, therapists: int):
    """A load client's work: sign in as one of the bench therapists, then load the
    dashboard until the deadline, noting each answer's time and status."""

    def work(i, clock, latencies, outcomes):
        client = Client(port)
        _, page, _ = client.request("GET", "/login")
        login = {"email": f"t{i % therapists}@bench.invalid", "password": PASSWORD,
                 "csrf_token": csrf(page)}  # fmt: skip
        status, _, _ = client.request("POST", "/login", login)
        assert status == 302, status
        cookie, request = client.cookie, client.prepare("GET", "/")
        clock.ready()
        while clock.running():
            if client.cookie != cookie:  # the server renewed the session's cookie
                cookie, request = client.cookie, client.prepare("GET", "/")
            status, _, elapsed = client.send(request)
            latencies.append(elapsed)
            outcomes.append(status)

    return work


def checkin_client(port: int, links: list[tuple[str, int]]):
    """A couple's phone, checking in again and again: it opens its check-in page once,
    as a browser does (the form's CSRF token and its cookie come from that page), then
    posts practice records until the deadline, each with a reflection of its own, so
    every acknowledged POST is one record the database must hold. An outcome is
    (status, reflection)."""

    def work(i, clock, latencies, outcomes):
        client = Client(port)
        token, _packet_id = links[i * 97 % len(links)]
        status, page, _ = client.request("GET", f"/c/{token}")
        assert status == 200, status
        item = re.search(r'name="item" value="(\d+)"', page).group(1)
        form = urllib.parse.urlencode(
            {
                "csrf_token": csrf(page),
                "item": item,
                "practiced_on": date.today().isoformat(),
                "who": "together",
                "outcome": "done",
                "private": "shared",
            }
        ).encode()
        n = 0
        clock.ready()
        while clock.running():
            note = f"load client {i} note {n}"
            body = form + b"&reflection=" + note.replace(" ", "+").encode()
            status, _, elapsed = client.send(client.prepare("POST", f"/c/{token}", body))
            latencies.append(elapsed)
            outcomes.append((status, note))
            n += 1

    return work


def get_client(port: int, path: str):
    """GET `path` until the deadline, with no session (a floor anchor)."""

    def work(i, clock, latencies, outcomes):
        client = Client(port)
        request = client.prepare("GET", path)
        clock.ready()
        while clock.running():
            status, _, elapsed = client.send(request)
            latencies.append(elapsed)
            outcomes.append(status)

    return work


class Clock:
    """When the measured part of a run starts and ends: each client calls `ready()` once
    it has signed in or opened its page, and the clock starts when all have, so setting
    up (a login hashes a password) is neither timed nor counted in the CPU figures."""

    def __init__(self, clients: int, seconds: float, on_start=None):
        self.seconds = seconds
        self.deadline = float("inf")
        self.on_start = on_start
        self.barrier = threading.Barrier(clients, action=self._start)

    def _start(self) -> None:
        if self.on_start is not None:
            self.on_start()
        self.deadline = time.monotonic() + self.seconds

    def ready(self) -> None:
        self.barrier.wait()

    def running(self) -> bool:
        return time.monotonic() < self.deadline


def run_clients(n: int, seconds: float, work, on_start=None) -> tuple[list[float], list, float]:
    """Run `work(client_index, clock, latencies, outcomes)` in n threads; the seconds
    from the clock's start (`on_start()` runs then) until the last client stops."""
    latencies: list[float] = []
    outcomes: list = []
    clock = Clock(n, seconds, on_start)
    threads = [
        threading.Thread(target=work, args=(i, clock, latencies, outcomes)) for i in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, outcomes, time.monotonic() - (clock.deadline - seconds)


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) that process `pid` and every process under it have
    used, those already ended included (from /proc). A busy shared machine stretches
    wall-clock times, but hardly what a request costs in CPU."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    children: dict[int, list[int]] = {}
    for child, (parent, _ticks) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, 0))[1]
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def measure(n: int, seconds: float, work, server_pid: int) -> dict:
    """Run n clients of `work` for `seconds`; their latencies and outcomes, and the CPU
    the server's processes and this load generator used meanwhile."""
    cpu = {}

    def on_start() -> None:
        cpu["server"], cpu["client"] = tree_cpu_s(server_pid), time.process_time()

    latencies, outcomes, wall = run_clients(n, seconds, work, on_start)
    server = tree_cpu_s(server_pid) - cpu["server"]
    client = time.process_time() - cpu["client"]
    return {
        "latencies": latencies,
        "outcomes": outcomes,
        "seconds": wall,
        "server_cpu_s": server,
        "client_cpu_s": client,
    }


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


def figures(name: str, run: dict, ok) -> dict:
    """A phase's JSON figures: latencies, throughput, errors (outcomes `ok` refuses), and
    CPU milliseconds per request of the server's processes and of this load generator."""
    latencies, count = run["latencies"], len(run["latencies"])
    return {
        f"{name}_requests": count,
        f"{name}_ms_median": round(statistics.median(latencies) * 1000, 1),
        f"{name}_ms_p95": round(p95(latencies) * 1000, 1),
        f"{name}_rps": round(count / run["seconds"], 1),
        f"{name}_errors": sum(1 for outcome in run["outcomes"] if not ok(outcome)),
        f"{name}_server_cpu_ms": round(run["server_cpu_s"] * 1000 / count, 2),
        f"{name}_client_cpu_ms": round(run["client_cpu_s"] * 1000 / count, 2),
    }


def stored_notes(database: Path) -> collections.Counter:
    """How many times each load client's reflection was stored."""
    conn = sqlite3.connect(database)
    try:
        return collections.Counter(
            r[0]
            for r in conn.execute(
                "SELECT reflection FROM practice WHERE reflection LIKE 'load client %'"
            )
        )
    finally:
        conn.close()


PHASES = ("dashboard", "checkin", "mixed", "healthz", "static")


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
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"which server phases to run, in this order (default {','.join(PHASES)})",
    )
    parser.add_argument("--seconds", type=float, default=None, help="per phase (25; --quick 8)")
    parser.add_argument(
        "--serve-args", default="", help="more options for homework serve (--workers 3)"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in (args.scale or ("200" if args.quick else "200,2000")).split(",")]
    sizes = [n for n in sizes if n > 0]
    if args.only_scale:
        print(json.dumps({"benchmark": "load", "scale": scale_run(sizes, 3 if args.quick else 7)}))
        return
    phases = [p for p in args.phases.split(",") if p]
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        parser.error(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}")
    scale = 10 if args.quick else 1
    therapists, couples = 20 // (2 if args.quick else 1), 2000 // scale
    items, practices = 40_000 // scale, 400_000 // scale
    seconds = args.seconds or (8 if args.quick else 25)
    clients = 16

    result: dict = {
        "benchmark": "load",
        "therapists": therapists,
        "couples": couples,
        "items": items,
        "practice_records": practices,
        "clients": clients,
        "serve_args": args.serve_args,
    }
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        started = time.perf_counter()
        seeded = seed(instance, therapists, couples, items, practices)
        result["seed_s"] = round(time.perf_counter() - started, 1)
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
                *args.serve_args.split(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        posts: list = []
        try:
            for _ in range(300):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            dashboard_work = dashboard_client(port, therapists)
            links = seeded["links"]
            checkin_work = checkin_client(port, links)

            def mixed_work(i, clock, latencies, outcomes):
                # Half the clients check in (for other couples than the check-in phase),
                # half read dashboards that those check-ins keep changing. An outcome is
                # ("dashboard", status) or ("checkin", (status, reflection)); a latency
                # (kind, seconds).
                kind = "checkin" if i % 2 else "dashboard"
                mine: list = []
                got: list = []
                if kind == "checkin":
                    checkin_work(i + clients, clock, mine, got)
                else:
                    dashboard_work(i, clock, mine, got)
                latencies.extend((kind, s) for s in mine)
                outcomes.extend((kind, o) for o in got)

            pid = server.pid
            for phase in phases:
                if phase == "dashboard":
                    run = measure(clients, seconds, dashboard_work, pid)
                    result.update(figures("dashboard", run, lambda s: s == 200))
                elif phase == "checkin":
                    run = measure(clients, seconds, checkin_work, pid)
                    posts += run["outcomes"]
                    result.update(figures("checkin", run, lambda o: o[0] == 302))
                elif phase == "mixed":
                    run = measure(clients, seconds, mixed_work, pid)
                    for kind in ("dashboard", "checkin"):
                        mine = [s for k, s in run["latencies"] if k == kind]
                        result[f"mixed_{kind}_ms_median"] = round(statistics.median(mine) * 1000, 1)
                        result[f"mixed_{kind}_ms_p95"] = round(p95(mine) * 1000, 1)
                    posts += [o for k, o in run["outcomes"] if k == "checkin"]
                    result["mixed_rps"] = round(len(run["latencies"]) / run["seconds"], 1)
                    answered = {"dashboard": lambda o: o == 200, "checkin": lambda o: o[0] == 302}
                    result["mixed_errors"] = sum(
                        1 for kind, o in run["outcomes"] if not answered[kind](o)
                    )
                    count = len(run["latencies"])
                    result["mixed_server_cpu_ms"] = round(run["server_cpu_s"] * 1000 / count, 2)
                    result["mixed_client_cpu_ms"] = round(run["client_cpu_s"] * 1000 / count, 2)
                elif phase == "healthz":
                    # The lightest request that reaches the database (it commits a probe write).
                    run = measure(clients, seconds / 2, get_client(port, "/healthz"), pid)
                    result.update(figures("healthz", run, lambda s: s == 200))
                else:
                    # The floor this server and machine set: a small static file, no database.
                    run = measure(clients, seconds / 2, get_client(port, STATIC_FILE), pid)
                    result.update(figures("static", run, lambda s: s == 200))
        finally:
            server.terminate()
            server.wait(timeout=30)
        stored = stored_notes(instance / "homework.db")
    acknowledged = {note for status, note in posts if status == 302}
    result["lost_writes"] = len(acknowledged - set(stored))
    result["extra_writes"] = len(set(stored) - acknowledged)
    result["doubled_writes"] = sum(1 for n in stored.values() if n > 1)
    result["scale"] = scale_run(sizes, 3 if args.quick else 7)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Crash safety: kill `homework serve` (master and workers at once) under HTTP load, many
times, and count acknowledged writes that did not survive.

A demo clinic is served by `homework serve` (2 workers). Phones send check-ins and
therapists add couples, each write carrying a unique marker; a write counts as
acknowledged when its 302 arrived. At a random moment the whole process group is
killed with SIGKILL. Then two views are checked:

- after the kill: the files as the killed server left them (SQLite's own recovery);
- after a power loss: only what the server had fsync'd. The server runs with a small
  LD_PRELOAD library that copies the database and its WAL aside whenever SQLite fsyncs
  them; those copies replace the files (and the -shm is dropped), which is what a disk
  that lost power without writing back its cache could hold.

After each crash `homework serve` is started again on the surviving files: `/healthz`
must answer 200, and every acknowledged marker must be in the database, which must pass
integrity_check.

The self-check trials run the same with one unsafe setting forced, `PRAGMA synchronous =
OFF` (SQLite never fsyncs): they must report lost writes after the power loss, or this
benchmark could not see a loss at all. `--self-check` runs only those.

Prints one JSON object as its last line; exits 1 if a safe trial lost an acknowledged
write or the self-check saw no loss.
"""

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from homework.tracking import derive_token  # noqa: E402

HOMEWORK = str(Path(sys.executable).with_name("homework"))
FILES = ("homework.db", "homework.db-wal")

# Copies a file aside after every successful fsync/fdatasync of the database or its WAL:
# the copy is what a disk holds for sure after a power loss.
DURABLE_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static void keep(int fd) {
    const char *dir = getenv("CRASH_DURABLE_DIR");
    char link[64], path[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
    if (!dir) return;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return;
    path[n] = 0;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strcmp(base, "homework.db") && strcmp(base, "homework.db-wal")) return;
    snprintf(dst, sizeof dst, "%s/%s", dir, base);
    snprintf(tmp, sizeof tmp, "%s/.%s.%d", dir, base, (int)getpid());
    int in = open(path, O_RDONLY), out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    struct stat st;
    if (in >= 0 && out >= 0 && fstat(in, &st) == 0) {
        off_t off = 0;
        while (off < st.st_size && sendfile(out, in, &off, st.st_size - off) > 0) {}
        rename(tmp, dst);
    }
    if (in >= 0) close(in);
    if (out >= 0) close(out);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    int r = real(fd);
    if (r == 0) keep(fd);
    return r;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    int r = real(fd);
    if (r == 0) keep(fd);
    return r;
}
"""

# `homework serve` with the one unsafe setting of the self-check forced on.
UNSAFE_SERVE = """
import sys
import homework.storage as storage
_connect = storage.connect
def connect(*args, **kwargs):
    db = _connect(*args, **kwargs)
    db.execute("PRAGMA synchronous = OFF")
    return db
storage.connect = connect
from homework.console import main
main(sys.argv[1:])
"""


class Client:
    """An HTTP client with its own cookie (the server closes every connection)."""

    def __init__(self, port: int):
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Cookie": self.cookie} if self.cookie else {}
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, text


def csrf(text: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', text).group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("homework serve exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("homework serve did not start")


def serve(
    instance: Path, port: int, env: dict | None = None, unsafe: bool = False, workers: int = 2
):
    """Start `homework serve` in a process group of its own."""
    head = [sys.executable, "-c", UNSAFE_SERVE] if unsafe else [HOMEWORK]
    proc = subprocess.Popen(
        [*head, "serve", "--port", str(port), "--workers", str(workers), "--threads", "4"]
        + ["--instance", str(instance)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    wait_for_port(port, proc)
    return proc


def setup(tmp: Path) -> tuple[Path, dict, list[str], Path]:
    """A demo clinic, its therapist's password, its live check-in tokens, and the shim."""
    instance = tmp / "instance"
    demo = subprocess.run(
        [HOMEWORK, "demo", "--instance", str(instance)], capture_output=True, text=True, check=True
    )
    passwords = dict(re.findall(r"(\S+@\S+)\s+password: (\S+)", demo.stdout))
    (instance / "config.py").write_text(
        "HOMEWORK_CHECKIN_LIMIT_PER_TOKEN = 1000000\nHOMEWORK_CHECKIN_LIMIT_PER_IP = 1000000\n"
    )
    secret = (instance / "secret_key").read_text().strip()
    conn = sqlite3.connect(instance / "homework.db")
    rows = conn.execute(
        "SELECT id, salt FROM checkin_tokens WHERE revoked_at IS NULL AND expires_on >= ?",
        [date.today().isoformat()],
    ).fetchall()
    conn.close()
    tokens = [derive_token(secret, token_id, salt) for token_id, salt in rows]
    source = tmp / "durable.c"
    source.write_text(DURABLE_SHIM)
    shim = tmp / "durable.so"
    subprocess.run(
        ["cc", "-shared", "-fPIC", "-O2", "-o", str(shim), str(source), "-ldl"], check=True
    )
    return instance, passwords, tokens, shim


def mark_durable(instance: Path, durable: Path) -> None:
    """Checkpoint the files and take them as the durable state a trial starts from."""
    conn = sqlite3.connect(instance / "homework.db")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.rmtree(durable, ignore_errors=True)
    durable.mkdir()
    shutil.copy2(instance / "homework.db", durable / "homework.db")


def lose_power(instance: Path, durable: Path) -> None:
    """Replace the files with what had been fsync'd; the shared-memory index is gone."""
    for name in (*FILES, "homework.db-shm"):
        (instance / name).unlink(missing_ok=True)
    for name in FILES:
        if (durable / name).exists():
            shutil.copy2(durable / name, instance / name)


def count_lost(path: Path, checkins: list[str], couples: list[str]) -> tuple[int, int, bool]:
    """(lost check-ins, lost couples, integrity ok) in the database at `path`."""
    conn = sqlite3.connect(path)
    ok = conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    notes = {r[0] for r in conn.execute("SELECT reflection FROM practice")}
    labels = {r[0] for r in conn.execute("SELECT label FROM couples")}
    conn.close()
    return sum(m not in notes for m in checkins), sum(m not in labels for m in couples), ok


def load(port: int, trial: int, passwords: dict, tokens: list[str], stop: threading.Event):
    """Sign in and open the pages first, then start phones and therapists writing; return
    the lists that collect acknowledged markers, and the threads."""
    checkins: list[str] = []
    couples: list[str] = []
    therapist = next(e for e in passwords if not e.startswith("admin"))
    phones = []
    for i in range(4):
        client = Client(port)
        token = tokens[i % len(tokens)]
        _, page = client.request("GET", f"/c/{token}")
        item = re.search(r'name="item"[^>]*value="(\d+)"', page).group(1)
        phones.append((client, token, item, csrf(page)))
    desks = []
    for _ in range(2):
        client = Client(port)
        _, page = client.request("GET", "/login")
        login = {"email": therapist, "password": passwords[therapist], "csrf_token": csrf(page)}
        assert client.request("POST", "/login", login)[0] == 302, "the therapist cannot sign in"
        desks.append((client, csrf(client.request("GET", "/couples/new")[1])))

    def phone(i: int) -> None:
        client, token, item, csrf_token = phones[i]
        n = 0
        while not stop.is_set():
            marker = f"crash {trial} phone {i} note {n}"
            form = {
                "csrf_token": csrf_token,
                "item": item,
                "practiced_on": date.today().isoformat(),
                "who": "together",
                "outcome": "done",
                "private": "shared",
                "reflection": marker,
            }
            try:
                if client.request("POST", f"/c/{token}", form)[0] == 302:
                    checkins.append(marker)  # acknowledged
            except (OSError, http.client.HTTPException):
                return  # the server is gone
            n += 1

    def desk(i: int) -> None:
        client, csrf_token = desks[i]
        n = 0
        while not stop.is_set():
            marker = f"crash {trial} desk {i} couple {n}"
            form = {
                "csrf_token": csrf_token,
                "form_key": secrets.token_urlsafe(24),
                "label": marker,
                "partner_a": "Ana",
                "partner_b": "Ben",
            }
            try:
                if client.request("POST", "/couples/new", form)[0] == 302:
                    couples.append(marker)  # acknowledged
            except (OSError, http.client.HTTPException):
                return
            n += 1

    threads = [threading.Thread(target=phone, args=(i,)) for i in range(len(phones))]
    threads += [threading.Thread(target=desk, args=(i,)) for i in range(len(desks))]
    for t in threads:
        t.start()
    return checkins, couples, threads


def trial(n: int, unsafe: bool, ctx: dict, rng: random.Random) -> dict:
    instance, durable, shim = ctx["instance"], ctx["durable"], ctx["shim"]
    mark_durable(instance, durable)
    port = free_port()
    env = {"LD_PRELOAD": str(shim), "CRASH_DURABLE_DIR": str(durable)}
    server = serve(instance, port, env, unsafe=unsafe)
    stop = threading.Event()
    checkins, couples, threads = load(port, n, ctx["passwords"], ctx["tokens"], stop)
    time.sleep(rng.uniform(0.5, 2.0))  # a random moment (a benchmark, not a test)
    os.killpg(server.pid, signal.SIGKILL)  # the master and every worker at once
    server.wait()
    stop.set()
    for t in threads:
        t.join()
    # After the kill: a copy of the files exactly as the killed server left them.
    killed = ctx["tmp"] / "killed"
    shutil.rmtree(killed, ignore_errors=True)
    killed.mkdir()
    for name in FILES:
        if (instance / name).exists():
            shutil.copy2(instance / name, killed / name)
    lost_kill = count_lost(killed / "homework.db", checkins, couples)
    # After a power loss: only what was fsync'd; then the server must start on it.
    lose_power(instance, durable)
    restarted = serve(instance, port, workers=1)
    try:
        healthy = Client(port).request("GET", "/healthz")[0] == 200
        lost_power = count_lost(instance / "homework.db", checkins, couples)
    finally:
        os.killpg(restarted.pid, signal.SIGTERM)
        restarted.wait()
    return {
        "checkins": len(checkins),
        "couples": len(couples),
        "lost_after_kill": lost_kill[0] + lost_kill[1],
        "lost_after_power_loss": lost_power[0] + lost_power[1],
        "integrity_failures": (not lost_kill[2]) + (not lost_power[2]),
        "unhealthy_restarts": int(not healthy),
    }


def summarise(results: list[dict]) -> dict:
    keys = ("checkins", "couples", "lost_after_kill", "lost_after_power_loss")
    total = {k: sum(r[k] for r in results) for k in keys}
    total["integrity_failures"] = sum(r["integrity_failures"] for r in results)
    total["unhealthy_restarts"] = sum(r["unhealthy_restarts"] for r in results)
    total["trials"] = len(results)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 trial and 1 self-check trial")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--self-check-trials", type=int, default=3)
    parser.add_argument("--self-check", action="store_true", help="only the unsafe trials")
    args = parser.parse_args()
    trials = 1 if args.quick else args.trials
    checks = 1 if args.quick else args.self_check_trials
    if args.self_check:
        trials = 0
    rng = random.Random(2026)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        instance, passwords, tokens, shim = setup(Path(tmp))
        ctx = {
            "tmp": Path(tmp),
            "instance": instance,
            "durable": Path(tmp) / "durable",
            "passwords": passwords,
            "tokens": tokens,
            "shim": shim,
        }
        unsafe = [trial(n, True, ctx, rng) for n in range(checks)]
        safe = [trial(checks + n, False, ctx, rng) for n in range(trials)]
    result = {
        "benchmark": "crash",
        "synchronous_full": summarise(safe) if safe else None,
        "self_check_synchronous_off": summarise(unsafe),
        "self_check_saw_loss": sum(r["lost_after_power_loss"] for r in unsafe) > 0,
        "seconds": round(time.monotonic() - started, 1),
    }
    failed = not result["self_check_saw_loss"] or (
        safe
        and (
            result["synchronous_full"]["lost_after_kill"]
            or result["synchronous_full"]["lost_after_power_loss"]
            or result["synchronous_full"]["integrity_failures"]
            or result["synchronous_full"]["unhealthy_restarts"]
        )
    )
    print(json.dumps(result))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

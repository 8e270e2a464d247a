"""Crash safety: kill -9 a writer at a random moment, many times; count lost or torn writes.

Each trial starts a writer that commits transactions through homework's `write()` helper
(two rows per transaction, a pair) and prints each id after its commit returns. The
trial kills it with SIGKILL at a random moment, reopens the database and checks that
every acknowledged id is there, that no pair is half-written, and that integrity_check
passes. Prints one JSON object as its last line.
"""

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from homework.storage import connect, write
db = connect(sys.argv[1])
n = 0
while True:
    n += 1
    with write(db):
        db.execute("INSERT INTO pairs (id, part) VALUES (?, 'a')", [n])
        db.execute("INSERT INTO pairs (id, part) VALUES (?, 'b')", [n])
    sys.stdout.write(f"{n}\\n")
    sys.stdout.flush()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    trials = 10 if args.quick else args.trials
    rng = random.Random(2026)
    lost = torn = bad_integrity = acknowledged_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crash.db"
        setup = sqlite3.connect(path)
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE pairs (id INTEGER, part TEXT, PRIMARY KEY (id, part))")
        setup.close()
        for _trial in range(trials):
            setup = sqlite3.connect(path)
            setup.execute("DELETE FROM pairs")
            setup.commit()
            setup.close()
            writer = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(path), str(ROOT)],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(rng.uniform(0.2, 1.2))  # a random moment to crash (a benchmark, not a test)
            os.kill(writer.pid, signal.SIGKILL)
            out, _ = writer.communicate()
            acked = [int(line) for line in out.split()]
            acknowledged_total += len(acked)
            conn = sqlite3.connect(path)
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                bad_integrity += 1
            present = {r[0] for r in conn.execute("SELECT id FROM pairs")}
            lost += sum(1 for n in acked if n not in present)
            torn += conn.execute(
                "SELECT COUNT(*) FROM (SELECT id FROM pairs GROUP BY id HAVING COUNT(*) != 2)"
            ).fetchone()[0]
            conn.close()
    print(
        json.dumps(
            {
                "benchmark": "crash",
                "trials": trials,
                "acknowledged_writes": acknowledged_total,
                "lost_acknowledged": lost,
                "half_written": torn,
                "integrity_failures": bad_integrity,
            }
        )
    )


if __name__ == "__main__":
    main()

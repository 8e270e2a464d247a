"""What mounting homework costs a host app: start-up of the first app, each further app,
and the web process's memory, against the same host without homework, in one run.

Each sample is a fresh interpreter (the first app's cost is mostly imports), run in turns
(without, with, without, ...) so machine load falls on both sides alike. A sample builds
the host app (Flask, CSRFProtect, a blueprint of its own), serves a page of the host's and
(with homework) homework's library and dashboard through the test client, then builds
further apps as a test suite's fixtures do. Nothing is ever printed: no handout is
rendered, since rendering runs in its own worker process, not in the web process.

Prints one JSON object as its last line. `--quick` takes fewer samples (under a minute).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = r"""
import json, resource, sys, tempfile, time
t0 = time.perf_counter()
c0 = time.process_time()
from flask import Blueprint, Flask
from flask_wtf import CSRFProtect

WITH = sys.argv[1] == "with"
FURTHER = int(sys.argv[2])
if WITH:
    from homework import Homework, hookimpl

    class Identity:
        @hookimpl
        def current_therapist(self):
            return {"id": 1, "name": "Dr. Bench", "is_admin": True}


def make_app():
    app = Flask("bench_host", instance_path=tempfile.mkdtemp())
    app.config.update(SECRET_KEY="a bench host secret key, long enough " * 2, TESTING=True)
    CSRFProtect(app)
    bp = Blueprint("clinic", __name__)
    for name in ("schedule", "clients", "invoices", "notes", "reports"):
        bp.add_url_rule(f"/{name}", name, lambda name=name: f"the host's {name}")
    app.register_blueprint(bp)
    if WITH:
        app.config["HOMEWORK_LOAD_PLUGINS"] = False
        Homework(app, url_prefix="/homework", plugins=[Identity()])
    return app


app = make_app()
first_wall, first_cpu = time.perf_counter() - t0, time.process_time() - c0
if WITH:
    assert app.test_cli_runner().invoke(args=["homework", "migrate"]).exit_code == 0
client = app.test_client()
paths = ["/schedule"] + (["/homework/library", "/homework/"] if WITH else [])
for path in paths:
    assert client.get(path).status_code == 200, path
rss_kb = int(open("/proc/self/statm").read().split()[1]) * (resource.getpagesize() // 1024)
c1 = time.process_time()
for _ in range(FURTHER):
    make_app()
further_cpu = (time.process_time() - c1) / FURTHER
print(json.dumps({
    "first_wall": first_wall, "first_cpu": first_cpu, "further_cpu": further_cpu,
    "rss_mb": rss_kb / 1024, "weasyprint": "weasyprint" in sys.modules,
}))
"""


def sample(kind: str, further: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", SAMPLE, kind, str(further)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    args = parser.parse_args()
    runs, further = (3, 5) if args.quick else (9, 20)
    results: dict[str, list[dict]] = {"without": [], "with": []}
    for _ in range(runs):
        for kind in ("without", "with"):
            results[kind].append(sample(kind, further))

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    report = {"samples_per_side": runs, "further_apps_per_sample": further}
    for key, unit, scale in (
        ("first_wall", "first_app_s", 1),
        ("first_cpu", "first_app_cpu_s", 1),
        ("further_cpu", "further_app_cpu_ms", 1000),
        ("rss_mb", "rss_mb", 1),
    ):
        without, with_ = median("without", key) * scale, median("with", key) * scale
        report[unit] = {
            "without": round(without, 3),
            "with": round(with_, 3),
            "added": round(with_ - without, 3),
        }
    report["weasyprint_in_web_process"] = any(r["weasyprint"] for r in results["with"])
    for kind in ("without", "with"):
        r = report
        print(
            f"{kind:>8}: first app {r['first_app_s'][kind]:.3f} s, further app "
            f"{r['further_app_cpu_ms'][kind]:.1f} ms CPU, RSS {r['rss_mb'][kind]:.1f} MB",
            file=sys.stderr,
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()

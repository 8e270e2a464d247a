"""PDF rendering: worker overhead, batch export speed-up, the server's render workers,
and downloads.

Each figure comes with its anchor from the same run: a handout through the worker vs bare
WeasyPrint; a batch on 2 cores vs one at a time (in-process, workers warm); `homework
export` from the command line with two render workers vs one; under `homework serve`, the
first PDF after the server answers vs a warm render, and the memory of all the server's
processes (RSS and PSS summed) after 200 renders vs before them; then a handout downloaded
again against a static file of the same size from the same server, and the first
download a moment after issuing.

Prints one JSON object as its last line. `--quick` uses fewer couples and repetitions.
"""

import argparse
import html as htmllib
import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from load import Client, csrf, free_port  # noqa: E402

from homework import create_app  # noqa: E402
from homework.accounts import create_user  # noqa: E402
from homework.branding import Brand, save_brand  # noqa: E402
from homework.couples import create_couple, get_owned_couple  # noqa: E402
from homework.handouts import handout_html, render_handout, render_limits  # noqa: E402
from homework.issuing import Item, build_snapshot, default_personalization, issue_packet  # noqa: E402
from homework.pdf import RenderLimits, get_pool  # noqa: E402
from homework.state import current_brand, get_state  # noqa: E402
from homework.storage import get_db  # noqa: E402

STATIC = Path(__file__).resolve().parent.parent / "homework" / "static"
ASSIGNMENTS = ("memory-walk", "speaker-listener", "daily-appreciation")


CRISIS = "In a crisis, call your local emergency number."
PASSWORD = "a long bench password"
# The `homework` command of this tree (not whichever is installed): for before/after runs.
HOMEWORK = [sys.executable, "-c", "from homework.launch import main; main()"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# The export and serve sections measure renders: the handout cache would answer them
# from disk after the first pass (the download section measures the cache).
RENDER_ENV = {
    **ENV,
    "FLASK_HOMEWORK_HANDOUT_CACHE_MB": "0",
    "FLASK_HOMEWORK_HANDOUT_PRERENDER": "0",
}


def seed(couples: int, packets: int = 1) -> list[list[dict]]:
    """Create `couples` couples with `packets` packets of three active handouts each;
    return each packet's snapshots."""
    db = get_db()
    owner = create_user(db, "bench@example.org", "Dr. Bench Mark", "therapist", PASSWORD)
    library = get_state().library
    all_snapshots = []
    for n in range(couples):
        couple_id = create_couple(
            db,
            owner,
            {
                "label": f"B{n}",
                "partner_a": f"Ari{n}",
                "partner_b": f"Bo{n}",
                "screening": "screened",
            },
        )
        couple = get_owned_couple(db, couple_id, owner)
        for _ in range(packets):
            items = []
            for assignment_id in ASSIGNMENTS:
                a = library.get(assignment_id)
                p = default_personalization(a, date(2026, 5, 4))
                items.append(
                    Item(
                        a,
                        p,
                        build_snapshot(
                            a, couple, p, "Dr. Bench Mark", "Bench Clinic", str, crisis=CRISIS
                        ),
                    )
                )
            issue_packet(db, couple, owner, items, [])
            all_snapshots.append([i.snapshot for i in items])
    return all_snapshots


# --- downloads through `homework serve`, against a static file of the same size --------

PASSWORD = "a long bench password"
# A therapist's click on the PDF link after the issue's redirect lands (the couple page).
CLICK_PAUSE_S = 1.5


def form_from_page(html: str) -> dict:
    """What a browser sends from the personalize page as it stands (its defaults)."""
    data: dict = {
        "a": re.findall(r'<input type="hidden" name="a" value="([^"]+)">', html),
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1),
    }
    for match in re.finditer(r"<input[^>]*>", html):
        tag = match.group(0)
        name = re.search(r'name="([^"]+)"', tag)
        if not name or name.group(1) in ("csrf_token", "a", "action"):
            continue
        value = re.search(r'value="([^"]*)"', tag)
        checkbox, radio = 'type="checkbox"' in tag, 'type="radio"' in tag
        if (checkbox or radio) and "checked" not in tag:
            continue
        sent = htmllib.unescape(value.group(1)) if value else ("y" if checkbox else "")
        if radio:
            data[name.group(1)] = sent
        elif checkbox or name.group(1) in data:
            before = data.get(name.group(1), [])
            data[name.group(1)] = [*(before if isinstance(before, list) else [before]), sent]
        else:
            data[name.group(1)] = sent
    for match in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.S):
        data[match.group(1)] = htmllib.unescape(match.group(2)).lstrip("\r\n")
    for match in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        selected = re.search(
            r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', match.group(2)
        )
        if selected:
            data[match.group(1)] = selected.group(1) or selected.group(2)
    return data


def cli_export(instance: Path, workers: int, out: Path) -> float:
    """Wall time of `homework export` for couple 1 with this many render workers."""
    env = {**RENDER_ENV, "FLASK_HOMEWORK_RENDER_WORKERS": str(workers)}
    command = [*HOMEWORK, "export", "--instance", str(instance), "--couple", "1", "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def seed_clinic(instance: Path, couples: int) -> None:
    """A clinic with a crisis line, one therapist and `couples` couples with no homework."""
    app = create_app(instance_path=instance, create_database=True)
    with app.app_context():
        db = get_db()
        owner = create_user(db, "bench@example.org", "Dr. Bench Mark", "therapist", PASSWORD)
        save_brand(db, Brand(name="Bench Clinic", crisis=CRISIS), None)
        for n in range(couples):
            create_couple(
                db,
                owner,
                {"label": f"D{n}", "partner_a": f"Ari{n}", "partner_b": f"Bo{n}",
                 "screening": "screened"},
            )  # fmt: skip


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def downloads(quick: bool) -> dict:
    """p50 of a handout download against a static file of the same size from the same
    server, and of the first download a few seconds after the item was issued."""
    issues = 4 if quick else 10
    reps = 40 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        seed_clinic(instance, issues + 1)
        port = free_port()
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("homework")), "serve", "--port", str(port),
             "--instance", str(instance)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        static = None
        try:
            for _ in range(600):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            client = Client(port)
            _, page, _ = client.request("GET", "/login")
            login = {"email": "bench@example.org", "password": PASSWORD, "csrf_token": csrf(page)}
            assert client.request("POST", "/login", login)[0] == 302

            def issue(couple_id: int) -> int:
                path = f"/couples/{couple_id}/assign?a=memory-walk"
                status, html, _ = client.request("GET", path)
                assert status == 200, status
                form = {**form_from_page(html), "action": "issue"}
                status, _, _ = client.request("POST", f"/couples/{couple_id}/assign", form)
                assert status == 302, status
                conn = sqlite3.connect(instance / "homework.db")
                try:
                    return conn.execute(
                        "SELECT max(id) FROM homework WHERE couple_id = ?", [couple_id]
                    ).fetchone()[0]
                finally:
                    conn.close()

            first_after_issue = []
            for couple_id in range(2, issues + 2):
                hw_id = issue(couple_id)
                time.sleep(CLICK_PAUSE_S)
                status, pdf, elapsed = client.request(
                    "GET", f"/homework/{hw_id}/handout.pdf", raw=True
                )
                assert status == 200 and pdf.startswith(b"%PDF"), status
                first_after_issue.append(elapsed)

            hw_id = issue(1)
            status, pdf, _ = client.request("GET", f"/homework/{hw_id}/handout.pdf", raw=True)
            assert status == 200 and pdf.startswith(b"%PDF"), status
            # The anchor: a file of the PDF's size from the same server's static route
            # (removed again below).
            static = STATIC / f"bench-{os.getpid()}.bin"
            static.write_bytes(os.urandom(len(pdf)))
            assert client.request("GET", f"/static/{static.name}", raw=True)[0] == 200
            again, plain = [], []
            for _ in range(reps):  # interleaved, so both see the same machine
                status, body, elapsed = client.request(
                    "GET", f"/homework/{hw_id}/handout.pdf", raw=True
                )
                assert status == 200 and body == pdf, status
                again.append(elapsed)
                status, body, elapsed = client.request("GET", f"/static/{static.name}", raw=True)
                assert status == 200 and len(body) == len(pdf), status
                plain.append(elapsed)
        finally:
            if static is not None:
                static.unlink(missing_ok=True)
            server.terminate()
            server.wait(timeout=30)
    return {
        "download_pdf_bytes": len(pdf),
        "download_requests": reps,
        "download_ms_median": ms(again),
        "download_ms_p95": ms(again, 0.95),
        "static_same_size_ms_median": ms(plain),
        "static_same_size_ms_p95": ms(plain, 0.95),
        "download_vs_static_ratio_median": round(
            statistics.median(again) / statistics.median(plain), 1
        ),
        "first_download_after_issue_pause_s": CLICK_PAUSE_S,
        "first_download_after_issue_count": len(first_after_issue),
        "first_download_after_issue_ms_median": ms(first_after_issue),
        "first_download_after_issue_ms_max": round(max(first_after_issue) * 1000, 1),
    }


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def memory_mb(pid: int) -> dict:
    """RSS and PSS in MB summed over `pid` and its descendants, for all of them and for
    the render processes alone, and how many processes there are of each."""
    totals = {"rss": 0, "pss": 0, "render_rss": 0, "render_pss": 0, "n": 0, "render_n": 0}
    for p in descendants(pid):
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            render = b"render_worker" in Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        rss = int(re.search(r"^Rss:\s+(\d+)", rollup, re.M).group(1))
        pss = int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1))
        totals["rss"] += rss
        totals["pss"] += pss
        totals["n"] += 1
        if render:
            totals["render_rss"] += rss
            totals["render_pss"] += pss
            totals["render_n"] += 1
    return {k: v if k.endswith("n") else round(v / 1024, 1) for k, v in totals.items()}


class Browser:
    """A signed-in therapist's HTTP session (cookies kept by hand)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.cookie = ""

    def get(self, path: str, data: dict | None = None) -> tuple[int, bytes]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body)
        if self.cookie:
            request.add_header("Cookie", self.cookie)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            response = opener.open(request, timeout=120)
        except urllib.error.HTTPError as exc:
            response = exc
        cookie = response.headers.get("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, response.read()

    def sign_in(self) -> None:
        _, page = self.get("/login")
        token = re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
        form = {"email": "bench@example.org", "password": PASSWORD, "csrf_token": token.group(1)}
        status, _ = self.get("/login", form)
        assert status == 302, status


def serve_figures(instance: Path, items: int, renders: int) -> dict:
    """Start `homework serve`; time the first PDF once it answers, then warm renders;
    memory of all its processes before and after `renders` more."""
    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [*HOMEWORK, "serve", "--port", str(port), "--instance", str(instance)],
        env=RENDER_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        browser = Browser(port)
        while True:
            try:
                if browser.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "homework serve stopped"
            time.sleep(0.05)
        answering = time.perf_counter() - started
        browser.sign_in()
        t0 = time.perf_counter()
        status, pdf = browser.get("/homework/1/handout.pdf")
        first = time.perf_counter() - t0
        assert status == 200 and pdf.startswith(b"%PDF"), status
        warm = []
        for n in range(2, 7):  # other items: a render each, never a repeat of the first
            t0 = time.perf_counter()
            status, pdf = browser.get(f"/homework/{n}/handout.pdf")
            warm.append(time.perf_counter() - t0)
            assert status == 200 and pdf.startswith(b"%PDF"), status
        before = memory_mb(server.pid)
        for n in range(renders):
            status, pdf = browser.get(f"/homework/{n % items + 1}/handout.pdf")
            assert status == 200 and pdf.startswith(b"%PDF"), status
        after = memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    return {
        "serve_answering_s": round(answering, 2),
        "first_pdf_after_start_s": round(first, 3),
        "warm_pdf_s_median": round(statistics.median(warm), 3),
        "server_processes": after["n"],
        "server_render_processes": after["render_n"],
        "server_rss_mb_before": before["rss"],
        "server_rss_mb_after_renders": after["rss"],
        "server_pss_mb_before": before["pss"],
        "server_pss_mb_after_renders": after["pss"],
        "render_processes_rss_mb_before": before["render_rss"],
        "render_processes_rss_mb_after_renders": after["render_rss"],
        "render_processes_pss_mb_before": before["render_pss"],
        "render_processes_pss_mb_after_renders": after["render_pss"],
        "renders_between": renders,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    couples = 10 if args.quick else 30
    reps = 5 if args.quick else 15
    export_packets = 8 if args.quick else 20
    export_reps = 1 if args.quick else 3
    server_renders = 50 if args.quick else 200

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(instance_path=Path(tmp) / "instance", create_database=True)
        with app.app_context():
            snapshots = seed(couples)
            brand = current_brand()
            html = handout_html([snapshots[0][0]], brand)

            # 1. Overhead: the same HTML through the worker and bare, in-process, interleaved.
            from weasyprint import HTML

            from homework.render_worker import make_fetcher

            stylesheet = (
                Path(__file__).resolve().parent.parent / "homework/static/handout.css"
            ).read_bytes()
            assets = {"handout.css": (stylesheet, "text/css")}
            options = {"pdf_variant": "pdf/ua-1", "pdf_identifier": b"bench"}
            pool = get_pool(RenderLimits(workers=2))
            slots = Path(tmp) / "slots"
            pool.render(html, assets, options, slots)  # warm the worker
            HTML(
                string=html, base_url="homework-asset:/", url_fetcher=make_fetcher(assets)
            ).write_pdf(**options)
            worker_times, bare_times = [], []
            for _ in range(reps):
                start = time.perf_counter()
                pool.render(html, assets, options, slots)
                worker_times.append(time.perf_counter() - start)
                start = time.perf_counter()
                HTML(
                    string=html, base_url="homework-asset:/", url_fetcher=make_fetcher(assets)
                ).write_pdf(**options)
                bare_times.append(time.perf_counter() - start)

            # 2. Batch export: every handout of every couple, one at a time vs on 2 cores.
            def export(workers: int) -> float:
                app.config["HOMEWORK_RENDER_WORKERS"] = workers
                warm = get_pool(render_limits())
                with ThreadPoolExecutor(max_workers=workers) as executor:  # start every worker
                    list(
                        executor.map(
                            lambda _: warm.render(html, assets, options, slots), range(workers)
                        )
                    )
                jobs = [s for couple in snapshots for s in couple]

                def one(snapshot):
                    with app.app_context():
                        return render_handout([snapshot], brand)

                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=workers) as executor:
                    pdfs = list(executor.map(one, jobs))
                assert all(p.startswith(b"%PDF") for p in pdfs)
                return time.perf_counter() - start

            sequential = export(1)
            parallel = export(2)
            peak_kb = max(p.peak_kb for p in [get_pool(RenderLimits(workers=w)) for w in (1, 2)])

        # 3. `homework export` from the command line: one couple's handouts, 2 workers vs 1.
        instance = Path(tmp) / "export"
        export_app = create_app(instance_path=instance, create_database=True)
        with export_app.app_context():
            seed(1, packets=export_packets)
        one, two = [], []
        for rep in range(export_reps):
            one.append(cli_export(instance, 1, Path(tmp) / f"out1-{rep}"))
            two.append(cli_export(instance, 2, Path(tmp) / f"out2-{rep}"))

        # 4. Under `homework serve` (its defaults), on the instance of section 3.
        served = serve_figures(instance, export_packets * len(ASSIGNMENTS), server_renders)

    result = {
        "benchmark": "pdf",
        "handout_pages": "1 item (memory walk)",
        "worker_ms_median": round(statistics.median(worker_times) * 1000, 1),
        "bare_ms_median": round(statistics.median(bare_times) * 1000, 1),
        "overhead_ratio_median": round(
            statistics.median(worker_times) / statistics.median(bare_times), 3
        ),
        "batch_handouts": couples * len(ASSIGNMENTS),
        "batch_sequential_s": round(sequential, 2),
        "batch_2_cores_s": round(parallel, 2),
        "batch_speedup": round(sequential / parallel, 2),
        "worker_peak_rss_mb": round(peak_kb / 1024, 1),
        **downloads(args.quick),
        "export_cli_handouts": export_packets * len(ASSIGNMENTS),
        "export_cli_1_worker_s": round(statistics.median(one), 2),
        "export_cli_2_workers_s": round(statistics.median(two), 2),
        "export_cli_speedup": round(statistics.median(one) / statistics.median(two), 2),
        **served,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

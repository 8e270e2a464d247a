"""PDF rendering: worker overhead, batch export speed-up, and worker peak memory.

Prints one JSON object as its last line. `--quick` uses fewer couples and repetitions.
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homework import create_app  # noqa: E402
from homework.accounts import create_user  # noqa: E402
from homework.couples import create_couple, get_owned_couple  # noqa: E402
from homework.handouts import handout_html, render_handout, render_limits  # noqa: E402
from homework.issuing import Item, build_snapshot, default_personalization, issue_packet  # noqa: E402
from homework.pdf import RenderLimits, get_pool  # noqa: E402
from homework.state import current_brand, get_state  # noqa: E402
from homework.storage import get_db  # noqa: E402

ASSIGNMENTS = ("memory-walk", "speaker-listener", "daily-appreciation")


CRISIS = "In a crisis, call your local emergency number."


def seed(couples: int) -> list[list[dict]]:
    """Create `couples` couples with three active handouts each; return their snapshots."""
    db = get_db()
    owner = create_user(
        db, "bench@example.org", "Dr. Bench Mark", "therapist", "a long bench password"
    )
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    couples = 10 if args.quick else 30
    reps = 5 if args.quick else 15

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
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

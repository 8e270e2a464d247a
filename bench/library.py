"""Load and validate 500 generated assignments, then time searches over them and the
library page that lists them all (against /healthz from the same app, the anchor).

Prints one JSON object as its last line. `--quick` uses fewer repetitions.
"""

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homework import create_app  # noqa: E402
from homework.accounts import create_user  # noqa: E402
from homework.library import load_library  # noqa: E402
from homework.library.cache import load_cached  # noqa: E402
from homework.resources import resource_dir  # noqa: E402

WORDS = [
    "listen",
    "walk",
    "memory",
    "thanks",
    "calm",
    "plan",
    "touch",
    "trust",
    "repair",
    "promise",
    "evening",
    "morning",
    "weekend",
    "question",
    "story",
    "photo",
    "letter",
    "kitchen",
    "garden",
    "music",
    "cooking",
    "breathing",
    "gentle",
    "honest",
]


def generate_pack(folder: Path, count: int) -> None:
    """Write `count` assignments, varied copies of the bundled ones, into a pack folder."""
    core = resource_dir("assignments") / "core"
    shutil.copy(core / "pack.yaml", folder / "pack.yaml")
    originals = sorted(p for p in core.glob("*.md"))
    rng = random.Random(42)
    for i in range(count):
        source = originals[i % len(originals)]
        text = source.read_text()
        old_id = source.stem
        new_id = f"{old_id}-{i:04d}"
        extra = " ".join(rng.choice(WORDS) for _ in range(40))
        text = text.replace(f"id: {old_id}\n", f"id: {new_id}\n", 1)
        text = text.replace("## Why this helps\n", f"## Why this helps\n\n{extra}\n", 1)
        (folder / f"{new_id}.md").write_text(text)


def page_times(folder: Path, instance: Path, reps: int) -> tuple[list[float], list[float], int]:
    """GET /library (every assignment, no filter) and GET /healthz, interleaved, signed in,
    through the app in this process; also the number of assignments the page lists."""
    app = create_app(
        instance_path=instance,
        config={"HOMEWORK_ASSIGNMENT_DIRS": [str(folder)]},
        create_database=True,
    )
    with app.app_context():
        from homework.storage import get_db

        create_user(get_db(), "bench@example.org", "Dr. Bench", "therapist", "a bench password")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    login = {"email": "bench@example.org", "password": "a bench password", "csrf_token": token}
    assert client.post("/login", data=login).status_code == 302
    listed = len(app.extensions["homework"].library.assignments)
    assert client.get("/library").status_code == 200
    pages, floor = [], []
    for _ in range(reps):
        start = time.perf_counter()
        response = client.get("/library")
        pages.append(time.perf_counter() - start)
        assert response.status_code == 200
        start = time.perf_counter()
        response = client.get("/healthz")
        floor.append(time.perf_counter() - start)
        assert response.status_code == 200
    return pages, floor, listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    loads = 3 if args.quick else 7
    searches = 300 if args.quick else 2000

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "generated"
        folder.mkdir()
        generate_pack(folder, args.count)
        load_times = []
        for _ in range(loads):
            start = time.perf_counter()
            library = load_library([folder])
            load_times.append(time.perf_counter() - start)
        assert not library.problems, library.problems[:3]
        assert len(library.assignments) == args.count
        # As a new server process loads it: every file hashed and compared with the
        # cache file's key, then the validated library read back from it.
        cache_file = Path(tmp) / "library-cache.pickle"
        load_cached([folder], cache_file, load_library)  # made once
        cached_times = []
        for _ in range(loads):
            start = time.perf_counter()
            cached = load_cached([folder], cache_file, load_library)
            cached_times.append(time.perf_counter() - start)
        assert sorted(cached.assignments) == sorted(library.assignments)
        assert [a.id for a in cached.search("memory walk")] == [
            a.id for a in library.search("memory walk")
        ]

        rng = random.Random(7)
        queries = [
            (
                " ".join(rng.sample(WORDS, rng.choice([1, 1, 2, 3]))),
                rng.choice([None, "memory", "connection"]),
            )
            for _ in range(searches)
        ]
        search_times = []
        hits = 0
        for query, category in queries:
            start = time.perf_counter()
            hits += len(library.search(query, category=category))
            search_times.append(time.perf_counter() - start)
        pages, floor, listed = page_times(folder, Path(tmp) / "instance", 30 if args.quick else 200)

    search_ms = sorted(t * 1000 for t in search_times)
    result = {
        "benchmark": "library",
        "assignments": args.count,
        "load_and_validate_s_median": round(statistics.median(load_times), 3),
        "load_and_validate_s_max": round(max(load_times), 3),
        "load_from_cache_file_s_median": round(statistics.median(cached_times), 3),
        "load_from_cache_file_s_max": round(max(cached_times), 3),
        "searches": searches,
        "search_ms_median": round(statistics.median(search_ms), 3),
        "search_ms_p95": round(search_ms[int(len(search_ms) * 0.95) - 1], 3),
        "mean_hits": round(hits / searches, 1),
        "page_assignments": listed,
        "page_requests": len(pages),
        "page_ms_median": round(statistics.median(pages) * 1000, 2),
        "page_ms_p95": round(sorted(pages)[int(len(pages) * 0.95) - 1] * 1000, 2),
        "healthz_ms_median": round(statistics.median(floor) * 1000, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Load and validate 500 generated assignments, then time searches over them.

Prints one JSON object as its last line. `--quick` uses fewer repetitions.
"""

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from homework.library import load_library  # noqa: E402
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

    search_ms = sorted(t * 1000 for t in search_times)
    result = {
        "benchmark": "library",
        "assignments": args.count,
        "load_and_validate_s_median": round(statistics.median(load_times), 3),
        "load_and_validate_s_max": round(max(load_times), 3),
        "searches": searches,
        "search_ms_median": round(statistics.median(search_ms), 3),
        "search_ms_p95": round(search_ms[int(len(search_ms) * 0.95) - 1], 3),
        "mean_hits": round(hits / searches, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Backup and restore of a clinic-sized database (400,000 practice records; a tenth with
--quick): time and size. Prints one JSON object as its last line."""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import seed  # noqa: E402

from homework.backups import restore, take_backup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "instance"
        seed(instance, 20, 2000 // scale, 40_000 // scale, 400_000 // scale)
        db = instance / "homework.db"
        plain = take_backup(db, instance / "uploads", Path(tmp) / "backups")
        encrypted = take_backup(db, instance / "uploads", Path(tmp) / "backups", "a passphrase")
        started = time.perf_counter()
        ledger = Path(tmp) / "erasures.jsonl"
        restore(plain.path, Path(tmp) / "restored.db", Path(tmp) / "uploads", ledger=ledger)
        restore_s = time.perf_counter() - started
        result = {
            "benchmark": "backup",
            "practice_records": 400_000 // scale,
            "database_mb": round(db.stat().st_size / 1e6, 1),
            "backup_s": round(plain.seconds, 2),
            "backup_mb": round(plain.size / 1e6, 1),
            "encrypted_backup_s": round(encrypted.seconds, 2),
            "encrypted_backup_mb": round(encrypted.size / 1e6, 1),
            "restore_s": round(restore_s, 2),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_templates_and_assignments(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("homework-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "homework/_data/templates/homework/layout.html" in names
    assert "homework/_data/assignments/core/pack.yaml" in names
    assert "homework/assignment.schema.json" in names
    assert "homework/static/homework.css" in names
    assert any(n.endswith("entry_points.txt") and "homework" in n for n in names)


def test_resources_resolve_from_a_checkout():
    from homework.resources import resource_dir

    assert (resource_dir("templates") / "homework" / "layout.html").exists()
    assert (resource_dir("assignments") / "core" / "pack.yaml").exists()

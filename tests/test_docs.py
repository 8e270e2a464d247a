from pathlib import Path

from homework.extension import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_config_key_is_documented():
    missing = [key for key in DEFAULTS if f"`{key}`" not in README]
    assert missing == []


def test_quick_start_shows_the_two_commands_first():
    quick = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert quick.index("make run") < quick.index("make test")

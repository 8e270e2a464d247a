"""The validated library kept in a file: read back while every pack file is the same,
loaded and checked afresh when any file under a pack folder changes."""

import os
import shutil
import stat

import pytest

from homework.library import load_library, load_library_once
from homework.library.cache import load_cached
from homework.resources import resource_dir


@pytest.fixture
def pack(tmp_path):
    folder = tmp_path / "pack"
    shutil.copytree(resource_dir("assignments") / "core", folder)
    return folder


@pytest.fixture
def loads():
    """A loader that counts how often the files were really read and checked."""
    made = []

    def load(folders):
        made.append(folders)
        return load_library(folders)

    load.made = made
    return load


def test_the_library_is_read_back_from_its_file_while_nothing_changed(pack, tmp_path, loads):
    cache_file = tmp_path / "library-cache.pickle"
    fresh = load_cached([pack], cache_file, loads)
    again = load_cached([pack], cache_file, loads)
    assert len(loads.made) == 1
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert sorted(again.assignments) == sorted(fresh.assignments)
    assert again.get("memory-walk") == fresh.get("memory-walk")
    # The search index comes back too, not only the assignments.
    for query in ("memory walk", "listen", "appreciation"):
        assert [a.id for a in again.search(query)] == [a.id for a in fresh.search(query)]
        assert again.search(query)


def test_an_edit_of_the_same_size_and_time_is_a_new_load(pack, tmp_path, loads):
    cache_file = tmp_path / "library-cache.pickle"
    load_cached([pack], cache_file, loads)
    path = pack / "memory-walk.md"
    before = path.stat()
    text = path.read_text()
    path.write_text(text.replace("title: A memory walk", "title: A memory stro"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    library = load_cached([pack], cache_file, loads)
    assert len(loads.made) == 2
    assert library.get("memory-walk").title == "A memory stro"


def test_a_new_file_in_a_subfolder_is_a_new_load(pack, tmp_path, loads):
    cache_file = tmp_path / "library-cache.pickle"
    load_cached([pack], cache_file, loads)
    (pack / "translations" / "fr").mkdir(parents=True)
    (pack / "translations" / "fr" / "memory-walk.md").write_text("---\nid: memory-walk\n---\n")
    load_cached([pack], cache_file, loads)
    assert len(loads.made) == 2
    load_cached([pack], cache_file, loads)
    assert len(loads.made) == 2


def test_a_removed_file_is_a_new_load(pack, tmp_path, loads):
    cache_file = tmp_path / "library-cache.pickle"
    load_cached([pack], cache_file, loads)
    (pack / "memory-walk.md").unlink()
    library = load_cached([pack], cache_file, loads)
    assert len(loads.made) == 2
    assert library.get("memory-walk") is None


def test_a_damaged_cache_file_is_replaced(pack, tmp_path, loads):
    cache_file = tmp_path / "library-cache.pickle"
    cache_file.write_bytes(b"not a pickle at all")
    library = load_cached([pack], cache_file, loads)
    assert library.get("memory-walk") is not None
    assert len(loads.made) == 1
    load_cached([pack], cache_file, loads)
    assert len(loads.made) == 1


def test_problems_are_kept_with_the_library(pack, tmp_path, loads):
    (pack / "broken.md").write_text("no front matter here\n")
    cache_file = tmp_path / "library-cache.pickle"
    fresh = load_cached([pack], cache_file, loads)
    again = load_cached([pack], cache_file, loads)
    assert len(loads.made) == 1
    assert [str(p) for p in again.problems] == [str(p) for p in fresh.problems]
    assert any("broken.md" in str(p) for p in again.problems)


def test_a_process_reparses_a_pack_when_a_file_in_a_subfolder_changes(pack):
    first = load_library_once([pack])
    assert load_library_once([pack]) is first
    (pack / "notes").mkdir()
    (pack / "notes" / "notes.txt").write_text("a new file")
    assert load_library_once([pack]) is not first


def test_a_new_process_walks_the_pack_folders_once(pack, tmp_path, monkeypatch):
    """Its per-process key and the cache file's key come from one walk of the folders."""
    from pathlib import Path

    from homework.library import _parsed

    walked = []
    real = Path.rglob

    def rglob(self, pattern):
        walked.append(self)
        return real(self, pattern)

    monkeypatch.setattr(Path, "rglob", rglob)
    monkeypatch.setattr(_parsed, "parsed", {})  # as in a process that parsed nothing yet
    cache_file = tmp_path / "library-cache.pickle"
    assert load_library_once([pack], cache_file).get("memory-walk") is not None
    assert walked == [pack]


def test_an_app_starts_from_the_cache_file_in_its_instance(tmp_path, pack):
    from homework import create_app

    app = create_app(
        instance_path=tmp_path / "instance",
        config={"HOMEWORK_ASSIGNMENT_DIRS": [str(pack)]},
        create_database=True,
    )
    cache_file = tmp_path / "instance" / "library-cache.pickle"
    assert cache_file.is_file()
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert "memory-walk" in app.extensions["homework"].library.assignments


@pytest.fixture
def result_renders(app):
    from flask import template_rendered

    made = []

    def note(sender, template, context, **extra):
        if template.name == "homework/_library_results.html":
            made.append(len(context["results"]))

    template_rendered.connect(note, app)
    yield made
    template_rendered.disconnect(note, app)


def test_the_library_page_lists_from_a_kept_render(app, therapist, result_renders):
    first = therapist.get("/library").get_data(as_text=True)
    second = therapist.get("/library").get_data(as_text=True)
    total = len(app.extensions["homework"].library.assignments)
    assert result_renders == [total]
    assert "A memory walk" in second
    assert second.count("hw-assignment-card") == first.count("hw-assignment-card") == total
    # The live filter's partial answer is the same kept list.
    partial = therapist.get("/library?partial=1").get_data(as_text=True)
    assert result_renders == [total]
    assert partial.count("hw-assignment-card") == total
    filtered = therapist.get("/library?category=memory").get_data(as_text=True)
    assert len(result_renders) == 2 and result_renders[1] < total
    assert filtered.count("hw-assignment-card") == result_renders[1]


def test_a_changed_assignment_is_never_listed_from_an_old_render(app, therapist, monkeypatch):
    from dataclasses import replace

    assert "A memory walk" in therapist.get("/library").get_data(as_text=True)
    # The library is shared by every app of this process: the change is undone after.
    library = app.extensions["homework"].library
    changed = replace(library.assignments["memory-walk"], title="A walk through old places")
    monkeypatch.setitem(library.assignments, "memory-walk", changed)
    page = therapist.get("/library").get_data(as_text=True)
    assert "A walk through old places" in page and "A memory walk" not in page


def test_a_kept_list_of_cards_is_never_shown_in_another_language(therapist):
    spanish = therapist.get("/library?partial=1", headers={"Accept-Language": "es"})
    assert "Comunicación" in spanish.get_data(as_text=True)
    english = therapist.get("/library?partial=1", headers={"Accept-Language": "en"})
    page = english.get_data(as_text=True)
    assert "Communication" in page and "Comunicación" not in page

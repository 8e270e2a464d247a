"""Check-ins against a real `homework serve`: concurrency, logs."""

import http.cookiejar
import multiprocessing
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from datetime import date

import pytest
from conftest import LiveServer

from homework.tracking import derive_token

pytestmark = pytest.mark.slow


def checkin_path(instance) -> tuple[str, int]:
    """The demo's first live check-in link (derived as the server does) and its item."""
    secret = (instance / "secret_key").read_text().strip()
    conn = sqlite3.connect(instance / "homework.db")
    row = conn.execute(
        "SELECT t.id, t.salt, h.id FROM checkin_tokens t"
        " JOIN homework h ON h.packet_id = t.packet_id"
        " WHERE h.status = 'active' ORDER BY t.id LIMIT 1"
    ).fetchone()
    return "/c/" + derive_token(secret, row[0], row[1]), row[2]


def _poster(args) -> list[str]:
    """One process: open the page, then post each practice; return what was acknowledged."""
    url, item, notes = args
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(url, timeout=300).read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    acknowledged = []
    for note in notes:
        data = urllib.parse.urlencode(
            {"csrf_token": token, "item": item, "practiced_on": date.today().isoformat(),
             "who": "together", "outcome": "done", "private": "shared", "reflection": note}
        ).encode()  # fmt: skip
        try:
            opener.open(url, data=data, timeout=300)
        except urllib.error.HTTPError as exc:
            if exc.code in (302, 303):
                acknowledged.append(note)
            elif exc.code >= 500:
                acknowledged.append(f"SERVER ERROR {exc.code}")
    return acknowledged


def test_four_processes_posting_at_once_lose_nothing_and_store_nothing_twice(tmp_path):
    server = LiveServer(
        tmp_path / "inst",
        config="HOMEWORK_CHECKIN_LIMIT_PER_TOKEN = 10000\nHOMEWORK_CHECKIN_LIMIT_PER_IP = 10000\n",
    )
    try:
        path, item = checkin_path(server.instance)
        # Each process sends 15 distinct notes and then repeats 5 of them (a retry).
        jobs = []
        for p in range(4):
            notes = [f"process {p} note {n}" for n in range(15)]
            jobs.append((server.url + path, item, notes + notes[:5]))
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            results = pool.map(_poster, jobs)
    finally:
        server.stop()
    acknowledged = [note for result in results for note in result]
    assert not [a for a in acknowledged if a.startswith("SERVER ERROR")]
    conn = sqlite3.connect(server.instance / "homework.db")
    stored = [
        r[0]
        for r in conn.execute("SELECT reflection FROM practice WHERE reflection LIKE 'process %'")
    ]
    assert sorted(set(acknowledged)) == sorted(stored)  # every acknowledged one is there
    assert len(stored) == len(set(stored)) == 60  # and none twice


def test_tokens_never_reach_the_server_log(tmp_path):
    server = LiveServer(tmp_path / "inst")
    path, _ = checkin_path(server.instance)
    token = path.rsplit("/", 1)[1]
    try:
        assert urllib.request.urlopen(server.url + path, timeout=300).status == 200
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + "/c/" + "y" * 43, timeout=300)
    finally:
        log = server.stop()
    assert token not in log and "y" * 43 not in log
    assert "/c/[link]" in log

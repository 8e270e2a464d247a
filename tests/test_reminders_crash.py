"""The outbox survives `kill -9`: no due reminder is lost, and each crash sends at most
one message twice (measured against a real SMTP server in the test process)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reminder_helpers import SmtpServer, agree, give_homework

from homework import create_app

pytestmark = pytest.mark.slow
COUPLES = 60
KILLS = 4


def test_kill_9_while_sending_loses_nothing_and_repeats_at_most_one_per_crash(tmp_path):
    server = SmtpServer()
    instance = tmp_path / "instance"
    config = {
        **server.config(),
        "HOMEWORK_SMTP_TIMEOUT_SECONDS": 600,
        "HOMEWORK_BUSY_TIMEOUT_MS": 300_000,
    }
    app = create_app(instance, config=config, create_database=True)
    (instance / "config.py").write_text("".join(f"{k} = {v!r}\n" for k, v in config.items()))
    import datetime as dt

    from homework.accounts import create_user
    from homework.storage import get_db

    with app.app_context():
        create_user(get_db(), "t@example.org", "Dr. T", "therapist", "correct horse battery")
    addresses = set()
    for n in range(COUPLES):
        couple_id, _ = give_homework(app, dt.date(2026, 3, 2), per_week=7, weeks=1,
                                     label=f"C{n}", owner=1)  # fmt: skip
        agree(app, couple_id, a=f"partner{n}@home.example")
        addresses.add(f"partner{n}@home.example")

    # Kill the sender at two kinds of moment: while it names the recipient (nothing sent
    # yet: the message must still go out) and once the server has taken a message but
    # not yet answered (sent, not recorded: the one duplicate a crash may cost).
    kill_after_data = {5, 30}
    kill_at_rcpt = {17, 41}
    current: dict = {}
    original_data, original_rcpt = server.inbox.handle_DATA, server.inbox.handle_RCPT
    rcpts = []

    def kill() -> None:
        os.kill(current["proc"].pid, signal.SIGKILL)
        current["proc"].wait()

    async def handle_data(smtp, session, envelope):
        answer = await original_data(smtp, session, envelope)
        if len(server.inbox.messages) in kill_after_data:
            kill_after_data.discard(len(server.inbox.messages))
            kill()
            return "421 going away"
        return answer

    async def handle_rcpt(smtp, session, envelope, address, options):
        rcpts.append(address)
        if len(rcpts) in kill_at_rcpt:
            kill()
            return "421 going away"
        return await original_rcpt(smtp, session, envelope, address, options)

    server.inbox.handle_DATA = handle_data
    server.inbox.handle_RCPT = handle_rcpt
    exe = Path(sys.executable).with_name("homework")
    try:
        runs = 0
        while True:
            runs += 1
            assert runs <= KILLS + 1, "more runs than kills: a run ended early"
            current["proc"] = proc = subprocess.Popen(
                [str(exe), "remind", "--at", "2026-03-03T10:00", "--instance", str(instance)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            output, _ = proc.communicate(timeout=600)
            if proc.returncode == -signal.SIGKILL:
                continue
            assert proc.returncode == 0, output
            break
    finally:
        server.stop()
    received = [m["To"] for m in server.inbox.messages]
    assert set(received) == addresses  # nothing lost
    duplicates = len(received) - len(set(received))
    assert runs == KILLS + 1
    assert duplicates <= KILLS  # at most one per crash
    assert duplicates == 2  # the two kills between a send and its record

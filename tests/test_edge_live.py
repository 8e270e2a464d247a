"""The web edge against a real `homework serve`: what reaches the access log."""

import socket

import pytest
from conftest import LiveServer

pytestmark = pytest.mark.slow

FORGED = '203.0.113.9 "GET /admin/users" 200 512 0s'


def raw_get(url: str, target: str) -> bytes:
    """Send a request line exactly as given (no client library tidies it up)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_crlf_in_the_path_cannot_forge_an_access_log_line(tmp_path):
    server = LiveServer(tmp_path / "inst")
    try:
        encoded = FORGED.replace(" ", "%20").replace('"', "%22")
        answer = raw_get(server.url, f"/nothing%0D%0A{encoded}%1B[2J")
        assert answer.startswith(b"HTTP/1.1 404")
    finally:
        log = server.stop()
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith("203.0.113.9")]
    logged = [line for line in lines if "/nothing" in line]
    assert len(logged) == 1
    assert "/nothing\\x0d\\x0a203.0.113.9" in logged[0] and "\\x1b[2J" in logged[0]

"""The shipped deploy/ files, run for real: nginx with TLS in front of `homework serve`."""

import datetime
import http.client
import http.cookiejar
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import LiveServer, free_port, homework_cli, self_signed_certificate, wait_for_port
from test_tracking_live import checkin_path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.slow


class Nginx:
    """nginx in the foreground with the shipped site, rewritten only for ports and paths."""

    def __init__(self, folder: Path, app_port: int):
        self.folder = folder
        self.http_port, self.https_port = free_port(), free_port()
        self.logs = folder / "logs"
        self.logs.mkdir(parents=True)
        cert, key = self_signed_certificate(folder)
        self.cert = cert
        proxy_conf = folder / "homework-proxy.conf"
        shutil.copy(DEPLOY / "nginx" / "homework-proxy.conf", proxy_conf)
        site = (DEPLOY / "nginx" / "homework.conf").read_text()
        for old, new in {
            "/var/log/nginx/": f"{self.logs}/",
            "/etc/letsencrypt/live/practice.example/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/practice.example/privkey.pem": str(key),
            "server 127.0.0.1:5000;": f"server 127.0.0.1:{app_port};",
            "/srv/homework/app/homework/static/": f"{ROOT / 'homework' / 'static'}/",
            "/etc/nginx/homework-proxy.conf": str(proxy_conf),
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{self.https_port} ssl http2;",
        }.items():
            assert old in site, f"the shipped site no longer has {old!r}"
            site = site.replace(old, new)
        site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
        (folder / "site.conf").write_text(site)
        temp = "\n".join(
            f"  {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {self.logs / 'main-error.log'} warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n  include /etc/nginx/mime.types;\n"
            f"{temp}\n  include {folder / 'site.conf'};\n}}\n"
        )
        check = subprocess.run(
            [NGINX, "-t", "-c", str(folder / "nginx.conf"), "-p", str(folder)],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(folder / "nginx.conf"), "-p", str(folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.https_port, self.proc)
        wait_for_port(self.http_port, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def access_log(self, until: str) -> str:
        """The access log, once it holds `until`: nginx writes a request's line after it
        has sent the answer, so the client can read the answer before the line is there."""
        path = self.logs / "homework.access.log"
        deadline = time.monotonic() + 120  # only stops a line that never comes
        while until not in (log := path.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return log


class Browser:
    """Cookies, CSRF tokens and no automatic redirects, over HTTPS to our nginx."""

    def __init__(self, base: str, cafile: Path):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        context = ssl.create_default_context(cafile=str(cafile))

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(self.jar),
            NoRedirect,
        )

    def request(self, path: str, data: bytes | dict | None = None, headers=None):
        """(status, headers, body) of one request; errors are answers too."""
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data).encode()
        headers = dict(headers or {})
        if data is not None:  # as a browser does: Flask-WTF checks it over HTTPS
            headers.setdefault("Referer", self.base + path)
        req = urllib.request.Request(self.base + path, data=data, headers=headers)
        try:
            with self.opener.open(req, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def csrf(self, path: str) -> str:
        status, _, body = self.request(path)
        assert status == 200, (path, status)
        return re.search(rb'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', body)[1].decode()

    def sign_in(self, email: str, password: str) -> tuple[int, http.client.HTTPMessage]:
        token = self.csrf("/login")
        status, headers, _ = self.request(
            "/login", {"email": email, "password": password, "csrf_token": token}
        )
        return status, headers


def multipart(fields: dict[str, str], name: str, filename: str, content: bytes):
    """A multipart/form-data body with one file."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def noisy_png(target_bytes: int) -> bytes:
    """A real PNG of random pixels, just under `target_bytes` long."""
    import io

    from PIL import Image

    side = int((target_bytes / 3) ** 0.5)
    while True:
        image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
        out = io.BytesIO()
        image.save(out, format="PNG")
        if len(out.getvalue()) <= target_bytes:
            return out.getvalue()
        side -= 16


@pytest.fixture
def deployed(tmp_path):
    """homework serve (HOMEWORK_PROXY_COUNT = 1) behind the shipped nginx site."""
    server = LiveServer(
        tmp_path / "instance",
        config="HOMEWORK_PROXY_COUNT = 1\nHOMEWORK_CHECKIN_LIMIT_PER_IP = 4\n",
    )
    nginx = None
    try:
        nginx = Nginx(tmp_path / "nginx", int(server.url.rsplit(":", 1)[1]))
        yield server, nginx
    finally:
        if nginx:
            nginx.stop()
        server.stop()


def test_https_through_the_shipped_nginx_site(deployed):
    server, nginx = deployed
    base = f"https://127.0.0.1:{nginx.https_port}"
    therapist = Browser(base, nginx.cert)

    # Plain HTTP is sent to HTTPS.
    conn = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=30)
    conn.request("GET", "/login")
    answer = conn.getresponse()
    assert answer.status == 301
    assert answer.getheader("Location").startswith("https://127.0.0.1/login")

    # Signing in over HTTPS: a Secure, __Host- cookie, and HSTS.
    status, headers = therapist.sign_in(
        "therapist@demo.invalid", server.passwords["therapist@demo.invalid"]
    )
    assert status == 302
    cookies = headers.get_all("Set-Cookie")
    assert cookies and all(c.startswith("__Host-") and "Secure" in c for c in cookies)
    assert "max-age=" in headers["Strict-Transport-Security"]

    # homework's stylesheet comes from disk through nginx.
    status, headers, body = therapist.request("/_static/homework.css")
    assert status == 200 and b"{" in body and headers["Cache-Control"] == "max-age=3600"

    # A handout downloads whole.
    path, item = checkin_path(server.instance)
    status, _, body = therapist.request(f"/homework/{item}/handout.pdf")
    assert status == 200 and body.startswith(b"%PDF")

    # A couple checks in; nginx's access log never holds their link.
    couple = Browser(base, nginx.cert)
    token = couple.csrf(path)
    status, _, _ = couple.request(
        path,
        {"csrf_token": token, "item": item, "practiced_on": datetime.date.today().isoformat(),
         "who": "together", "outcome": "done", "private": "shared", "reflection": "nice"},
    )  # fmt: skip
    assert status in (302, 303)
    log = nginx.access_log(until="POST /c/[link]")
    secret = path.rsplit("/", 1)[1]
    assert "GET /c/[link]" in log and "POST /c/[link]" in log
    assert secret not in log
    assert secret not in (nginx.logs / "homework.error.log").read_text()


def test_uploads_through_nginx_get_homeworks_answers(deployed):
    server, nginx = deployed
    admin = Browser(f"https://127.0.0.1:{nginx.https_port}", nginx.cert)
    status, _ = admin.sign_in("admin@demo.invalid", server.passwords["admin@demo.invalid"])
    assert status == 302

    token = admin.csrf("/settings")
    logo = noisy_png(2 * 1024 * 1024 - 64 * 1024)
    assert len(logo) > 1_900_000
    form = {"csrf_token": token, "name": "Harbour Clinic", "primary": "#2f6f73",
            "accent": "#8a4a35", "paper": "a4", "word": "homework", "crisis": "988"}  # fmt: skip
    body, headers = multipart(form, "logo", "l.png", logo)
    status, _, page = admin.request("/settings", body, headers)
    assert status == 302, page[:2000]
    status, headers, stored = admin.request("/settings/logo.png")
    assert status == 200 and stored.startswith(b"\x89PNG")

    # Over homework's 16 MB limit but within nginx's: homework's own page, not nginx's.
    body, headers = multipart(form, "logo", "big.png", b"\0" * 17_000_000)
    status, _, page = admin.request("/settings", body, headers)
    assert status == 413
    assert b"too large to send" in page and b"nginx" not in page


def test_rate_limits_see_the_client_not_nginx(deployed):
    _server, nginx = deployed
    context = ssl.create_default_context(cafile=str(nginx.cert))

    def status_from(source: str) -> int:
        conn = http.client.HTTPSConnection(
            "127.0.0.1", nginx.https_port, context=context, source_address=(source, 0), timeout=30
        )
        conn.request("GET", "/c/" + "n" * 43)
        status = conn.getresponse().status
        conn.close()
        return status

    # HOMEWORK_CHECKIN_LIMIT_PER_IP is 4: the fifth request from one client is refused...
    answers = [status_from("127.0.0.5") for _ in range(5)]
    assert answers[:4] == [404] * 4 and answers[4] == 429
    # ...while another client, reaching homework through the same nginx, is not.
    assert status_from("127.0.0.6") == 404


def test_doctor_sees_the_proxy_headers(deployed):
    server, nginx = deployed
    Browser(f"https://127.0.0.1:{nginx.https_port}", nginx.cert).request("/login")
    result = homework_cli("doctor", instance=server.instance)
    assert "HOMEWORK_PROXY_COUNT 1 matches the proxy headers seen" in result.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_systemd_units_verify(tmp_path):
    exe = Path(sys.executable).with_name("homework")
    for name in ("homework.service", "homework-backup.service", "homework-backup.timer"):
        text = (DEPLOY / "systemd" / name).read_text()
        text = text.replace("/srv/homework/venv/bin/homework", str(exe))
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in ("homework.service",
         "homework-backup.service", "homework-backup.timer"))],
        capture_output=True,
        text=True,
    )  # fmt: skip
    # Unknown keys, bad values and missing programs all print a line; none may appear.
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_two_clinics_serve_side_by_side(tmp_path):
    # Same service user, same home: neither server may take the other's control socket.
    env = {"HOME": str(tmp_path / "home"), "XDG_RUNTIME_DIR": ""}
    (tmp_path / "home").mkdir()
    first = LiveServer(tmp_path / "north", env=env)
    try:
        second = LiveServer(tmp_path / "south", env=env)
        try:
            for server in (first, second):
                with urllib.request.urlopen(server.url + "/healthz", timeout=30) as resp:
                    assert resp.status == 200
            assert second.proc.poll() is None and first.proc.poll() is None
        finally:
            second_log = second.stop()
    finally:
        first_log = first.stop()
    assert not (tmp_path / "home" / ".gunicorn").exists()
    assert "control" not in (first_log + second_log).lower()

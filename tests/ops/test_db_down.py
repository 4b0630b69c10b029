"""PostgreSQL down: a live server on a throwaway cluster answers 503 (JSON under /api/, a
styled page elsewhere) while the cluster is stopped, and 200 again once it is back, with
the same server process (no restart)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.live import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None or os.geteuid() != 0,
    reason="needs PostgreSQL 15 binaries and root (initdb runs as the postgres user)",
)


def _as_postgres(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, **kwargs)


class Cluster:
    def __init__(self, root: Path):
        self.data = root / "data"
        self.port = free_port()
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-w",
            "-l",
            str(self.data.parent / "pg.log"),
            "start",
        )

    def stop(self) -> None:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def _get(opener, url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=15) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


@pytest.fixture
def stack():
    tmp = Path(tempfile.mkdtemp(prefix="leadcrm-pgdown-"))
    shutil.chown(tmp, "postgres", "postgres")
    cluster = Cluster(tmp)
    server = None
    try:
        cluster.start()
        _as_postgres(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "leadcrm")
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{cluster.port}/leadcrm",
            "SECRET_KEY": "pg-down-test",
            "DEBUG": "false",
            "HTTPS": "false",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "CELERY_BROKER_URL": "memory://",
            "REDIS_URL": "",
            "LEADCRM_VAR_DIR": str(tmp / "var"),
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT, timeout=300)
        out = subprocess.run(
            [
                *manage,
                "shell",
                "-c",
                (
                    "from accounts.models import User; from rest_framework.authtoken.models import Token;"
                    "u = User.objects.create_user('sdr', password='pw-down-123', role='sdr');"
                    "print(Token.objects.create(user=u).key)"
                ),
            ],
            env=env,
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        token = out.stdout.strip().splitlines()[-1]
        port = free_port()
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield cluster, server, base, token
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        if cluster.running():
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _login(base: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    status, _, html = _get(opener, base + "/login/")
    assert status == 200
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    body = urllib.parse.urlencode({"username": "sdr", "password": "pw-down-123", "csrfmiddlewaretoken": csrf}).encode()
    opener.open(urllib.request.Request(base + "/login/", data=body, headers={"Referer": base + "/login/"}), timeout=15)
    assert any(c.name == "sessionid" for c in jar)
    return opener


def test_postgres_down_answers_503_and_recovers_without_restart(stack):
    cluster, server, base, token = stack
    api = urllib.request.build_opener()
    auth = {"Authorization": f"Token {token}", "Accept": "application/json"}
    browser = _login(base)

    assert _get(api, base + "/api/v1/leads/", auth)[0] == 200
    assert _get(browser, base + "/queue/")[0] == 200

    cluster.stop()
    for _ in range(2):  # the kept connection that died, then a fresh connect refused
        status, headers, body = _get(api, base + "/api/v1/leads/", auth)
        assert status == 503, body[:500]
        assert headers["Content-Type"].startswith("application/json")
        assert "detail" in json.loads(body)
        assert int(headers["Retry-After"]) > 0
        status, headers, body = _get(browser, base + "/queue/")
        assert status == 503, body[:500]
        assert headers["Content-Type"].startswith("text/html")
        assert "temporarily unavailable" in body and "css/app.css" in body
    # A page whose session cookie cannot be read, and one that needs no session.
    assert _get(urllib.request.build_opener(), base + "/login/")[0] in (200, 503)

    cluster.start()
    deadline = time.monotonic() + 10
    while True:
        api_status = _get(api, base + "/api/v1/leads/", auth)[0]
        page_status = _get(browser, base + "/queue/")[0]
        if (api_status, page_status) == (200, 200) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (api_status, page_status) == (200, 200)
    assert server.poll() is None  # the same process served before, during and after

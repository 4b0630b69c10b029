"""The published OpenAPI schema against the running API: schemathesis drives every operation
of /api/schema/ on a live server (seeded demo data: users of each role with tokens, leads in
every stage, a rule set, routing rules, territories, a partner, SLA policies) and fails on
any server error, any undocumented status code and any answer that violates its schema.

Bounded and reproducible: a fixed seed, few examples per operation, no stateful phase."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import call_command

from tests.live import free_port, stop, test_database_url

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
SEED = "20261202"

# (client, max examples per operation, phases): the admin reaches every operation; the
# other roles and the anonymous client mostly meet the refusals, so fewer cases suffice.
CLIENTS = [
    ("admin", 8, "examples,coverage,fuzzing"),
    ("marketing", 3, "examples,coverage,fuzzing"),
    ("sdr1", 2, "examples,fuzzing"),
    (None, 2, "examples,fuzzing"),
]


def schemathesis(base_url: str, token: str | None, max_examples: int, phases: str, report_dir: Path) -> tuple:
    st = Path(sys.executable).with_name("st")
    cmd = [
        str(st),
        "--no-color",
        "run",
        f"{base_url}/api/schema/",
        "--url",
        base_url,
        "--checks",
        CHECKS,
        "--phases",
        phases,
        "--max-examples",
        str(max_examples),
        "--seed",
        SEED,
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--suppress-health-check",
        "all",
        "--report-dir",
        str(report_dir),
    ]
    if token:
        cmd += ["--header", f"Authorization: Token {token}"]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, cwd=report_dir, env={**os.environ, "NO_COLOR": "1"}
    )
    return proc, time.monotonic() - started


@pytest.fixture
def api_server(django_db_reset_sequences, tmp_path):
    """Seeded demo data in the test database, served by gunicorn (as in production) on a free
    port: Django's threaded test server is several times slower per request."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        pytest.skip("the live server needs the PostgreSQL test database (an in-memory SQLite is not shared)")
    call_command("seed_demo", leads=60, stdout=open(os.devnull, "w"))
    # Sequences restart for each run, so the seeded ids (and the seed's cases) repeat.
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "EMAIL_URL": "dummymail://",
        "DEBUG": "false",
        "HTTPS": "false",
    }
    log = open(tmp_path / "gunicorn.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "leadcrm.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=settings.BASE_DIR,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/schema/", timeout=5).read()
                break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_text = (tmp_path / "gunicorn.log").read_text()[-3000:]
                    raise RuntimeError(f"gunicorn did not start: {log_text}") from exc
                time.sleep(0.3)
        yield url
    finally:
        stop(server, timeout=20)
        log.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize(("username", "max_examples", "phases"), CLIENTS, ids=[c[0] or "anonymous" for c in CLIENTS])
def test_schemathesis_finds_no_failure(api_server, tmp_path, username, max_examples, phases):
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user__username=username).key if username else None
    report_dir = tmp_path / "schemathesis"
    report_dir.mkdir()

    proc, seconds = schemathesis(api_server, token, max_examples, phases, report_dir)
    out = proc.stdout + proc.stderr
    tested = re.search(r"Tested: (\d+)", out)
    generated = re.search(r"(\d+) generated", out)
    print(
        f"schemathesis as {username or 'anonymous'}: {tested and tested.group(1)} operations, "
        f"{generated and generated.group(1)} test cases, {seconds:.1f} s"
    )
    assert proc.returncode == 0, out[-20000:]
    # The run reached the whole schema (a broken schema URL would "pass" with nothing tested).
    assert tested and int(tested.group(1)) >= 60, out[-5000:]

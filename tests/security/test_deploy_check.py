"""`manage.py check --deploy` with production settings is clean (issue 14, "Done when"):
HTTPS on, DEBUG off, a long random SECRET_KEY, the allowed hosts set, PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings

from tests.live import test_database_url

pytestmark = pytest.mark.django_db


def _deploy_check(**overrides: str) -> subprocess.CompletedProcess:
    # The test process's own switches are not production's (the browser tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE for Playwright, which async.E001 rightly refuses).
    dropped = ("DEBUG", "HSTS_PRELOAD", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="true",
        ALLOWED_HOSTS="crm.example.com",
        CSRF_TRUSTED_ORIGINS="https://crm.example.com",
        DATABASE_URL=test_database_url(),
        **overrides,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_is_clean_with_production_settings():
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("production runs on PostgreSQL; the test database here is an in-memory SQLite")
    proc = _deploy_check()
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output and "?: (" not in output, output


def test_check_deploy_does_catch_a_weak_setting():
    """The check is live, not silenced wholesale: DEBUG on in production is reported."""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        pytest.skip("production runs on PostgreSQL; the test database here is an in-memory SQLite")
    proc = _deploy_check(DEBUG="true")
    assert proc.returncode != 0
    assert "security.W018" in proc.stdout + proc.stderr

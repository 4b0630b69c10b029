"""End to end through a real Celery worker: a task sent over Redis, run by a separate worker
process against the test database.

Runs on PostgreSQL with Redis reachable (as `make test` and CI set up); skipped on SQLite or
without Redis, except under CI=true, where a missing Redis fails the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.live import stop, test_database_url

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A database of its own, flushed first (TEST_REDIS_DB: another for a second run beside this one).
BROKER_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{os.environ.get('TEST_REDIS_DB', '15')}"
TIMEOUT = 30

pytestmark = pytest.mark.celery_worker


def _redis_reachable() -> bool:
    try:
        socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def redis_broker() -> str:
    if not _redis_reachable():
        message = f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (required under CI)")
        pytest.skip(message)
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    return BROKER_URL


@pytest.fixture
def celery_worker_process(transactional_db, redis_broker):
    """A `celery -A leadcrm worker` subprocess on the Redis broker and the test database."""
    if connection.vendor != "postgresql":
        pytest.skip("the worker test needs PostgreSQL (a worker process cannot see an in-memory SQLite test db)")
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": redis_broker,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-secret",
        "HTTPS": "false",
        "CONN_MAX_AGE": "0",
    }
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    cmd = [
        sys.executable, "-m", "celery", "-A", "leadcrm", "worker",
        "--pool", "solo", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc, log.name
    finally:
        stop(proc)
        log.close()
        os.unlink(log.name)


@pytest.fixture
def app_on_redis(redis_broker, monkeypatch):
    """Point this process's Celery app at the same Redis broker, tasks no longer eager."""
    from leadcrm.celery import app

    names = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {name: app.conf[name] for name in names}
    monkeypatch.setenv("CELERY_BROKER_URL", redis_broker)  # Celery reads it before its settings
    app.conf.broker_url = redis_broker
    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    _drop_pools(app)  # pools made for another broker would keep sending there
    try:
        yield app
    finally:
        _drop_pools(app)
        for name, value in saved.items():
            app.conf[name] = value


def _drop_pools(app) -> None:
    """Forget the app's broker connections, and kombu's registry of pools by URL: a pool
    force-closed here stays registered, and the next test on that URL would get it closed."""
    from kombu import pools

    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    pools.reset()


def test_worker_refreshes_lead_activity(celery_worker_process, app_on_redis):
    from leads.models import Lead, Touchpoint
    from leads.tasks import lead_activity_refresh

    proc, log_path = celery_worker_process
    lead = Lead.objects.create(email="worker-e2e@example.com")
    touchpoint = Touchpoint.objects.create(lead=lead, type="page_view", occurred_at=timezone.now())
    assert lead.activity_count == 0 and lead.last_activity_at is None

    lead_activity_refresh.delay([lead.pk])

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        lead.refresh_from_db()
        if lead.activity_count == 1 and lead.last_activity_at is not None:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.25)
    if not (lead.activity_count == 1 and lead.last_activity_at is not None):
        with open(log_path) as fh:
            worker_log = fh.read()[-4000:]
        state = f"exited with {proc.returncode}" if proc.poll() is not None else "still running"
        pytest.fail(
            f"the worker ({state}) did not refresh the lead within {TIMEOUT}s: "
            f"activity_count={lead.activity_count}, last_activity_at={lead.last_activity_at}\n"
            f"--- worker log ---\n{worker_log}"
        )
    assert lead.last_activity_at == touchpoint.occurred_at

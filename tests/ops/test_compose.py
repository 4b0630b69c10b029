"""The production stack as docker-compose.yml and the Procfile describe it (no Docker engine
needed): the processes the outbox and the jobs rely on are there, and Redis keeps what is
queued across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_the_stack_has_its_services(compose):
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(services)
    assert "gunicorn leadcrm.wsgi" in _command(services["web"])
    assert _command(services["worker"]).startswith("celery -A leadcrm worker")
    assert _command(services["beat"]).startswith("celery -A leadcrm beat")
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:") and env["REDIS_URL"].startswith("redis://redis:")
        assert env["DATABASE_URL"].startswith("postgres://")


def test_redis_keeps_queued_tasks_across_a_restart(compose):
    redis = compose["services"]["redis"]
    args = _command(redis).split()
    assert args[0] == "redis-server" and args[args.index("--appendonly") + 1] == "yes"
    assert "--maxmemory" not in args  # an evicting Redis would drop queued tasks
    volumes = {v.split(":")[0]: v.split(":")[1] for v in redis["volumes"]}
    assert volumes.get("redisdata") == "/data" and "redisdata" in compose["volumes"]


def test_procfile_runs_a_worker_and_beat():
    procs = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line)
    assert procs["worker"].strip().startswith("celery -A leadcrm worker")
    assert procs["beat"].strip().startswith("celery -A leadcrm beat")

"""Long work survives a worker killed with kill -9 (issue 14): a real Celery worker on Redis
runs a job, its whole process group is killed mid-way after chunks committed, a new worker
starts, the resume beat's service sends the job again, and the job finishes from its last
committed chunk: every effect once, the counts right, within a minute.

PostgreSQL + Redis (database 14 of the shared Redis, flushed first); skipped otherwise.
The stale threshold is lowered to 10 s here (45 s in production, beat every 15 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest
from django.db import connection

from tests.live import stop, test_database_url
from tests.test_celery_worker import _drop_pools, _redis_reachable

BROKER_URL = "redis://127.0.0.1:6379/14"
STALE = 10

pytestmark = pytest.mark.celery_worker


@pytest.fixture
def broker(transactional_db, monkeypatch, settings):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    if not _redis_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not reachable (required under CI)")
        pytest.skip("Redis is not reachable")
    import redis

    redis.Redis.from_url(BROKER_URL).flushdb()
    from leadcrm.celery import app

    names = ("broker_url", "task_always_eager", "broker_transport_options")
    saved = {name: app.conf[name] for name in names}
    monkeypatch.setenv("CELERY_BROKER_URL", BROKER_URL)
    app.conf.broker_url = BROKER_URL
    app.conf.task_always_eager = False
    app.conf.broker_transport_options = {"visibility_timeout": 3600}
    settings.LEADCRM_JOB_STALE_SECONDS = STALE
    _drop_pools(app)
    workers: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-secret",
            "HTTPS": "false",
            "CONN_MAX_AGE": "0",
            "LEADCRM_JOB_STALE_SECONDS": str(STALE),
        }
        log = tempfile.NamedTemporaryFile(prefix="celery-jobs-", suffix=".log", delete=False)
        cmd = [
            sys.executable, "-m", "celery", "-A", "leadcrm", "worker",
            "--pool", "solo", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        proc.log_path = log.name
        workers.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in workers:
            stop(proc)
            os.unlink(proc.log_path)
        _drop_pools(app)
        for name, value in saved.items():
            app.conf[name] = value


def _log(proc) -> str:
    with open(proc.log_path) as fh:
        return fh.read()[-3000:]


def _kill_mid_way(start, job_id: int, done_when, timeout: float = 60) -> tuple[float, subprocess.Popen]:
    """Start a worker, wait until at least one chunk committed (and not all), kill -9 its
    process group; returns when it was killed."""
    from leadcrm import jobs
    from leadcrm.models import Job, JobStatus

    worker = start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if done_when(job):
            break
        if job.status == JobStatus.QUEUED and job.enqueued_at is None:
            jobs.jobs_resume()  # the kick-off found the broker busy (a loaded machine): as the beat does
        if worker.poll() is not None:
            pytest.fail("the worker exited:\n" + _log(worker))
        time.sleep(0.05)
    else:
        pytest.fail(f"no chunk committed within {timeout}s:\n{_log(worker)}")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    return time.monotonic(), worker


def _resume_until_done(start, job_id: int, killed_at: float) -> object:
    """A new worker, and the resume beat (every 2 s here) until the job is finished."""
    from leadcrm import jobs
    from leadcrm.models import Job, JobStatus

    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.RUNNING, "the kill came too late: nothing left to resume"
    attempts, taken_over = job.attempts, None
    worker = start()
    while time.monotonic() < killed_at + 60:
        jobs.jobs_resume()
        job = Job.objects.get(pk=job_id)
        if taken_over is None and job.attempts > attempts:
            taken_over = time.monotonic() - killed_at
            print(f"job {job_id} ({job.kind}) taken over {taken_over:.1f} s after the kill (stale after {STALE} s)")
        if job.status in (JobStatus.DONE, JobStatus.FAILED):
            break
        time.sleep(2)
    assert job.status == JobStatus.DONE, f"job {job.status} {job.error!r} a minute after the kill:\n{_log(worker)}"
    assert time.monotonic() - killed_at < 60
    return job


def test_import_survives_kill_9(broker):
    from accounts.models import Role
    from leads import imports
    from leads.models import ImportJob, ImportStatus, Lead, Touchpoint
    from tests.factories import UserFactory

    n = 20_000
    # Every 20th line is a lead already there: updated, with one capture touchpoint. A run
    # again from line 1 would also find the leads it created as existing (a touchpoint each).
    Lead.objects.bulk_create(Lead(email=f"k{i}@example.com") for i in range(0, n, 20))
    data = ("Email,First name,Country\n" + "".join(f"k{i}@example.com,K{i},FR\n" for i in range(n))).encode()
    upload = imports.import_job_create(data=data, filename="big.csv", user=UserFactory(role=Role.MARKETING))
    imports.import_job_start(
        job_id=upload.pk, mapping={"Email": "email", "First name": "first_name", "Country": "country"}, dry_run=False
    )
    [run_id] = imports.Job.objects.filter(params__import_id=upload.pk).values_list("pk", flat=True)

    killed_at, _ = _kill_mid_way(broker, run_id, lambda job: job.cursor.get("row", 0) >= 2 * imports.CHUNK)
    mid = ImportJob.objects.get(pk=upload.pk)
    assert 0 < mid.processed_rows < n and mid.status == ImportStatus.RUNNING

    run = _resume_until_done(broker, run_id, killed_at)
    upload.refresh_from_db()
    assert upload.status == ImportStatus.DONE
    counts = (upload.processed_rows, upload.created_count, upload.updated_count, upload.failed_count)
    assert counts == (n, n - n // 20, n // 20, 0)
    assert run.counts == {
        **dict(zip(("processed_rows", "created_count", "updated_count", "failed_count"), counts, strict=True)),
        "recorded_count": 0,
    }
    assert run.attempts == 2 and run.cursor == {"row": n}
    assert Lead.objects.count() == n
    assert Touchpoint.objects.filter(type="capture").count() == n // 20  # one per existing lead
    assert Touchpoint.objects.filter(type="capture").values("lead").distinct().count() == n // 20


def _score_change_counts() -> set[int]:
    from django.db.models import Count

    from leads.models import ScoreChange

    return set(ScoreChange.objects.values("lead").annotate(n=Count("id")).values_list("n", flat=True))


def test_full_rescore_survives_kill_9(broker):
    from leadcrm.actors import Actor
    from leads.models import Lead, ScoreChange
    from scoring import services
    from scoring.models import RuleSet

    n = 20_000
    rule = {"name": "Software", "field": "industry", "operator": "equals", "value": "Software", "points": 20}
    rs = services.ruleset_create(
        data={"name": "Kill", "mql_threshold": 90, "fit_rules": [rule]}, actor=Actor.automation()
    )
    RuleSet.objects.filter(pk=rs.pk).update(is_active=True)  # active without its own rescore
    Lead.objects.bulk_create((Lead(email=f"s{i}@example.com", industry="Software") for i in range(n)), batch_size=5000)
    ids = list(Lead.objects.order_by("pk").values_list("pk", flat=True))
    job = services.rescore_start(actor=Actor.automation(), reason="kill -9 test").job  # sent on commit

    killed_at, _ = _kill_mid_way(broker, job.pk, lambda j: j.cursor.get("after", 0) >= ids[2 * services.JOB_CHUNK - 1])
    job.refresh_from_db()
    assert ids[0] < job.cursor["after"] < ids[-1] and 0 < job.counts["leads"] < n  # killed mid-job
    assert ScoreChange.objects.count() == job.counts["changed"]  # only committed chunks' writes

    run = _resume_until_done(broker, job.pk, killed_at)
    assert run.attempts == 2 and run.cursor == {"after": ids[-1]}
    assert run.counts == {"leads": n, "changed": n, "promoted": 0}
    assert set(Lead.objects.values_list("score", flat=True)) == {20}
    assert ScoreChange.objects.count() == n and _score_change_counts() == {1}  # each lead's change once


def test_bulk_routing_survives_kill_9(broker):
    from django.db.models import Count

    from accounts.models import Role
    from leadcrm.actors import Actor
    from leads.models import Assignment, Lead, Stage
    from routing import services
    from routing.models import RoutingRule
    from tests.factories import TeamFactory, UserFactory

    n = 10_000
    team = TeamFactory(name="Kill team")
    sellers = [UserFactory(role=Role.SDR, team=team, capacity=n, weight=1) for _ in range(4)]
    RoutingRule.objects.create(name="Everyone", position=1, conditions={}, team=team)
    Lead.objects.bulk_create(
        (Lead(email=f"u{i}@example.com", stage=Stage.MQL, grade="A", score=70) for i in range(n)), batch_size=5000
    )
    ids = list(Lead.objects.order_by("pk").values_list("pk", flat=True))
    job = services.route_unassigned_start(actor=Actor(UserFactory(role=Role.ADMIN), "user")).job  # sent on commit

    killed_at, _ = _kill_mid_way(
        broker, job.pk, lambda j: j.cursor.get("after", 0) >= ids[2 * services.ROUTE_CHUNK - 1]
    )
    job.refresh_from_db()
    assert ids[0] < job.cursor["after"] < ids[-1] and 0 < job.counts["leads"] < n  # killed mid-job
    assert Assignment.objects.count() == job.counts["assigned"]  # only committed chunks' assignments

    run = _resume_until_done(broker, job.pk, killed_at)
    assert run.attempts == 2 and run.cursor == {"after": ids[-1]}
    assert run.counts == {"leads": n, "assigned": n, "pool": 0, "partner": 0, "unmatched": 0, "skipped": 0}
    assert not Lead.objects.filter(owner__isnull=True).exists()
    per_lead = Assignment.objects.values("lead").annotate(k=Count("id")).values_list("k", flat=True)
    assert Assignment.objects.count() == n and set(per_lead) == {1}  # each lead routed once
    loads = Lead.objects.values("owner").annotate(k=Count("id")).values_list("k", flat=True)
    assert sorted(loads) == [n // len(sellers)] * len(sellers)  # the round-robin's counters survived too

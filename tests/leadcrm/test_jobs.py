"""The resumable job runner (leadcrm.jobs) without a worker: a run interrupted after chunk k
continues at k+1 with each chunk's effect once; a duplicate delivery while the holder lives
does nothing; a stale job is taken over and its old holder refused; retries are bounded; the
resume beat finds what nobody works on. Then the CSV import through it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from leadcrm import jobs
from leadcrm.errors import ServiceError
from leadcrm.models import AuditEntry, Job, JobStatus

pytestmark = pytest.mark.django_db

STARTS: list[int] = []
FAIL: dict[str, object] = {}


def count_chunks(ctx: jobs.JobContext) -> None:
    """A test kind: params n items, 10 per chunk, one AuditEntry per item."""
    i = int(ctx.cursor.get("i", 0))
    STARTS.append(i)
    n = ctx.params["n"]
    while i < n:
        if FAIL.get("at") == i:
            if FAIL.get("once"):
                FAIL.clear()
            raise FAIL.get("exc", RuntimeError("boom"))
        with transaction.atomic():
            AuditEntry.objects.bulk_create(
                AuditEntry(at=timezone.now(), actor_kind="automation", action="test.item", target_id=str(k))
                for k in range(i, min(n, i + 10))
            )
            ctx.commit_chunk(cursor={"i": min(n, i + 10)}, counts={"items": min(n, i + 10) - i})
        i = min(n, i + 10)


@pytest.fixture(autouse=True)
def test_kind(monkeypatch):
    STARTS.clear()
    FAIL.clear()
    monkeypatch.setitem(jobs.KINDS, "test.count", jobs.JobKind(run="tests.leadcrm.test_jobs.count_chunks"))
    sent: list[int] = []
    from leadcrm import tasks

    monkeypatch.setattr(tasks.job_run, "delay", lambda job_id: sent.append(job_id))
    return sent


def _job(n=50, **fields) -> Job:
    return Job.objects.create(kind="test.count", params={"n": n}, **fields)


def _items() -> list[str]:
    return list(AuditEntry.objects.filter(action="test.item").order_by("id").values_list("target_id", flat=True))


def test_interrupted_after_chunk_k_resumes_at_k_plus_1():
    job = _job()
    FAIL.update(at=30, once=True)  # chunks 0-2 commit, chunk 3 raises
    left = jobs.job_run(job.pk)
    assert left.status == JobStatus.QUEUED and left.cursor == {"i": 30} and left.counts == {"items": 30}
    assert left.error == "boom" and left.retry_at is not None and left.holder == ""
    assert len(_items()) == 30
    done = jobs.job_run(job.pk)
    assert STARTS == [0, 30]
    assert done.status == JobStatus.DONE and done.counts == {"items": 50} and done.attempts == 2
    assert _items() == [str(k) for k in range(50)]  # each item once, in order


def test_duplicate_delivery_while_holder_alive_does_nothing():
    job = _job(status=JobStatus.RUNNING, holder="alive", heartbeat_at=timezone.now(), attempts=1)
    assert jobs.job_run(job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.holder, job.attempts) == (JobStatus.RUNNING, "alive", 1)
    assert STARTS == [] and _items() == []


def test_finished_job_delivered_again_does_nothing():
    job = _job(n=20)
    jobs.job_run(job.pk)
    assert jobs.job_run(job.pk) is None
    assert STARTS == [0] and len(_items()) == 20


def test_stale_job_is_taken_over_and_its_old_holder_refused():
    old = timezone.now() - jobs.stale_after() - dt.timedelta(seconds=1)
    job = _job(
        status=JobStatus.RUNNING, holder="dead", heartbeat_at=old, attempts=1, cursor={"i": 20}, counts={"items": 20}
    )
    done = jobs.job_run(job.pk)
    assert STARTS == [20] and done.status == JobStatus.DONE and done.counts == {"items": 50} and done.attempts == 2
    zombie = jobs.JobContext(job.pk, "dead", "test.count", {}, {})
    with pytest.raises(jobs.JobLost), transaction.atomic():
        AuditEntry.objects.create(at=timezone.now(), actor_kind="automation", action="test.item", target_id="zombie")
        zombie.commit_chunk(cursor={"i": 0}, counts={"items": 10})
    assert "zombie" not in _items()  # the old holder's chunk rolled back with its refusal
    assert Job.objects.get(pk=job.pk).counts == {"items": 50}


def test_retries_are_bounded_then_failed_with_the_message():
    job = _job()
    FAIL.update(at=10)
    for _ in range(jobs.MAX_ATTEMPTS):
        last = jobs.job_run(job.pk)
    assert last.status == JobStatus.FAILED and last.error == "boom" and last.attempts == jobs.MAX_ATTEMPTS
    assert jobs.job_run(job.pk) is None and len(_items()) == 10


def test_a_job_killed_too_often_fails():
    old = timezone.now() - dt.timedelta(minutes=5)
    job = _job(status=JobStatus.RUNNING, holder="dead", heartbeat_at=old, attempts=jobs.MAX_ATTEMPTS)
    assert jobs.job_run(job.pk) is None
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "attempts" in job.error and STARTS == []


def test_bad_input_fails_at_once():
    job = _job()
    FAIL.update(at=0, exc=ServiceError({"file": ["Not a CSV."]}))
    left = jobs.job_run(job.pk)
    assert left.status == JobStatus.FAILED and left.error == "Not a CSV." and left.attempts == 1


def test_kick_off_after_commit_only(test_kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.job_create(kind="test.count", params={"n": 5})
        assert test_kind == []
    assert test_kind == [job.pk] and Job.objects.get(pk=job.pk).enqueued_at is not None


def test_keyed_job_is_created_once():
    a = jobs.job_create(kind="test.count", params={"n": 5}, key="night:2026-12-02")
    b = jobs.job_create(kind="test.count", params={"n": 5}, key="night:2026-12-02")
    assert a.pk == b.pk and Job.objects.count() == 1


def test_resume_beat_sends_what_nobody_works_on(test_kind):
    now = timezone.now()
    never_sent = _job()
    retry_later = _job(retry_at=now + dt.timedelta(seconds=30))
    sent_recently = _job(enqueued_at=now - dt.timedelta(seconds=5))
    sent_long_ago = _job(enqueued_at=now - dt.timedelta(minutes=10))
    alive = _job(status=JobStatus.RUNNING, heartbeat_at=now, enqueued_at=now - dt.timedelta(seconds=50))
    stale = _job(
        status=JobStatus.RUNNING, heartbeat_at=now - dt.timedelta(minutes=1), enqueued_at=now - dt.timedelta(minutes=2)
    )
    _job(status=JobStatus.DONE)
    _job(status=JobStatus.FAILED)
    assert jobs.jobs_resume(now=now) == [never_sent.pk, sent_long_ago.pk, stale.pk]
    assert test_kind == [never_sent.pk, sent_long_ago.pk, stale.pk]
    # Sent once: the next beats wait for a worker to pick them up.
    assert jobs.jobs_resume(now=now + dt.timedelta(seconds=15)) == []
    assert jobs.jobs_resume(now=now + dt.timedelta(seconds=31)) == [retry_later.pk]
    assert {sent_recently.pk, alive.pk}.isdisjoint(test_kind)


def test_broker_down_at_kick_off_leaves_it_to_the_beat(monkeypatch, django_capture_on_commit_callbacks):
    from leadcrm import tasks

    def refuse(job_id):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.job_run, "delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.job_create(kind="test.count", params={"n": 5})
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.enqueued_at is None
    assert jobs.jobs_resume() == []  # still refused: stays due
    sent = []
    monkeypatch.setattr(tasks.job_run, "delay", sent.append)
    assert jobs.jobs_resume() == [job.pk] and sent == [job.pk]


def test_beat_schedule_runs_the_resume_task_often(settings):
    [entry] = [v for v in settings.CELERY_BEAT_SCHEDULE.values() if v["task"] == "leadcrm.tasks.jobs_resume"]
    assert entry["schedule"] <= 20 and jobs.stale_after().total_seconds() + entry["schedule"] <= 60


def _widest(old: dict, new: dict) -> dict:
    return {"n": max(old["n"], new["n"])}


def test_a_lane_holds_one_live_job_and_runs_once_more_after_it():
    first = jobs.job_request(kind="test.count", lane="count", params={"n": 10}, merge=_widest, enqueue=False)
    joined = jobs.job_request(kind="test.count", lane="count", params={"n": 20}, merge=_widest, enqueue=False)
    assert first.created and not joined.created and not joined.follow_up and joined.job.pk == first.job.pk
    assert Job.objects.get(pk=first.job.pk).params == {"n": 20}  # not started: widened
    FAIL.update(at=10)  # the run fails for good after its first chunk ...
    FAIL["exc"] = ServiceError({"n": ["bad"]})
    Job.objects.filter(pk=first.job.pk).update(status=JobStatus.RUNNING, attempts=1, holder="dead", heartbeat_at=None)
    later = jobs.job_request(kind="test.count", lane="count", params={"n": 30}, merge=_widest, enqueue=False)
    assert later.follow_up and later.job.pk == first.job.pk
    assert jobs.job_run(first.job.pk).status == JobStatus.FAILED
    # ... and the run asked for meanwhile is created as it ends, holding the lane in turn.
    [then] = Job.objects.filter(status=JobStatus.QUEUED)
    assert then.params == {"n": 30} and then.key == jobs.LANE_PREFIX + "count"
    assert Job.objects.get(pk=first.job.pk).key == ""
    FAIL.clear()
    assert jobs.job_run(then.pk).counts == {"items": 30}
    assert not Job.objects.exclude(key="").exists()  # free again
    assert jobs.job_request(kind="test.count", lane="count", params={"n": 1}, merge=_widest, enqueue=False).created

"""Long work (CSV import, full rescore, bulk routing) run in chunks, resumable from the database.

A job's state is its `leadcrm.models.Job` row: each chunk's writes and the advance of the
job's cursor and counts commit in one transaction (`JobContext.commit_chunk`), so a chunk's
effect happens once and a restarted run continues after the last committed chunk. A worker
holds a job by a token and its heartbeat (refreshed by each chunk): a second delivery while
the holder is alive does nothing; a job whose heartbeat is stale (holder killed) is taken
over, and the old holder's next chunk is refused (rolled back). The beat task
`leadcrm.tasks.jobs_resume` re-enqueues queued jobs never started and stale ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.module_loading import import_string

from leadcrm.errors import ServiceError
from leadcrm.models import Job, JobStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REQUEUE_AFTER = dt.timedelta(minutes=5)  # a kick-off message presumed lost after this
# The Celery task that runs a job, named by its path as the kinds' hooks are: the tasks
# module wraps this runner (it imports this module), so this module does not import it.
RUN_TASK = "leadcrm.tasks.job_run"


def stale_after() -> dt.timedelta:
    """A holder silent for this long is presumed dead; chunks must take well under it."""
    return dt.timedelta(seconds=getattr(settings, "LEADCRM_JOB_STALE_SECONDS", 45))


@dataclass(frozen=True)
class JobKind:
    run: str  # dotted path of fn(ctx: JobContext) -> None: the chunk loop
    done: str = ""  # fn(job: Job) -> None, in the transaction that marks the job done
    failed: str = ""  # fn(job: Job) -> None, in the transaction that marks the job failed


KINDS: dict[str, JobKind] = {
    "leads.import": JobKind(
        run="leads.imports.import_job_chunks",
        done="leads.imports.import_job_done",
        failed="leads.imports.import_job_failed",
    ),
    "scoring.rescore": JobKind(run="scoring.services.rescore_job_chunks"),
    "routing.route": JobKind(run="routing.services.route_job_chunks"),
}


class JobLost(Exception):
    """Another worker took this job over (our heartbeat went stale): stop, write nothing."""


@dataclass
class JobContext:
    job_id: int
    token: str
    kind: str
    params: dict
    cursor: dict
    counts: dict = field(default_factory=dict)
    # Told (cursor, counts) after each chunk's advance, for a progress display (the command's
    # --wait); called inside the chunk's transaction, so it may show a chunk that then rolls back.
    on_chunk: Callable[[dict, dict], None] | None = None

    def commit_chunk(self, *, cursor: dict | Callable[[dict], dict], counts: dict[str, int] | None = None) -> dict:
        """Advance the cursor and add `counts`, inside the chunk's own transaction (the caller's
        `transaction.atomic()`), as its last statement: the chunk's writes and its advance
        commit together or not at all. Refused (JobLost) when this worker no longer holds the
        job. Returns the new cursor."""
        if not connection.in_atomic_block:
            raise RuntimeError("commit_chunk must run inside the chunk's transaction")
        row = Job.objects.select_for_update().filter(pk=self.job_id).values("holder", "cursor", "counts").first()
        if row is None or row["holder"] != self.token:
            raise JobLost(self.job_id)
        new_cursor = cursor(dict(row["cursor"])) if callable(cursor) else {**row["cursor"], **cursor}
        new_counts = dict(row["counts"])
        for name, n in (counts or {}).items():
            new_counts[name] = new_counts.get(name, 0) + n
        Job.objects.filter(pk=self.job_id).update(cursor=new_cursor, counts=new_counts, heartbeat_at=timezone.now())
        self.counts = new_counts
        if self.on_chunk is not None:
            self.on_chunk(new_cursor, new_counts)
        return new_cursor

    def beat(self) -> None:
        """Refresh the heartbeat between chunks (e.g. after a long parse); JobLost if taken over."""
        with transaction.atomic():
            self.commit_chunk(cursor={})


def job_create(*, kind: str, params: dict | None = None, created_by=None, key: str = "", enqueue: bool = True) -> Job:
    """A queued job, enqueued after commit (`enqueue=False`: the caller runs it here, and the
    resume beat sends it if the caller dies first). With `key`, an existing job of that key is
    returned instead (a scheduled job delivered twice is one job)."""
    if kind not in KINDS:
        raise ValueError(f"Unknown job kind {kind!r}")
    with transaction.atomic():
        if key:
            job = Job.objects.filter(key=key).first()
            if job is not None:
                return job
        job = Job.objects.create(kind=kind, params=params or {}, created_by=created_by, key=key)
        job_id = job.pk
        if enqueue:
            transaction.on_commit(lambda: job_enqueue(job_id))
    return job


LANE_PREFIX = "lane:"


@dataclass(frozen=True)
class JobRequest:
    job: Job
    created: bool  # a new job (else the request joined the live one)
    follow_up: bool  # the live one had started: a run after it was noted (`then`)


def job_request(
    *,
    kind: str,
    lane: str,
    params: dict,
    merge: Callable[[dict, dict], dict],
    created_by=None,
    enqueue: bool = True,
) -> JobRequest:
    """At most one live job per `lane` (two clicks: one job), held by the job's key while it is
    queued or running. A request while the live job has not started widens its params
    (`merge(old, new)`); once it has started, its earlier chunks are done with what was true
    then, so the request is noted in `params["then"]` (merged with any earlier one) and one
    more job is created when it ends (`_lane_ended`), in the transaction that ends it."""
    key = LANE_PREFIX + lane
    for attempt in range(3):
        try:
            with transaction.atomic():
                live = Job.objects.select_for_update().filter(key=key).first()
                if live is None:
                    job = Job.objects.create(kind=kind, params=params, created_by=created_by, key=key)
                    if enqueue:
                        transaction.on_commit(lambda job_id=job.pk: job_enqueue(job_id))
                    return JobRequest(job, created=True, follow_up=False)
                if live.status == JobStatus.QUEUED and live.attempts == 0 and not live.cursor:
                    live.params = merge(live.params, params)
                    Job.objects.filter(pk=live.pk).update(params=live.params)
                    return JobRequest(live, created=False, follow_up=False)
                then = live.params.get("then")
                live.params["then"] = {
                    "params": merge(then["params"], params) if then else params,
                    "by": created_by.pk if created_by is not None else None,
                }
                Job.objects.filter(pk=live.pk).update(params=live.params)
                return JobRequest(live, created=False, follow_up=True)
        except IntegrityError:  # a concurrent request created the lane's job first: join it
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _lane_ended(job: Job) -> None:
    """In the transaction that ends a lane's job: free the lane and start the run asked for
    meanwhile, if any."""
    if not job.key.startswith(LANE_PREFIX):
        return
    Job.objects.filter(pk=job.pk).update(key="")
    then = job.params.get("then")
    if then:
        from accounts.models import User

        by = User.objects.filter(pk=then.get("by")).first() if then.get("by") else None
        job_create(kind=job.kind, params=then["params"], created_by=by, key=job.key)


def job_enqueue(job_id: int) -> bool:
    """Send the job's task; a broker that refuses it is not an error: the beat resumes it."""
    try:
        import_string(RUN_TASK).delay(job_id)
    except Exception:  # broker down: `enqueued_at` stays empty and jobs_resume sends it later
        logger.warning("job %s: kick-off not sent (broker unavailable); the resume beat will send it", job_id)
        return False
    Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(enqueued_at=timezone.now())
    return True


def _claim(job_id: int) -> JobContext | None:
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED):
            return None
        if job.status == JobStatus.RUNNING and job.heartbeat_at and job.heartbeat_at > now - stale_after():
            return None  # its holder is alive: a duplicate delivery does nothing
        if job.attempts >= MAX_ATTEMPTS:
            _mark_failed(job, job.error or f"Gave up after {job.attempts} attempts (worker lost).")
            return None
        token = uuid.uuid4().hex
        Job.objects.filter(pk=job_id).update(
            status=JobStatus.RUNNING, holder=token, attempts=F("attempts") + 1, heartbeat_at=now, retry_at=None
        )
        if job.status == JobStatus.RUNNING:
            logger.warning("job %s (%s): heartbeat stale since %s, taken over", job_id, job.kind, job.heartbeat_at)
    return JobContext(job.pk, token, job.kind, dict(job.params), dict(job.cursor), dict(job.counts))


def _mark_failed(job: Job, message: str) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, holder="", error=message[:4000], finished_at=timezone.now()
    )
    job.refresh_from_db()
    hook = KINDS[job.kind].failed if job.kind in KINDS else ""
    if hook:
        import_string(hook)(job)
    _lane_ended(job)


def job_run(job_id: int, *, on_chunk: Callable[[dict, dict], None] | None = None) -> Job | None:
    """Run (or continue) one job in this process, from its cursor. Returns the job as left,
    or None when there was nothing to do (finished, or held by a live worker)."""
    ctx = _claim(job_id)
    if ctx is None:
        return None
    ctx.on_chunk = on_chunk
    spec = KINDS[ctx.kind]
    try:
        import_string(spec.run)(ctx)
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job_id)
            if job.holder != ctx.token:
                raise JobLost(job_id)
            Job.objects.filter(pk=job_id).update(
                status=JobStatus.DONE, holder="", error="", finished_at=timezone.now(), heartbeat_at=timezone.now()
            )
            job.refresh_from_db()
            if spec.done:
                import_string(spec.done)(job)
            _lane_ended(job)
    except JobLost:
        logger.warning("job %s: taken over by another worker; this run stops", job_id)
        return None
    except Exception as exc:
        logger.exception("job %s (%s) failed", job_id, ctx.kind)
        _attempt_failed(ctx, exc)
    return Job.objects.get(pk=job_id)


def _attempt_failed(ctx: JobContext, exc: Exception) -> None:
    """Bad input fails for good at once; anything else is retried (by the beat, with backoff)
    until MAX_ATTEMPTS, then fails with its message."""
    message = "; ".join(m for ms in exc.errors.values() for m in ms) if isinstance(exc, ServiceError) else str(exc)
    message = message or exc.__class__.__name__
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=ctx.job_id)
        if job.holder != ctx.token:
            return
        if isinstance(exc, ServiceError) or job.attempts >= MAX_ATTEMPTS:
            _mark_failed(job, message)
            return
        backoff = dt.timedelta(seconds=min(300, 10 * 2 ** (job.attempts - 1)))
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.QUEUED,
            holder="",
            error=message[:4000],
            heartbeat_at=None,
            enqueued_at=None,
            retry_at=timezone.now() + backoff,
        )


def jobs_resume(*, now: dt.datetime | None = None) -> list[int]:
    """Beat: send again the jobs nobody works on: queued ones never sent (broker down at
    kick-off) or due for a retry, ones whose message seems lost, and running ones whose
    heartbeat is stale (holder killed). Returns the ids the broker took."""
    now = now or timezone.now()
    lost = now - REQUEUE_AFTER
    due = Job.objects.filter(
        Q(status=JobStatus.QUEUED, enqueued_at__isnull=True) & (Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        | Q(status=JobStatus.QUEUED, enqueued_at__lt=lost)
        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=now - stale_after())
        & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=F("heartbeat_at")) | Q(enqueued_at__lt=lost))
    )
    ids = list(due.order_by("pk").values_list("pk", flat=True)[:100])
    return [job_id for job_id in ids if job_enqueue(job_id)]

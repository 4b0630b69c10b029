"""Kernel background work: resumable jobs and the outbox relay, with the beats that drive them."""

from celery import shared_task

from leadcrm import jobs, outbox


@shared_task(acks_late=True, reject_on_worker_lost=True)
def job_run(job_id: int) -> str:
    """Run or continue one job from its cursor; a duplicate while its holder lives does nothing.
    No autoretry: the runner records failures and the resume beat retries them."""
    job = jobs.job_run(job_id)
    return job.status if job is not None else "skipped"


@shared_task(acks_late=True, reject_on_worker_lost=True)
def jobs_resume() -> int:
    """Beat (every 15 s): re-enqueue jobs never sent, due for a retry or with a stale heartbeat."""
    return len(jobs.jobs_resume())


@shared_task(ignore_result=True)
def outbox_relay() -> int:
    """Beat, every few seconds: send the pending reactions (after a broker outage, all of
    them on the first tick it delivers)."""
    return outbox.relay().sent


@shared_task(ignore_result=True)
def outbox_prune() -> int:
    """Beat, daily: sent rows older than a few days go."""
    return outbox.prune()

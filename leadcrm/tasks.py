"""Kernel background work: run a resumable job, and the beat that resumes the stalled ones."""

from celery import shared_task

from leadcrm import jobs


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

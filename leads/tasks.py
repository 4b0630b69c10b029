"""Background work on leads: take ids, call one service, own the retries."""

from celery import shared_task

from leads import services

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def lead_activity_refresh(lead_ids: list[int], **_: object) -> int:
    return services.lead_activity_refresh(lead_ids=lead_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def import_run(job_id: int) -> None:
    """A message sent before imports ran as jobs: continue that import's job (leadcrm.jobs)."""
    from leads import imports

    imports.import_job_run(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def dashboard_rollup_refresh() -> int:
    """Rebuild the dashboard's aggregate tables (beat: every few minutes)."""
    from leads import rollups

    run = rollups.dashboard_rollup_refresh()
    return run.leads if run else 0

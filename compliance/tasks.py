"""Background work of compliance: the retention purge (beat), which owns its retries."""

from __future__ import annotations

from celery import shared_task

from compliance import services
from leadcrm.actors import Actor

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def retention_purge(**_: object) -> dict:
    """Beat (nightly): erase the leads the retention rule reaches, chunk by chunk; a run cut
    short is continued by the next one (or by this task's retry)."""
    run = services.leads_retention_purge(actor=Actor.automation())
    return {"months": run.months, "erased": run.erased, "chunks": run.chunks, "more": run.more}

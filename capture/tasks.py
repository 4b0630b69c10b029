"""Background work of the capture: take ids, call one service, own the retries."""

from celery import shared_task

from capture import services

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def submissions_process(submission_ids: list[int], **_: object) -> int:
    """Turn accepted submissions into leads (each once, however often this is delivered)."""
    return services.submissions_process(submission_ids=submission_ids)

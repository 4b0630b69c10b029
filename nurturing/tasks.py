"""Background work of nurturing: take ids, call one service, own the retries."""

from celery import shared_task

from nurturing import services

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def segments_refresh(lead_ids: list[int], trigger: str = "", **_: object) -> int:
    """A domain event about these leads: re-check them against the dynamic segments."""
    return services.segments_refresh(lead_ids=lead_ids, cause=trigger)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def segments_windows_refresh() -> int:
    return services.segments_windows_refresh()


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def messages_send(message_ids: list[int], **_: object) -> dict:
    """Send these queued messages (each once, whoever else holds the same ids)."""
    return services.messages_send(message_ids=message_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def messages_retry_due() -> dict:
    """Beat: the queued messages whose retry time has come."""
    return services.messages_send(message_ids=services.messages_due())

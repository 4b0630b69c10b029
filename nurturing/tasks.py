"""Background work of nurturing: take ids, call one service, own the retries."""

import datetime as dt

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


# --- sequences -------------------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def sequences_tick(fanout: int = 2, **_: object) -> int:
    """Beat: run the due enrollments (claimed in batches with SKIP LOCKED); a backlog is
    shared with `fanout - 1` more ticks on other workers."""
    return services.sequences_tick(fanout=fanout)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def enrollments_run(enrollment_ids: list[int], **_: object) -> int:
    """New enrollments start at once (not at the next beat); only due ones run."""
    return services.enrollments_run(enrollment_ids=enrollment_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def enrollments_exit(lead_ids: list[int], reason: str, to_stage: str = "", **_: object) -> int:
    """A reply, an opt-out, a bounce or a stage change: end the enrollments that exit on it."""
    return services.enrollments_exit(lead_ids=lead_ids, reason=reason, to_stage=to_stage)


# --- workflows -------------------------------------------------------------------------------


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def workflows_trigger(lead_ids: list[int], event: str, **payload: object) -> dict:
    """A domain event about these leads: run the active workflows it triggers (each
    occurrence once, whoever else holds the same event)."""
    return services.workflows_run(event=event, lead_ids=lead_ids, payload=payload)


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def workflows_timed() -> dict:
    """Beat: the workflows triggered by time (inactive for N days, a date property)."""
    return services.workflows_timed_run()


@shared_task(acks_late=True, reject_on_worker_lost=True, **RETRY)
def consent_confirmation_request(lead_ids: list[int], source: str = "", requested: str = "", **_: object) -> dict:
    """A capture asked for a double opt-in: the confirmation e-mail, at once (keyed by the
    time it was asked, so a re-delivered task sends nothing more)."""
    now = dt.datetime.fromisoformat(requested) if requested else None
    return services.consent_confirmation_request(lead_ids=lead_ids, source=source, now=now)

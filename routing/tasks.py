"""Background routing: reactions to lead events and the beat jobs (SLA, partner deadlines).

Tasks take ids, call one service and own the retries. What is due (SLA clocks, offer
deadlines) lives in the database and is found by the beat jobs: no countdowns to lose.
"""

from celery import shared_task

from leadcrm.actors import Actor
from leads.models import Lead, Stage
from routing import services
from routing.models import RoutingSettings

RETRY = {"autoretry_for": (Exception,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 8}
TASK = {"acks_late": True, "reject_on_worker_lost": True, **RETRY}


def _unowned(lead_ids: list[int]) -> list[int]:
    return list(Lead.objects.filter(pk__in=lead_ids, owner__isnull=True).values_list("pk", flat=True))


@shared_task(**TASK)
def leads_route_on_stage(lead_ids: list[int], to_stage: str = "", **_: object) -> dict:
    """lead.stage_changed: a lead reaching MQL without an owner is routed (when configured)."""
    if to_stage != Stage.MQL or not RoutingSettings.current().route_on_mql:
        return {}
    return services.leads_route_batch(lead_ids=_unowned(lead_ids), actor=Actor.automation())


@shared_task(**TASK)
def leads_route_on_capture(lead_ids: list[int], **_: object) -> dict:
    """lead.scored after lead.created: route at capture (when the routing settings say so)
    once the lead has its first score, so grade and score rules judge the real one.
    Owned leads are skipped under their row lock: a second delivery routes nobody twice."""
    if not RoutingSettings.current().route_on_capture:
        return {}
    return services.leads_route_batch(lead_ids=_unowned(lead_ids), actor=Actor.automation())


@shared_task(**TASK)
def sla_first_touch(lead_ids: list[int], **_: object) -> int:
    """lead.activity_recorded / lead.stage_changed: the owner's first touch stops the clock."""
    return services.sla_first_touch_record(lead_ids=lead_ids)


@shared_task(**TASK)
def sla_clocks_sync(lead_ids: list[int], **_: object) -> int:
    """lead.assigned: a new owner starts a new first-touch clock."""
    return services.sla_clocks_sync(lead_ids=lead_ids)


@shared_task(**TASK)
def lead_route(lead_id: int) -> str:
    return services.lead_route(lead_id=lead_id, actor=Actor.automation()).outcome


@shared_task(**TASK)
def sla_check() -> dict:
    """Beat: breaches alert the manager; past the second delay the lead is reassigned."""
    return services.sla_check()


@shared_task(**TASK)
def partner_offers_expire() -> int:
    """Beat: offers past their deadline are recalled and routed again."""
    return services.partner_offers_expire()

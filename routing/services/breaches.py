"""SLA breaches, the beat job: clocks past due without a first touch alert the team's
manager once; past the policy's second delay the lead is routed to someone else."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from accounts import services as accounts_services
from leadcrm.actors import Actor
from leads.models import CLOSED_STAGES
from routing.models import SlaClock
from routing.services.assignment import lead_route
from routing.services.context import Context
from routing.services.sla import sla_first_touch_record


def sla_check(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat job: clocks past due without a first touch become breaches (the team's
    manager is alerted once); breaches past their second delay are routed to someone else."""
    now = now or timezone.now()
    candidates = list(
        SlaClock.objects.filter(closed_at__isnull=True, due_at__lte=now).values_list("lead_id", flat=True)[:5000]
    )
    if candidates:
        sla_first_touch_record(lead_ids=candidates)
    breached = reassigned = closed = 0
    with transaction.atomic():
        due = list(
            SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead", "owner", "team__manager")
            .filter(closed_at__isnull=True, breached_at__isnull=True, due_at__lte=now)[:5000]
        )
        alerts = []
        for clock in due:
            if clock.lead.owner_id != clock.owner_id or clock.lead.stage in CLOSED_STAGES:
                SlaClock.objects.filter(pk=clock.pk).update(closed_at=now)
                closed += 1
                continue
            SlaClock.objects.filter(pk=clock.pk).update(breached_at=now)
            breached += 1
            if clock.team is not None and clock.team.manager is not None:
                alerts.append(
                    (
                        clock.team.manager,
                        "sla_breach",
                        f"SLA breach: {clock.owner.username} has not touched {clock.lead.email} "
                        f"(due {clock.due_at:%Y-%m-%d %H:%M} UTC).",
                        clock.lead_id,
                    )
                )
        if alerts:
            accounts_services.notify_many(items=alerts)
    overdue = list(
        SlaClock.objects.filter(
            closed_at__isnull=True, breached_at__isnull=False, reassign_at__isnull=False, reassign_at__lte=now
        ).values_list("pk", flat=True)[:1000]
    )
    ctx = Context.load() if overdue else None
    for pk in overdue:
        with transaction.atomic():
            clock = (
                SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("lead", "owner")
                .filter(pk=pk, closed_at__isnull=True)
                .first()
            )
            if clock is None:
                continue
            SlaClock.objects.filter(pk=clock.pk).update(reassigned_at=now, closed_at=now)
            if clock.lead.owner_id == clock.owner_id and clock.lead.stage not in CLOSED_STAGES:
                lead_route(
                    lead_id=clock.lead_id,
                    actor=Actor.automation(),
                    reason=f"SLA: no first touch by {clock.owner.username}; reassigned",
                    exclude_user_ids=[clock.owner_id],
                    context=ctx,
                )
                reassigned += 1
    return {"breached": breached, "reassigned": reassigned, "closed": closed}

"""Activity on leads: tracked events, anonymous visitors, logged calls and notes, and the
activity rollup (last activity, count) they feed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from leadcrm import events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import selectors
from leads.models import (
    Lead,
    Touchpoint,
    TouchpointType,
    Visitor,
)
from leads.services.capture import UTM_FIELDS, lead_capture


def events_record(*, items: list[dict], actor: Actor) -> list[Touchpoint]:
    """Record validated events. An event names its lead by `lead_id` or `email` (a new
    e-mail captures a new lead) or is anonymous with a `visitor_id`; an event carrying both
    a visitor and a lead identifies the visitor, whose past events then join the lead."""
    with transaction.atomic():
        wanted = {i["lead_id"] for i in items if i.get("lead_id")}
        leads_by_id = Lead.objects.in_bulk(selectors.lead_ids_visible_to(actor.user, wanted))
        if wanted - leads_by_id.keys():
            # An id the caller cannot see answers as one that does not exist.
            raise ServiceError({"lead_id": [f"Unknown lead: {sorted(wanted - leads_by_id.keys())}"]})
        emails = {i["email"].strip().lower() for i in items if i.get("email") and not i.get("lead_id")}
        leads_by_email = {x.email: x for x in Lead.objects.filter(email__in=emails)}
        for email in emails - leads_by_email.keys():
            first = next(i for i in items if (i.get("email") or "").strip().lower() == email)
            source = first.get("utm_source") or "events"
            lead, _ = lead_capture(
                data={"email": email, "source": source, **{f: first.get(f, "") for f in UTM_FIELDS}}, actor=actor
            )
            leads_by_email[email] = lead
        keys = {i["visitor_id"] for i in items if i.get("visitor_id")}
        visitors = {v.key: v for v in Visitor.objects.filter(key__in=keys)}
        for key in keys - visitors.keys():
            visitors[key], _ = Visitor.objects.get_or_create(key=key)

        touchpoints, identified = [], {}
        for item in items:
            lead = leads_by_id.get(item.get("lead_id")) or leads_by_email.get((item.get("email") or "").strip().lower())
            lead_id = lead.pk if lead is not None else None
            visitor = visitors.get(item.get("visitor_id"))
            if visitor is not None:
                if lead is not None and visitor.lead_id != lead.pk:
                    identified[visitor.key] = (visitor, lead)
                elif lead is None:
                    lead_id = visitor.lead_id  # already identified: its events go to its lead
            touchpoints.append(
                Touchpoint(
                    lead_id=lead_id,
                    visitor=visitor,
                    type=item["type"],
                    url=item.get("url") or "",
                    occurred_at=item.get("occurred_at") or timezone.now(),
                    properties=item.get("properties") or {},
                    author=None,
                    **{f: item.get(f) or "" for f in UTM_FIELDS},
                )
            )
        Touchpoint.objects.bulk_create(touchpoints, batch_size=5000)
        for visitor, lead in identified.values():
            visitor_identify(visitor=visitor, lead=lead)
        lead_ids = sorted({t.lead_id for t in touchpoints if t.lead_id})
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=lead_ids)
        replies = [t for t in touchpoints if t.lead_id and t.type == TouchpointType.EMAIL_REPLY]
        if replies:  # the one place a reply is announced, whoever recorded it
            events.emit(
                events.EMAIL_REPLIED,
                lead_ids=sorted({t.lead_id for t in replies}),
                message_ids=sorted({m for t in replies if isinstance(m := t.properties.get("message"), int)}),
            )
    return touchpoints


def visitor_identify(*, visitor: Visitor, lead: Lead) -> int:
    """Attach an anonymous visitor, and every event it had, to the lead it turned out to be.
    Returns how many past events joined the lead."""
    with transaction.atomic():
        moved = Touchpoint.objects.filter(visitor=visitor, lead__isnull=True).update(lead=lead)
        visitor.lead, visitor.identified_at = lead, timezone.now()
        visitor.save(update_fields=["lead", "identified_at"])
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead.pk])
    return moved


def lead_activity_refresh(*, lead_ids: Iterable[int]) -> int:
    """Recompute last activity and activity count from the touchpoints: idempotent, one
    statement for any number of leads."""
    ids = list(lead_ids)
    tps = Touchpoint.objects.filter(lead=OuterRef("pk")).order_by().values("lead")
    return Lead.objects.filter(pk__in=ids).update(
        last_activity_at=Subquery(tps.annotate(m=Max("occurred_at")).values("m")[:1]),
        activity_count=Coalesce(Subquery(tps.annotate(c=Count("id")).values("c")[:1]), 0),
    )


def lead_log_activity(*, lead_id: int, type: str, actor: Actor, note: str = "", occurred_at=None) -> Touchpoint:
    """A seller logs a call, meeting, e-mail or note on the lead's timeline."""
    if type not in (TouchpointType.CALL, TouchpointType.MEETING, TouchpointType.EMAIL_SENT, TouchpointType.NOTE):
        raise ServiceError({"type": [f"Cannot log an activity of type {type!r}."]})
    with transaction.atomic():
        touchpoint = Touchpoint.objects.create(
            lead_id=lead_id,
            type=type,
            occurred_at=occurred_at or timezone.now(),
            author=actor.user,
            properties={"note": note} if note else {},
        )
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead_id])
    return touchpoint

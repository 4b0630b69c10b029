"""SLA clocks: every first-touch clock is opened by `sla_clocks_open` (a routing, a bulk
reassignment, an assignment made elsewhere through the `lead.assigned` reaction); the
owner's first touch stops it. Breaches and the reassignment after them are `breaches`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.models import Team
from leadcrm.bulk import bulk_insert
from leads.models import CLOSED_STAGES, SALES_TOUCH_TYPES, Lead, StageChange, Touchpoint
from routing import engine
from routing.models import OfferStatus, PartnerOffer, SlaClock
from routing.services.context import Context


class ClockStart(NamedTuple):
    """A lead given to an owner: what picks its SLA policy and time zone."""

    lead_id: int
    owner_id: int
    team_id: int | None
    grade: str
    stage: str


def _team_zones(team_ids: Iterable[int | None]) -> dict[int, str]:
    return dict(Team.objects.filter(pk__in=set(team_ids) - {None}).values_list("pk", "timezone"))


def _due(policies: list[engine.SlaRule], grade: str, stage: str, tz: str, now: dt.datetime) -> tuple:
    policy = engine.choose_policy(policies, grade=grade, stage=stage)
    if policy is None:
        return None, None, None
    hours = engine.BusinessHours(tz, policy.hours.day_start, policy.hours.day_end, policy.hours.weekdays)
    due = engine.add_business_minutes(now, policy.minutes, hours)
    reassign = engine.add_business_minutes(due, policy.reassign_minutes, hours) if policy.reassign_minutes else None
    return policy, due, reassign


def sla_clocks_close(*, lead_ids: Iterable[int], now: dt.datetime) -> None:
    """Close the leads' open clocks (a new owner, a pool or a partner takes over)."""
    ids = list(lead_ids)
    if ids:
        SlaClock.objects.filter(lead_id__in=ids, closed_at__isnull=True).update(closed_at=now)


def sla_clocks_open(*, starts: list[ClockStart], policies: list[engine.SlaRule], now: dt.datetime) -> int:
    """Start a first-touch clock for each lead given to an owner, under the most specific
    SLA policy, in the owner's team's time zone (the site's when it has none). The caller
    has closed the leads' previous clocks. Returns how many were opened."""
    if not policies or not starts:
        return 0
    zones = _team_zones(s.team_id for s in starts)
    fallback = django_settings.TIME_ZONE
    clocks = []
    dues: dict[tuple, tuple] = {}  # one computation per (grade, stage, time zone) in a batch
    for s in starts:
        key = (s.grade, s.stage, zones.get(s.team_id, fallback))
        if key not in dues:
            dues[key] = _due(policies, s.grade, s.stage, key[2], now)
        policy, due, reassign = dues[key]
        if policy is None:
            continue
        clocks.append(
            {
                "lead_id": s.lead_id,
                "owner_id": s.owner_id,
                "team_id": s.team_id,
                "policy_id": policy.id,
                "started_at": now,
                "due_at": due,
                "reassign_at": reassign,
                "first_touch_at": None,
                "breached_at": None,
                "reassigned_at": None,
                "closed_at": None,
            }
        )
    bulk_insert(clocks, model=SlaClock)
    return len(clocks)


class _ClockSeen(NamedTuple):
    pk: int
    lead_id: int
    owner_id: int
    started_at: dt.datetime
    closed_at: dt.datetime | None


def sla_clocks_sync(*, lead_ids: Iterable[int]) -> int:
    """After any assignment (the admin's, the API's, an import): close clocks of owners who
    no longer hold the lead and start one for a new owner whose clock is not the lead's
    latest. Idempotent; a few set-based queries for any number of leads."""
    ids = list(lead_ids)
    now = timezone.now()
    with transaction.atomic():
        leads = {
            x["pk"]: x
            for x in Lead.objects.filter(pk__in=ids).values("pk", "owner_id", "owner__team_id", "grade", "stage")
        }
        latest: dict[int, _ClockSeen] = {}
        stale: list[int] = []
        for clock in map(
            _ClockSeen._make,
            SlaClock.objects.filter(lead_id__in=ids).values_list(*_ClockSeen._fields),
        ):
            seen = latest.get(clock.lead_id)
            if seen is None or (clock.started_at, clock.pk) > (seen.started_at, seen.pk):
                latest[clock.lead_id] = clock
            if clock.closed_at is None and leads.get(clock.lead_id, {}).get("owner_id") != clock.owner_id:
                stale.append(clock.pk)
        if stale:
            SlaClock.objects.filter(pk__in=stale).update(closed_at=now)
        offered = set(
            PartnerOffer.objects.filter(lead_id__in=ids, status=OfferStatus.PENDING).values_list("lead_id", flat=True)
        )
        todo = [
            ClockStart(x["pk"], x["owner_id"], x["owner__team_id"], x["grade"], x["stage"])
            for x in leads.values()
            if x["owner_id"]
            and x["pk"] not in offered
            and x["stage"] not in CLOSED_STAGES
            and (x["pk"] not in latest or latest[x["pk"]].owner_id != x["owner_id"])
        ]
        if not todo:
            return 0
        sla_clocks_close(lead_ids=[s.lead_id for s in todo], now=now)
        return sla_clocks_open(starts=todo, policies=Context.load().policies, now=now)


def sla_first_touch_record(*, lead_ids: Iterable[int]) -> int:
    """Record the owner's first touch (a logged call / e-mail / meeting, or a stage move
    by the owner) on the leads' open clocks; a touched clock is closed."""
    touch = (
        Touchpoint.objects.filter(
            lead_id=OuterRef("lead_id"),
            author_id=OuterRef("owner_id"),
            type__in=SALES_TOUCH_TYPES,
            occurred_at__gte=OuterRef("started_at"),
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    move = (
        StageChange.objects.filter(
            lead_id=OuterRef("lead_id"), actor_id=OuterRef("owner_id"), created_at__gte=OuterRef("started_at")
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    n = 0
    with transaction.atomic():
        clocks = (
            SlaClock.objects.select_for_update(skip_locked=True)
            .filter(lead_id__in=list(lead_ids), first_touch_at__isnull=True, closed_at__isnull=True)
            .annotate(touch=Subquery(touch), move=Subquery(move))
        )
        for clock in clocks:
            when = min((t for t in (clock.touch, clock.move) if t is not None), default=None)
            if when is not None:
                SlaClock.objects.filter(pk=clock.pk).update(first_touch_at=when, closed_at=when)
                n += 1
    return n

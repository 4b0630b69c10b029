"""One routing decision: the same leads routed one by one (`lead_route`) and as a batch
(`leads_route_batch`) end the same in every detail: owners and teams, Assignment rows and
their "why", the audit, partner offers, SLA clocks, round-robin counters and the
`lead.assigned` reactions. Notifications are the one difference by design: a batch tells
each seller once ("3 new leads for you"), where one by one tells them per lead."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from leadcrm.actors import Actor
from leadcrm.events import LEAD_ASSIGNED
from leadcrm.models import AuditEntry, OutboxMessage
from leads.models import Assignment, Lead
from routing import services
from routing.models import (
    Partner,
    PartnerOffer,
    RoundRobinState,
    RoutingRule,
    RoutingSettings,
    SlaClock,
    SlaPolicy,
    Territory,
)
from tests.factories import CompanyFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
BOT = Actor.automation()


class _Undo(Exception):
    pass


def _state(lead_ids: list[int]) -> dict:
    """Everything a routing writes about these leads, without row ids."""
    leads = Lead.objects.filter(pk__in=lead_ids)
    return {
        "leads": sorted(leads.values_list("pk", "owner_id", "team_id")),
        "assignments": sorted(
            (
                a.lead_id,
                a.from_owner_id,
                a.to_owner_id,
                a.team_id,
                a.actor_type,
                a.reason,
                json.dumps(a.details, sort_keys=True),
            )
            for a in Assignment.objects.filter(lead_id__in=lead_ids)
        ),
        "audit": sorted(
            (
                e.target_id,
                e.target_repr,
                e.actor_kind,
                json.dumps(e.changes, sort_keys=True),
                json.dumps(e.details, sort_keys=True),
            )
            for e in AuditEntry.objects.filter(action="lead.assign", target_id__in=[str(i) for i in lead_ids])
        ),
        "offers": sorted(
            PartnerOffer.objects.filter(lead_id__in=lead_ids).values_list(
                "lead_id", "partner_id", "rule_id", "status", "offered_at", "deadline"
            )
        ),
        "clocks": sorted(
            SlaClock.objects.filter(lead_id__in=lead_ids).values_list(
                "lead_id", "owner_id", "team_id", "policy_id", "started_at", "due_at", "reassign_at", "closed_at"
            )
        ),
        "served": sorted(RoundRobinState.objects.values_list("team_id", "user_id", "served")),
        "announced": sorted(
            (m.task, lead_id)
            for m in OutboxMessage.objects.filter(event=LEAD_ASSIGNED)
            for lead_id in m.payload["lead_ids"]
        ),
    }


@pytest.fixture
def world(org, mql, clock):
    """Every way a lead can go: account owner, named seller (then full: their team), team
    round-robin with language hints, a partner by territory, a full team's pool, the
    default team, and nowhere (a lead that only a skipped rule would take)."""
    clock.set(2026, 11, 23, 10)
    SlaPolicy.objects.create(name="A", grade="A", minutes_to_first_touch=60, reassign_after_minutes=60)
    SlaPolicy.objects.create(name="Others", minutes_to_first_touch=240)
    benelux = Territory.objects.create(name="Benelux", countries=["BE", "NL"])
    partner = Partner.objects.create(name="BeneSales", user=UserFactory(role="sdr"), response_hours=24)
    partner.territories.add(benelux)
    tiny = TeamFactory(name="Tiny")
    UserFactory(role="sdr", team=tiny, capacity=1)
    RoutingRule.objects.create(
        name="Benelux", position=1, conditions={"region": ["Benelux"]}, partners_by_territory=True
    )
    RoutingRule.objects.create(name="Key", position=2, conditions={"industry": ["finance"]}, user=org.s1)
    RoutingRule.objects.create(name="DE", position=3, conditions={"country": ["DE"]}, team=org.de)
    RoutingRule.objects.create(name="Tiny", position=4, conditions={"country": ["IT"]}, team=tiny)
    RoutingRule.objects.create(name="Nobody", position=5, conditions={"country": ["US"]}, partner=partner)
    RoutingRule.objects.create(name="FR", position=6, conditions={"country": ["FR"]}, team=org.fr)
    RoutingSettings.objects.create(pk=1, default_team=org.fr)
    org.s1.capacity = 2
    org.s1.save()
    org.s2.languages = ["de"]
    org.s2.save()
    company = CompanyFactory(owner=org.de_sdr, name="Acme")
    leads = [
        mql(country="FR", company=company),
        *(mql(country="FR", industry="finance", grade=g) for g in "ABC"),
        *(mql(country="FR", grade=g, properties={"language": "de"} if i % 2 else {}) for i, g in enumerate("ABCAB")),
        mql(country="BE"),
        mql(country="NL", company_size=10),
        mql(country="DE"),
        mql(country="DE"),
        *(mql(country="IT") for _ in range(3)),
        mql(country="ES"),
        mql(country="US", stage="MQL"),
    ]
    return [x.pk for x in leads]


def test_one_by_one_and_batch_write_the_same(world, org):
    with pytest.raises(_Undo), transaction.atomic():
        one_by_one = [services.lead_route(lead_id=pk, actor=BOT).outcome for pk in world]
        first = _state(world)
        raise _Undo
    assert _state(world)["assignments"] == []  # undone
    counts = services.leads_route_batch(lead_ids=world, actor=BOT)
    second = _state(world)
    assert counts == {k: one_by_one.count(k) for k in ("assigned", "pool", "partner", "unmatched")}
    assert set(one_by_one) == {"assigned", "pool", "partner"}  # every branch is exercised
    for part in first:
        assert first[part] == second[part], part
    whys = [json.loads(a[-1]) for a in second["assignments"]]
    assert {w["method"] for w in whys} == {"account", "named", "round_robin", "pool", "partner"}
    assert {"company": "Acme"} in [w["matched"] for w in whys if w["method"] == "account"]
    assert any(w.get("named_unavailable") == org.s1.username for w in whys)
    assert any(w.get("default_team") for w in whys)

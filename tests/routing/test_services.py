"""Routing services against the database: rules, account owners, round-robin with capacity,
pools, partners, SLA clocks and reassignment, batch routing, history."""

from __future__ import annotations

import pytest
from django.core import mail

from accounts.models import Notification, Role
from leadcrm.actors import Actor, ActorType
from leads import services as lead_services
from leads.models import Assignment, Lead, Stage
from leads.selectors import lead_history
from routing import services
from routing.models import (
    OfferStatus,
    Partner,
    PartnerOffer,
    RoutingRule,
    RoutingSettings,
    SlaClock,
    SlaPolicy,
    Territory,
)
from tests.factories import CompanyFactory, LeadFactory, UserFactory

pytestmark = pytest.mark.django_db
BOT = Actor.automation()


def route(lead):
    return services.lead_route(lead_id=lead.pk, actor=BOT)


def test_round_robin_in_the_rule_team_records_why_and_notifies(org, mql, django_capture_on_commit_callbacks):
    RoutingRule.objects.create(name="France", position=10, conditions={"country": ["FR"]}, team=org.fr)
    lead = mql(country="FR")
    with django_capture_on_commit_callbacks(execute=True):
        result = route(lead)
    lead.refresh_from_db()
    assert result.outcome == "assigned" and lead.owner == org.s3 and lead.team == org.fr  # heaviest weight first
    a = Assignment.objects.get(lead=lead)
    assert a.reason == "Rule: France" and a.actor_type == ActorType.AUTOMATION
    assert a.details["rule"]["name"] == "France"
    assert a.details["matched"] == {"country": "FR"}
    assert a.details["method"] == "round_robin"
    assert a.details["loads"] == {org.s1.username: "0/10", org.s2.username: "0/10", org.s3.username: "0/10"}
    assert Notification.objects.filter(user=org.s3, kind="lead_assigned", lead_id=lead.pk).exists()
    assert [m.to for m in mail.outbox] == [[org.s3.email]]


def test_history_shows_the_why(org, mql):
    RoutingRule.objects.create(name="France", position=10, conditions={"country": ["FR"]}, team=org.fr)
    lead = mql(country="FR")
    route(lead)
    items = [i for i in lead_history(lead=lead) if i["kind"] == "assignment"]
    assert items[0]["details"]["rule"]["name"] == "France" and "loads" in items[0]["details"]


def test_rule_order_first_match_wins(org, mql):
    RoutingRule.objects.create(name="Catch-all", position=100, conditions={}, team=org.de)
    RoutingRule.objects.create(name="Big FR", position=20, conditions={"country": ["FR"]}, team=org.fr)
    RoutingRule.objects.create(name="Named", position=10, conditions={"company_size_min": 1000}, user=org.de_sdr)
    assert route(mql(country="FR", company_size=5000)).owner_id == org.de_sdr.pk
    assert route(mql(country="FR", company_size=10)).team_id == org.fr.pk
    assert route(mql(country="US", company_size=10)).owner_id == org.de_sdr.pk  # the default rule
    RoutingRule.objects.filter(name="Named").update(position=30)
    assert route(mql(country="FR", company_size=5000)).team_id == org.fr.pk


@pytest.mark.parametrize(
    "conditions, fields",
    [
        ({"country": ["DE"]}, {"country": "DE"}),
        ({"region": ["DACH"]}, {"country": "AT"}),
        ({"industry": ["Retail"]}, {"industry": "retail"}),
        ({"source": ["trade-fair"]}, {"source": "trade-fair"}),
        ({"grade": ["B"]}, {"grade": "B"}),
        ({"stage": ["SQL"]}, {"stage": "SQL"}),
        ({"company_size_min": 500, "company_size_max": 999}, {"company_size": 700}),
        ({"score_min": 90}, {"score": 95}),
        ({"properties": {"product_interest": ["erp"]}}, {"properties": {"product_interest": "ERP"}}),
    ],
)
def test_each_condition_type_routes(org, mql, conditions, fields):
    Territory.objects.create(name="DACH", countries=["DE", "AT", "CH"])
    RoutingRule.objects.create(name="Specific", position=1, conditions=conditions, team=org.de)
    RoutingRule.objects.create(name="Default", position=99, conditions={}, team=org.fr)
    assert route(mql(**fields)).team_id == org.de.pk
    assert route(mql()).team_id == org.fr.pk  # a plain FR software lead of grade A, score 70


def test_company_owner_gets_the_lead_unless_away(org, mql):
    RoutingRule.objects.create(name="Default", position=99, conditions={}, team=org.fr)
    company = CompanyFactory(owner=org.de_sdr)
    result = route(mql(company=company))
    assert result.owner_id == org.de_sdr.pk and result.details["method"] == "account"
    org.de_sdr.routing_active = False
    org.de_sdr.save()
    result = route(mql(company=company))
    assert result.team_id == org.fr.pk and result.owner_id != org.de_sdr.pk


def test_named_seller_away_falls_back_to_their_team(org, mql):
    RoutingRule.objects.create(name="Key accounts", position=1, conditions={}, user=org.s1)
    org.s1.routing_active = False
    org.s1.save()
    result = route(mql())
    assert result.owner_id in (org.s2.pk, org.s3.pk)
    assert result.details["named_unavailable"] == org.s1.username


def test_away_sellers_are_skipped_and_a_full_team_fills_the_pool(org, mql, django_capture_on_commit_callbacks):
    RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)
    org.s3.routing_active = False
    org.s3.save()
    for u, cap in ((org.s1, 1), (org.s2, 1)):
        u.capacity = cap
        u.save()
    owners = [route(mql()).owner_id for _ in range(2)]
    assert sorted(owners) == sorted([org.s1.pk, org.s2.pk])
    with django_capture_on_commit_callbacks(execute=True):
        result = route(lead := mql())
    lead.refresh_from_db()
    assert result.outcome == "pool" and lead.owner is None and lead.team == org.fr
    note = Notification.objects.get(user=org.manager, kind="pool_waiting")
    assert lead.email in note.text
    assert Assignment.objects.get(lead=lead).details["method"] == "pool"


def test_default_team_then_unmatched(org, mql):
    lead = mql()
    assert route(lead).outcome == "unmatched"
    RoutingSettings.objects.create(pk=1, default_team=org.de)
    assert route(lead).owner_id == org.de_sdr.pk


def test_closed_leads_are_not_routed(org, mql):
    RoutingRule.objects.create(name="All", position=1, conditions={}, team=org.fr)
    assert route(mql(stage=Stage.WO)).outcome == "skipped"


def test_round_robin_counters_make_the_team_fair(org, mql):
    RoutingRule.objects.create(name="All", position=1, conditions={}, team=org.fr)
    for u in (org.s1, org.s2, org.s3):
        u.capacity = 100
        u.save()
    owners = [route(mql()).owner_id for _ in range(12)]
    assert [owners.count(u.pk) for u in (org.s1, org.s2, org.s3)] == [2, 4, 6]


def test_language_and_product_line_prefer_specialists(org, mql):
    RoutingRule.objects.create(name="All", position=1, conditions={}, team=org.fr)
    org.s1.languages, org.s1.skills = ["de"], ["erp"]
    org.s1.save()
    assert route(mql(properties={"language": "DE"})).owner_id == org.s1.pk
    assert route(mql(properties={"product_interest": "erp"})).owner_id == org.s1.pk


# --- partners --------------------------------------------------------------------------------


@pytest.fixture
def partners(org):
    benelux = Territory.objects.create(name="Benelux", countries=["BE", "NL", "LU"])
    iberia = Territory.objects.create(name="Iberia", countries=["ES", "PT"])
    p1 = Partner.objects.create(name="BeneSales", user=UserFactory(role=Role.SDR), response_hours=24)
    p1.territories.add(benelux)
    p2 = Partner.objects.create(name="IberPartners", user=UserFactory(role=Role.SDR))
    p2.territories.add(iberia)
    RoutingRule.objects.create(
        name="Small to partners", position=10, conditions={"company_size_max": 50}, partners_by_territory=True
    )
    RoutingRule.objects.create(name="In-house", position=99, conditions={}, team=org.fr)
    return p1, p2


def test_partner_routing_by_territory(org, mql, partners, clock):
    p1, p2 = partners
    clock.set(2026, 11, 23, 10)
    be = mql(country="BE", company_size=10)
    result = route(be)
    be.refresh_from_db()
    assert result.outcome == "partner" and result.partner_id == p1.pk and be.owner == p1.user
    offer = PartnerOffer.objects.get(lead=be)
    assert offer.status == OfferStatus.PENDING and (offer.deadline - offer.offered_at).total_seconds() == 24 * 3600
    assert route(mql(country="PT", company_size=10)).partner_id == p2.pk
    # no partner covers Italy; big leads stay in-house
    assert route(mql(country="IT", company_size=10)).team_id == org.fr.pk
    assert route(mql(country="BE", company_size=5000)).team_id == org.fr.pk
    assert Notification.objects.filter(user=p1.user, kind="partner_offer").exists()


def test_explicit_partner_rule_outside_its_territory_is_skipped(org, mql, partners):
    p1, _ = partners
    RoutingRule.objects.create(name="Bene first", position=1, conditions={}, partner=p1)
    assert route(mql(country="NL")).partner_id == p1.pk
    assert route(mql(country="FR", company_size=500)).team_id == org.fr.pk


def test_partner_accepts(org, mql, partners):
    p1, _ = partners
    lead = mql(country="BE", company_size=10)
    route(lead)
    offer = services.partner_offer_accept(
        offer_id=PartnerOffer.objects.get(lead=lead).pk, actor=Actor(p1.user, ActorType.USER)
    )
    assert offer.status == OfferStatus.ACCEPTED
    lead.refresh_from_db()
    assert lead.owner == p1.user


def test_partner_declines_and_the_lead_is_routed_again(org, mql, partners):
    p1, _ = partners
    lead = mql(country="BE", company_size=10)
    route(lead)
    offer = PartnerOffer.objects.get(lead=lead)
    services.partner_offer_decline(offer_id=offer.pk, actor=Actor(p1.user, ActorType.USER), reason="Too small")
    lead.refresh_from_db()
    assert lead.team == org.fr and lead.owner.team == org.fr
    offer.refresh_from_db()
    assert offer.status == OfferStatus.DECLINED
    with pytest.raises(Exception, match="already declined"):
        services.partner_offer_accept(offer_id=offer.pk, actor=Actor(p1.user, ActorType.USER))


def test_someone_else_cannot_answer_an_offer(org, mql, partners):
    lead = mql(country="BE", company_size=10)
    route(lead)
    with pytest.raises(Exception, match="Only the partner"):
        services.partner_offer_accept(
            offer_id=PartnerOffer.objects.get(lead=lead).pk, actor=Actor(org.s1, ActorType.USER)
        )


def test_offer_expires_the_lead_is_recalled_and_routed_again(org, mql, partners, clock):
    p1, _ = partners
    clock.set(2026, 11, 23, 10)
    lead = mql(country="BE", company_size=10)
    route(lead)
    clock.set(2026, 11, 24, 9)
    assert services.partner_offers_expire() == 0
    clock.set(2026, 11, 24, 10, 1)
    assert services.partner_offers_expire() == 1
    lead.refresh_from_db()
    assert lead.owner.team == org.fr
    assert PartnerOffer.objects.get(lead=lead).status == OfferStatus.EXPIRED
    reasons = list(Assignment.objects.filter(lead=lead).order_by("id").values_list("reason", flat=True))
    assert reasons[0].startswith("Offered to partner") and "Recalled from partner BeneSales" in reasons[1]


# --- SLA -------------------------------------------------------------------------------------


@pytest.fixture
def sla(org):
    SlaPolicy.objects.create(name="A leads", grade="A", minutes_to_first_touch=60, reassign_after_minutes=60)
    SlaPolicy.objects.create(name="Others", minutes_to_first_touch=240)
    RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)


def test_sla_due_time_counts_business_hours_across_the_weekend(org, mql, sla, clock):
    clock.set(2026, 11, 27, 17, 30)  # Friday evening, Paris
    lead = mql(grade="A")
    route(lead)
    c = SlaClock.objects.get(lead=lead)
    assert c.due_at == clock.set(2026, 11, 30, 9, 30)  # Monday 09:30
    assert c.reassign_at == clock.set(2026, 11, 30, 10, 30)
    clock.set(2026, 11, 28, 12)  # Saturday: nothing due
    assert services.sla_check()["breached"] == 0
    clock.set(2026, 11, 30, 9, 29)
    assert services.sla_check()["breached"] == 0
    clock.set(2026, 11, 30, 9, 31)
    assert services.sla_check() == {"breached": 1, "reassigned": 0, "closed": 0}
    assert Notification.objects.filter(user=org.manager, kind="sla_breach", lead_id=lead.pk).count() == 1
    assert services.sla_check()["breached"] == 0  # alerted once


def test_grade_picks_the_policy(org, mql, sla, clock):
    clock.set(2026, 11, 23, 10)
    route(lead := mql(grade="C"))
    assert SlaClock.objects.get(lead=lead).due_at == clock.set(2026, 11, 23, 14)


def test_reassignment_after_the_second_delay(org, mql, sla, clock):
    clock.set(2026, 11, 23, 10)
    lead = mql(grade="A")
    first = route(lead).owner_id
    clock.set(2026, 11, 23, 11, 5)
    assert services.sla_check()["breached"] == 1
    clock.set(2026, 11, 23, 12, 1)
    assert services.sla_check()["reassigned"] == 1
    lead.refresh_from_db()
    assert lead.owner_id not in (None, first) and lead.team == org.fr
    last = Assignment.objects.filter(lead=lead).order_by("-id").first()
    assert last.from_owner_id == first and "SLA" in last.reason
    clocks = list(SlaClock.objects.filter(lead=lead).order_by("id"))
    assert clocks[0].reassigned_at is not None and clocks[0].closed_at is not None
    assert clocks[1].owner_id == lead.owner_id and clocks[1].closed_at is None
    history = [i for i in lead_history(lead=lead) if i["kind"] == "assignment"]
    assert len(history) == 2


def test_a_logged_call_by_the_owner_is_the_first_touch(org, mql, sla, clock):
    clock.set(2026, 11, 23, 10)
    lead = mql(grade="A")
    owner = route(lead).owner_id
    clock.set(2026, 11, 23, 10, 20)
    lead_services.lead_log_activity(
        lead_id=lead.pk, type="note", actor=Actor(lead.__class__.objects.get(pk=lead.pk).owner, ActorType.USER)
    )
    services.sla_first_touch_record(lead_ids=[lead.pk])
    assert SlaClock.objects.get(lead=lead).first_touch_at is None  # a note is not a touch
    lead_services.lead_log_activity(lead_id=lead.pk, type="call", actor=Actor(org.admin, ActorType.USER))
    services.sla_first_touch_record(lead_ids=[lead.pk])
    assert SlaClock.objects.get(lead=lead).first_touch_at is None  # not by the owner
    from accounts.models import User

    lead_services.lead_log_activity(
        lead_id=lead.pk, type="call", actor=Actor(User.objects.get(pk=owner), ActorType.USER)
    )
    assert services.sla_first_touch_record(lead_ids=[lead.pk]) == 1
    c = SlaClock.objects.get(lead=lead)
    assert c.first_touch_at == clock.now and c.met
    clock.set(2026, 11, 23, 15)
    assert services.sla_check() == {"breached": 0, "reassigned": 0, "closed": 0}


def test_a_stage_move_by_the_owner_is_the_first_touch(org, mql, sla, clock, django_capture_on_commit_callbacks):
    from accounts.models import User

    clock.set(2026, 11, 23, 10)
    lead = mql(grade="A")
    owner = User.objects.get(pk=route(lead).owner_id)
    clock.set(2026, 11, 23, 10, 30)
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_disqualify(lead_id=lead.pk, actor=Actor(owner, ActorType.USER), reason="Student")
    assert SlaClock.objects.get(lead=lead).first_touch_at == clock.now


def test_assignment_elsewhere_starts_a_clock_through_the_reaction(
    org, mql, sla, clock, django_capture_on_commit_callbacks
):
    clock.set(2026, 11, 23, 10)
    lead = mql(grade="A")
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_assign(lead_id=lead.pk, owner=org.s1, actor=Actor(org.manager, ActorType.USER))
    c = SlaClock.objects.get(lead=lead)
    assert c.owner == org.s1 and c.due_at == clock.set(2026, 11, 23, 11)
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_assign(lead_id=lead.pk, owner=org.s2, actor=Actor(org.manager, ActorType.USER))
    assert SlaClock.objects.filter(lead=lead, closed_at__isnull=True).get().owner == org.s2


# --- many leads ------------------------------------------------------------------------------


def test_batch_routing_matches_one_by_one(org, mql, sla, clock):
    RoutingRule.objects.create(name="DE", position=0, conditions={"country": ["DE"]}, team=org.de)
    for u in (org.s1, org.s2, org.s3):
        u.capacity = 4
        u.save()
    org.de_sdr.capacity = 1
    org.de_sdr.save()
    company = CompanyFactory(owner=org.s1)
    leads = [mql() for _ in range(8)] + [mql(country="DE") for _ in range(2)] + [mql(company=company)]
    counts = services.leads_route_batch(lead_ids=[x.pk for x in leads], actor=BOT)
    assert counts == {"assigned": 10, "pool": 1, "partner": 0, "unmatched": 0}
    loads = {u.pk: Lead.objects.filter(owner=u).count() for u in (org.s1, org.s2, org.s3, org.de_sdr)}
    # round-robin 1:2:3 under capacity 4 → 1, 3, 4; s1 also gets the lead of the account it owns
    assert loads == {org.s1.pk: 2, org.s2.pk: 3, org.s3.pk: 4, org.de_sdr.pk: 1}
    assert Assignment.objects.count() == 11
    assert SlaClock.objects.count() == 10
    pooled = Lead.objects.get(owner__isnull=True)
    assert pooled.team == org.de
    assert Notification.objects.filter(user=org.s3, kind="lead_assigned").count() == 1  # one per seller per batch


def test_mql_promotion_routes_through_the_reaction(org, mql, django_capture_on_commit_callbacks):
    RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)
    lead = mql(stage=Stage.MCL, score=90)
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_promote(lead_id=lead.pk, actor=BOT)
    lead.refresh_from_db()
    assert lead.owner is not None and lead.owner.team == org.fr


def test_capture_routing_only_when_configured(org, django_capture_on_commit_callbacks):
    RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)
    with django_capture_on_commit_callbacks(execute=True):
        lead, _ = lead_services.lead_capture(data={"email": "a@acme.example"}, actor=BOT)
    assert Lead.objects.get(pk=lead.pk).owner is None
    RoutingSettings.objects.create(pk=1, route_on_capture=True)
    with django_capture_on_commit_callbacks(execute=True):
        lead, _ = lead_services.lead_capture(data={"email": "b@acme.example"}, actor=BOT)
    assert Lead.objects.get(pk=lead.pk).owner is not None


def test_bulk_reassign_to_a_seller_or_through_the_rules(org, mql):
    RoutingRule.objects.create(name="France", position=1, conditions={}, team=org.fr)
    leads = [LeadFactory(stage=Stage.MQL, owner=org.s1) for _ in range(3)]
    manager = Actor(org.manager, ActorType.USER)
    services.leads_bulk_reassign(lead_ids=[x.pk for x in leads[:2]], to_user=org.s2, actor=manager)
    assert Lead.objects.filter(owner=org.s2).count() == 2
    a = Assignment.objects.filter(to_owner=org.s2).first()
    assert a.actor == org.manager and a.from_owner == org.s1 and a.details["method"] == "manual"
    results = services.leads_bulk_reassign(lead_ids=[leads[2].pk], actor=manager)
    assert results[0].owner_id not in (None, org.s1.pk)


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", ["team", "named seller, then team"])
def test_capacity_is_never_exceeded_under_20_concurrent_routings(target):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from tests.factories import TeamFactory

    team = TeamFactory(name="Race")
    sellers = [UserFactory(role=Role.SDR, team=team, capacity=c, weight=w) for c, w in ((2, 1), (2, 3), (1, 2))]
    if target == "team":
        RoutingRule.objects.create(name="All", position=1, conditions={}, team=team)
    else:  # the named seller fills up, then their team takes over: both locked in one order
        RoutingRule.objects.create(name="Named", position=1, conditions={}, user=sellers[1])
    leads = [LeadFactory(stage=Stage.MQL) for _ in range(20)]
    barrier = threading.Barrier(20)
    results, errors = [], []

    def work(lead_id):
        try:
            barrier.wait(timeout=30)
            results.append(services.lead_route(lead_id=lead_id, actor=BOT).outcome)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(x.pk,)) for x in leads]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results).count("assigned") == 5 and results.count("pool") == 15
    for s in sellers:
        assert Lead.objects.filter(owner=s).count() <= s.capacity
    assert Lead.objects.filter(owner__isnull=True, team=team).count() == 15


def test_a_full_named_seller_sends_the_lead_to_their_team(org, mql):
    RoutingRule.objects.create(name="Key accounts", position=1, conditions={}, user=org.s1)
    org.s1.capacity = 1
    org.s1.save()
    first = route(mql())
    assert first.owner_id == org.s1.pk and first.details["loads"] == {org.s1.username: "0/1"}
    second = route(mql())
    assert second.owner_id in (org.s2.pk, org.s3.pk) and second.details["named_unavailable"] == org.s1.username
    counts = services.leads_route_batch(lead_ids=[mql().pk for _ in range(3)], actor=BOT)
    assert counts["assigned"] == 3
    assert Lead.objects.filter(owner=org.s1).count() == 1

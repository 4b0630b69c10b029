"""Reads on leads (leads.selectors): who sees which lead, who may work it, the history, the
funnel and the facts the lifecycle guards are fed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm.actors import Actor, ActorType
from leads import selectors, services
from leads.models import Bant, Opportunity, Stage, StageChange, Touchpoint, TouchpointType

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(people, mk_lead):
    return {
        "sdr_a": mk_lead(owner=people.sdr_a),
        "sdr_a2": mk_lead(owner=people.sdr_a2),
        "manager_a": mk_lead(owner=people.manager_a),
        "sdr_b": mk_lead(owner=people.sdr_b),
        "pool_a": mk_lead(team=people.team_a),
        "pool_b": mk_lead(team=people.team_b),
        "nobody": mk_lead(),
    }


def visible(user, book) -> set[str]:
    ids = set(selectors.leads_visible_to(user).values_list("pk", flat=True))
    return {name for name, lead in book.items() if lead.pk in ids}


def test_admins_and_marketing_see_every_lead(people, book):
    assert visible(people.admin, book) == set(book)
    assert visible(people.marketing, book) == set(book)


def test_a_superuser_sees_every_lead_whatever_the_role(make_user, book):
    assert visible(make_user("sdr", is_superuser=True), book) == set(book)


def test_an_sdr_sees_own_leads_and_the_team_pool(people, book):
    assert visible(people.sdr_a, book) == {"sdr_a", "pool_a"}
    assert visible(people.sdr_b, book) == {"sdr_b", "pool_b"}


def test_an_sdr_without_a_team_sees_only_own_leads(make_user, mk_lead, book):
    loner = make_user("sdr")
    mine = mk_lead(owner=loner)
    assert set(selectors.leads_visible_to(loner)) == {mine}


def test_a_manager_sees_the_team_pool_and_members_leads(people, book):
    assert visible(people.manager_a, book) == {"sdr_a", "sdr_a2", "manager_a", "pool_a"}


def test_a_manager_sees_the_teams_they_manage_without_being_a_member(people, make_user, book):
    boss = make_user("manager")
    people.team_b.manager = boss
    people.team_b.save()
    assert visible(boss, book) == {"sdr_b", "pool_b"}


def test_inactive_and_anonymous_users_see_nothing(make_user, book):
    from django.contrib.auth.models import AnonymousUser

    assert not selectors.leads_visible_to(make_user("admin", is_active=False)).exists()
    assert not selectors.leads_visible_to(AnonymousUser()).exists()


def test_who_may_work_a_lead(people, mk_lead):
    mcl, sql = mk_lead(), mk_lead(stage=Stage.SQL)
    for seller in (people.sdr_a, people.manager_a, people.admin):
        assert selectors.user_may_work_lead(seller, sql, Stage.SAL)
    assert selectors.user_may_work_lead(people.marketing, mcl, Stage.MQL)
    assert selectors.user_may_work_lead(people.marketing, mcl, Stage.DISQUALIFIED)
    assert not selectors.user_may_work_lead(people.marketing, mcl, Stage.SQL)
    assert not selectors.user_may_work_lead(people.marketing, sql, Stage.DISQUALIFIED), "sales-side lead"
    assert not selectors.user_may_work_lead(people.marketing, mcl), "BANT and offers are sales work"


# --- history --------------------------------------------------------------------------------


def test_history_merges_every_kind_newest_first(people, mk_lead):
    lead = mk_lead(score=80)
    old = timezone.now() - dt.timedelta(days=3)
    Touchpoint.objects.create(lead=lead, type=TouchpointType.PAGE_VIEW, occurred_at=old, utm_source="ads")
    services.lead_promote(lead_id=lead.pk, actor=Actor(people.sdr_a, ActorType.USER), reason="Hot")
    services.lead_assign(lead_id=lead.pk, owner=people.sdr_a, actor=Actor.automation(), details={"rule": 7})

    items = selectors.lead_history(lead=lead)
    assert [i["kind"] for i in items] == ["assignment", "stage_change", "stage_change", "touchpoint"]
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    assignment, move, _, touchpoint = items
    assert assignment["to_owner"] == people.sdr_a.username
    assert (assignment["actor"], assignment["actor_type"], assignment["details"]) == (None, "automation", {"rule": 7})
    assert (move["from_stage"], move["to_stage"], move["actor"], move["reason"]) == (
        "MCL",
        "MQL",
        people.sdr_a.username,
        "Hot",
    )
    assert (touchpoint["type"], touchpoint["utm"], touchpoint["at"]) == ("page_view", {"source": "ads"}, old)


def test_history_costs_the_same_queries_however_long(people, mk_lead):
    def queries(lead) -> int:
        with CaptureQueriesContext(connection) as ctx:
            selectors.lead_history(lead=lead)
        return len(ctx.captured_queries)

    short, long = mk_lead(), mk_lead()
    now = timezone.now()
    Touchpoint.objects.bulk_create(
        [Touchpoint(lead=long, type="page_view", occurred_at=now, author=people.sdr_a) for _ in range(20)]
    )
    for owner in (people.sdr_a, people.sdr_a2, people.manager_a):
        services.lead_assign(lead_id=long.pk, owner=owner, actor=Actor(people.admin, ActorType.USER))
    assert queries(short) == queries(long)


# --- funnel ---------------------------------------------------------------------------------


def test_funnel_counts_current_stages_and_what_each_lead_reached(people, mk_lead):
    actor = Actor(people.admin, ActorType.USER)
    mk_lead()
    promoted = mk_lead(score=70)
    services.lead_promote(lead_id=promoted.pk, actor=actor)
    skipped = mk_lead()
    Touchpoint.objects.create(lead=skipped, type=TouchpointType.DEMO_REQUEST, occurred_at=timezone.now())
    Bant.objects.create(lead=skipped, budget="b", authority="a", need="n", timeline="t")
    services.lead_qualify(lead_id=skipped.pk, actor=actor)
    services.lead_disqualify(lead_id=skipped.pk, actor=actor, reason="Student")

    result = selectors.funnel_counts(selectors.leads_visible_to(people.admin))
    assert result["counts"]["MCL"] == 1
    assert result["counts"]["MQL"] == 1
    assert result["counts"]["DISQUALIFIED"] == 1
    assert sum(result["counts"].values()) == 3
    assert result["reached"] == {"MCL": 3, "MQL": 2, "SQL": 1, "SAL": 0, "CO": 0, "WO": 0}
    assert result["conversion"]["MCL->MQL"] == round(2 / 3, 4)
    assert result["conversion"]["MQL->SQL"] == 0.5
    assert result["conversion"]["SAL->CO"] is None


def test_funnel_of_no_leads_divides_by_nothing(people):
    result = selectors.funnel_counts(selectors.leads_visible_to(people.admin))
    assert set(result["conversion"].values()) == {None}


def test_funnel_query_count_does_not_grow(people, mk_lead):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            selectors.funnel_counts(selectors.leads_visible_to(people.manager_a))
        return len(ctx.captured_queries)

    mk_lead(owner=people.sdr_a)
    few = queries()
    for _ in range(10):
        mk_lead(owner=people.sdr_a, score=90)
    assert queries() == few


# --- facts for the guards -------------------------------------------------------------------


def test_move_facts_read_the_lead_as_it_is(people, mk_lead, settings):
    settings.LEADCRM_MQL_THRESHOLD = 42
    lead = mk_lead(stage=Stage.MCL, owner=people.sdr_a, score=17)
    facts = selectors.lead_move_facts(lead=lead, to=Stage.SQL, user=people.sdr_a, reason="r", override=True)
    assert (facts.from_stage, facts.to_stage, facts.score, facts.mql_threshold) == ("MCL", "SQL", 17, 42)
    assert (facts.override, facts.reason) == (True, "r")
    assert facts.bant_missing == ("budget", "authority", "need", "timeline")
    assert facts.has_owner and facts.actor_is_owner
    assert not facts.has_demo_request and not facts.opportunity_complete

    Touchpoint.objects.create(lead=lead, type=TouchpointType.DEMO_REQUEST, occurred_at=timezone.now())
    Bant.objects.create(lead=lead, budget="b", authority="", need="n", timeline="t")
    facts = selectors.lead_move_facts(lead=lead, to=Stage.SQL, user=people.sdr_a2)
    assert facts.has_demo_request
    assert facts.bant_missing == ("authority",)
    assert not facts.actor_is_owner


def test_a_closed_opportunity_does_not_satisfy_co(mk_lead):
    lead = mk_lead(stage=Stage.SAL)
    Opportunity.objects.create(lead=lead, amount=1, currency="EUR", expected_close=dt.date(2030, 1, 1), status="lost")
    assert not selectors.lead_move_facts(lead=lead, to=Stage.CO, user=None).opportunity_complete


def test_stage_options_offer_each_move_with_its_guard(people, mk_lead):
    lead = mk_lead(stage=Stage.SQL, owner=people.sdr_a)
    options = {o["to"]: o for o in selectors.lead_stage_options(lead=lead, user=people.sdr_a)}
    assert set(options) == {"SAL", "RECYCLED", "DISQUALIFIED"}
    assert options["SAL"]["allowed"] is True
    assert options["RECYCLED"]["allowed"] is True
    assert (options["DISQUALIFIED"]["allowed"], options["DISQUALIFIED"]["guard"]) == (False, "reason_required")
    other = {o["to"]: o for o in selectors.lead_stage_options(lead=lead, user=people.sdr_a2)}
    assert other["SAL"]["guard"] == "owner_accepts"


def test_history_shows_imports(people, mk_lead):
    lead = mk_lead()
    StageChange.objects.create(
        lead=lead, from_stage="MCL", to_stage="WO", actor_type=ActorType.IMPORT, created_at=timezone.now()
    )
    assert selectors.lead_history(lead=lead)[0]["actor_type"] == "import"

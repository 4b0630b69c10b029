"""The routing planner, pure: plain data in, plans out, no database."""

from __future__ import annotations

import datetime as dt

from routing import engine
from routing.engine import LeadFacts, PartnerFacts, Person, RoutingContext, RuleSpec, Seller, Target

NOW = dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)


def ctx(*specs, **fields) -> RoutingContext:
    return RoutingContext(rules=engine.compile_rules(specs), now=NOW, **fields)


def team(*sellers) -> list[Seller]:
    return [Seller(id=i, weight=w, capacity=c, username=f"s{i}") for i, w, c in sellers]


def test_account_owner_first_and_the_why_names_the_company():
    c = ctx(RuleSpec(1, "All", 1, {}, Target("team", 7)), people={5: Person(5, "owner", team_id=3, capacity=0)})
    (plan,) = engine.plan_routes([LeadFacts(id=1, account_owner_id=5, company="Acme")], c)
    assert (plan.outcome, plan.owner_id, plan.team_id, plan.reason) == ("assigned", 5, 3, "Account owner")
    assert plan.details == {"method": "account", "rule": None, "matched": {"company": "Acme"}}
    assert plan.writes


def test_an_away_or_excluded_account_owner_falls_through_to_the_rules():
    c = ctx(RuleSpec(1, "All", 1, {}, Target("team", 7)), people={5: Person(5, "o", takes_leads=False)})
    assert engine.route_aims([LeadFacts(id=1, account_owner_id=5)], c)[0].kind == "team"
    c = ctx(RuleSpec(1, "All", 1, {}, Target("team", 7)), people={5: Person(5, "o")})
    lead = LeadFacts(id=1, account_owner_id=5, excluded_users=frozenset({5}))
    assert engine.route_aims([lead], c)[0].kind == "team"


def test_weighted_round_robin_then_the_pool_with_loads_in_the_why():
    c = ctx(RuleSpec(1, "FR", 1, {"country": ["FR"]}, Target("team", 7)), teams={7: team((1, 1, 1), (2, 2, 2))})
    plans = engine.plan_routes([LeadFacts(id=i, country="FR") for i in range(4)], c)
    assert [p.owner_id for p in plans] == [2, 2, 1, None]  # ties go to the heavier
    assert plans[0].details == {
        "method": "round_robin",
        "rule": {"id": 1, "name": "FR"},
        "matched": {"country": "FR"},
        "team": 7,
        "loads": {"s1": "0/1", "s2": "0/2"},
    }
    assert plans[2].details["loads"] == {"s1": "0/1", "s2": "2/2"}
    assert (plans[3].outcome, plans[3].team_id, plans[3].reason) == ("pool", 7, "No seller available: team pool")
    assert c.teams[7][0].served == 0  # the context is not changed
    assert engine.served_after(plans, c.teams) == {(7, 1): 1, (7, 2): 2}


def test_named_seller_until_full_then_their_team_and_one_load_for_both():
    c = ctx(
        RuleSpec(1, "Key", 1, {}, Target("user", 1)),
        people={1: Person(1, "s1", team_id=7, capacity=2)},
        teams={7: team((1, 1, 2), (2, 1, 5))},
        loads={1: 1},
    )
    c.teams[7][0].load = 1
    plans = engine.plan_routes([LeadFacts(id=i) for i in range(3)], c)
    assert [(p.owner_id, p.details["method"]) for p in plans] == [(1, "named"), (2, "round_robin"), (2, "round_robin")]
    assert plans[0].details["loads"] == {"s1": "1/2"}
    assert plans[1].details["named_unavailable"] == "s1"
    assert plans[1].details["loads"]["s1"] == "2/2"  # the named lead counts in the team's view too


def test_named_seller_without_a_team_leaves_the_lead_unmatched():
    c = ctx(RuleSpec(1, "Key", 1, {}, Target("user", 1)), people={1: Person(1, "s1", capacity=0)})
    (plan,) = engine.plan_routes([LeadFacts(id=1)], c)
    assert (plan.outcome, plan.writes, plan.team_id) == ("unmatched", False, None)


def test_partners_by_territory_share_by_pending_offers_per_weight_and_skip_decliners():
    partners = {
        1: PartnerFacts(1, "A", user_id=11, weight=1, countries=frozenset({"BE"})),
        2: PartnerFacts(2, "B", user_id=12, weight=2, response_hours=24, countries=frozenset({"BE"})),
    }
    rules = (
        RuleSpec(1, "Partners", 1, {}, Target("partners_by_territory")),
        RuleSpec(2, "In", 2, {}, Target("team", 7)),
    )
    c = ctx(*rules, partners=partners, pending_offers={2: 1})
    plans = engine.plan_routes([LeadFacts(id=i, country="BE") for i in range(3)], c)
    assert [p.partner_id for p in plans] == [1, 2, 2]  # (0+1)/1 ties (1+1)/2: lower id; then B
    assert plans[1].owner_id == 12 and plans[1].deadline == NOW + dt.timedelta(hours=24)
    assert plans[1].details["partner"] == {"id": 2, "name": "B"} and plans[1].rule_id == 1
    declined = LeadFacts(id=9, country="BE", declined_partners=frozenset({1, 2}))
    assert engine.route_aims([declined], c)[0].kind == "team"
    assert engine.route_aims([LeadFacts(id=8, country="FR")], c)[0].kind == "team"  # not covered


def test_default_team_then_nowhere_and_a_partners_lead_is_released():
    assert engine.route_aims([LeadFacts(id=1)], ctx(default_team_id=7))[0].info["default_team"] is True
    partners = {1: PartnerFacts(1, "A", user_id=11)}
    held, free = LeadFacts(id=1, owner_id=11, team_id=4), LeadFacts(id=2, team_id=4)
    plans = engine.plan_routes([held, free], ctx(partners=partners))
    assert (plans[0].outcome, plans[0].owner_id, plans[0].team_id, plans[0].writes) == ("unmatched", None, 4, True)
    assert plans[0].details["method"] == "unmatched"
    assert (plans[1].outcome, plans[1].writes) == ("unmatched", False)


def test_routed_again_to_the_same_seller_writes_nothing():
    c = ctx(RuleSpec(1, "T", 1, {}, Target("team", 7)), teams={7: team((1, 1, 5))})
    (plan,) = engine.plan_routes([LeadFacts(id=1, owner_id=1, team_id=7)], c)
    assert plan.outcome == "assigned" and not plan.writes

"""The pure routing engine: no database."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from routing import engine
from routing.engine import BusinessHours, LeadFacts, RuleSpec, Seller, Target

UTC = dt.UTC


def rule(id_, conditions, position=None, target=None):
    return RuleSpec(
        id_, f"rule {id_}", position if position is not None else id_, conditions, target or Target("team", 1)
    )


def first(lead, *rules, regions=None):
    m = engine.match(lead, engine.compile_rules(rules, regions))
    return (m.rule.id, m.matched) if m else None


LEAD = LeadFacts(
    id=1,
    country="FR",
    industry="Software",
    source="seo",
    grade="A",
    stage="MQL",
    company_size=250,
    score=72,
    properties={"product_interest": "analytics", "seats": 40, "trial": True},
)


@pytest.mark.parametrize(
    "conditions, matches",
    [
        ({"country": ["fr", "BE"]}, True),
        ({"country": ["DE"]}, False),
        ({"industry": ["software"]}, True),
        ({"industry": ["retail"]}, False),
        ({"source": ["seo", "sea"]}, True),
        ({"source": ["trade-fair"]}, False),
        ({"grade": ["A", "B"]}, True),
        ({"grade": ["C"]}, False),
        ({"stage": ["MQL"]}, True),
        ({"stage": ["SQL"]}, False),
        ({"company_size_min": 250}, True),
        ({"company_size_min": 251}, False),
        ({"company_size_max": 250}, True),
        ({"company_size_max": 249}, False),
        ({"score_min": 70, "score_max": 80}, True),
        ({"score_min": 73}, False),
        ({"score_max": 71}, False),
        ({"properties": {"product_interest": ["Analytics", "crm"]}}, True),
        ({"properties": {"product_interest": ["crm"]}}, False),
        ({"properties": {"seats": ["40"]}}, True),
        ({"properties": {"trial": ["true"]}}, True),
        ({"properties": {"missing": ["x"]}}, False),
        ({"region": ["DACH"]}, False),
        ({"region": ["France+Benelux"]}, True),
        ({}, True),
    ],
)
def test_each_condition_type(conditions, matches):
    regions = {"DACH": ["DE", "AT", "CH"], "France+Benelux": ["FR", "BE", "NL", "LU"]}
    assert (first(LEAD, rule(1, conditions), regions=regions) is not None) is matches


def test_every_condition_must_hold_and_the_why_lists_them():
    got = first(LEAD, rule(1, {"country": ["FR"], "score_min": 50, "properties": {"product_interest": ["analytics"]}}))
    assert got == (1, {"country": "FR", "score_min": 72, "properties.product_interest": "analytics"})
    assert first(LEAD, rule(1, {"country": ["FR"], "score_min": 90})) is None


def test_missing_company_size_never_matches_a_size_bound():
    lead = LeadFacts(id=2, company_size=None)
    assert first(lead, rule(1, {"company_size_min": 1})) is None
    assert first(lead, rule(1, {"company_size_max": 10**9})) is None


def test_first_match_wins_by_position_then_default():
    rules = [
        rule(3, {}, position=99),  # default, last
        rule(1, {"country": ["FR"]}, position=20),
        rule(2, {"grade": ["A"]}, position=10),
    ]
    assert first(LEAD, *rules)[0] == 2
    assert first(LeadFacts(id=3, country="FR", grade="B"), *rules)[0] == 1
    assert first(LeadFacts(id=4, country="US"), *rules)[0] == 3


def test_skip_leaves_out_rules_whose_target_cannot_take_the_lead():
    rules = engine.compile_rules([rule(1, {}, target=Target("partner", 9)), rule(2, {})])
    m = engine.match(LEAD, rules, skip=lambda spec: spec.target.kind == "partner")
    assert m.rule.id == 2


def test_condition_validation():
    assert engine.validate_conditions({"country": ["FR"], "score_min": 10, "properties": {"p": ["x"]}}) == {}
    errors = engine.validate_conditions(
        {"colour": ["red"], "country": "FR", "score_min": "ten", "properties": {"p": "x"}, "region": ["Mars"]},
        regions=["DACH"],
    )
    assert set(errors) == {"colour", "country", "score_min", "properties", "region"}
    assert "score_min" in engine.validate_conditions({"score_min": 80, "score_max": 20})
    assert engine.validate_conditions([]) == {"conditions": ["Must be an object."]}


# --- sellers -------------------------------------------------------------------------------


def route_many(sellers, n):
    got = {s.id: 0 for s in sellers}
    for _ in range(n):
        s = engine.choose_seller(sellers)
        if s is None:
            break
        engine.take(s)
        got[s.id] += 1
    return got


def test_shares_track_weights_1_2_3_over_10000_routings():
    sellers = [
        Seller(1, weight=1, capacity=10**6),
        Seller(2, weight=2, capacity=10**6),
        Seller(3, weight=3, capacity=10**6),
    ]
    got = route_many(sellers, 10_000)
    for sid, weight in ((1, 1), (2, 2), (3, 3)):
        assert abs(got[sid] / 10_000 - weight / 6) < 0.02
    # in fact exact to within one lead
    assert abs(got[3] - 5000) <= 1 and abs(got[2] - 3333) <= 1 and abs(got[1] - 1667) <= 1


def test_shares_stay_fair_with_random_interruptions():
    rnd = random.Random(1)
    sellers = [Seller(i, weight=w, capacity=10**6) for i, w in ((1, 1), (2, 2), (3, 3))]
    got = {1: 0, 2: 0, 3: 0}
    for _ in range(10_000):
        sellers[0].available = rnd.random() > 0.1  # seller 1 is away 10 % of the time
        s = engine.choose_seller(sellers)
        engine.take(s)
        got[s.id] += 1
    assert abs(got[2] / got[3] - 2 / 3) < 0.02


def test_away_sellers_and_full_sellers_are_skipped():
    sellers = [Seller(1, available=False), Seller(2, capacity=3, load=3), Seller(3, capacity=5, load=4)]
    assert engine.choose_seller(sellers).id == 3
    engine.take(sellers[2])
    assert engine.choose_seller(sellers) is None


def test_capacity_is_never_exceeded():
    sellers = [Seller(1, weight=5, capacity=2), Seller(2, weight=1, capacity=3)]
    got = route_many(sellers, 100)
    assert got == {1: 2, 2: 3}


def test_exclusion_language_and_skill_preferences():
    sellers = [
        Seller(1, languages=frozenset({"fr"})),
        Seller(2, languages=frozenset({"de"}), skills=frozenset({"analytics"})),
        Seller(3, skills=frozenset({"analytics"})),
    ]
    assert engine.choose_seller(sellers, language="FR").id == 1
    assert engine.choose_seller(sellers, skill="analytics").id == 2
    assert engine.choose_seller(sellers, language="de", skill="crm").id == 2
    assert engine.choose_seller(sellers, language="it").id == 1  # nobody speaks it: everyone
    assert engine.choose_seller(sellers, exclude=[1, 2]).id == 3


def test_a_newcomer_starts_level_with_the_team():
    team = [Seller(1, served=300), Seller(2, weight=2, served=600)]
    assert engine.seed_served(1, team) == 300
    assert engine.seed_served(3, team) == 900
    assert engine.seed_served(1, []) == 0


# --- SLA arithmetic ------------------------------------------------------------------------

PARIS = BusinessHours(tz="Europe/Paris")


def paris(*args):
    return dt.datetime(*args, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # CET (winter)


def test_within_the_day():
    # Monday 2026-11-23 10:00 Paris + 60 min → 11:00 Paris
    assert engine.add_business_minutes(paris(2026, 11, 23, 10), 60, PARIS) == paris(2026, 11, 23, 11)


def test_friday_evening_rolls_over_the_weekend():
    # Friday 2026-11-27 17:30 + 60 business minutes → Monday 30th 09:30
    due = engine.add_business_minutes(paris(2026, 11, 27, 17, 30), 60, PARIS)
    assert due == paris(2026, 11, 30, 9, 30)


def test_saturday_capture_starts_on_monday_morning():
    due = engine.add_business_minutes(paris(2026, 11, 28, 14), 4 * 60, PARIS)
    assert due == paris(2026, 11, 30, 13)


def test_night_and_multi_day():
    # Tuesday 20:00 + 10 h of business time (9 h a day) → Thursday 10:00
    assert engine.add_business_minutes(paris(2026, 11, 24, 20), 600, PARIS) == paris(2026, 11, 26, 10)


def test_time_zone_of_the_team_counts():
    ny = BusinessHours(tz="America/New_York")
    start = dt.datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 12:30 in New York, 18:30 in Paris
    assert engine.add_business_minutes(start, 30, ny) == dt.datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    assert engine.add_business_minutes(start, 30, PARIS) == dt.datetime(2026, 11, 24, 8, 30, tzinfo=UTC)


def test_business_minutes_between_skips_the_weekend():
    a, b = paris(2026, 11, 27, 17), paris(2026, 11, 30, 10)
    assert engine.business_minutes_between(a, b, PARIS) == 120
    assert engine.business_minutes_between(b, a, PARIS) == 0


def test_dst_change_keeps_local_hours():
    # Europe/Paris leaves summer time on Sunday 2026-10-25: Friday 17:00 CEST + 2 h → Monday 10:00 CET
    start = dt.datetime(2026, 10, 23, 15, 0, tzinfo=UTC)
    assert engine.add_business_minutes(start, 120, PARIS) == dt.datetime(2026, 10, 26, 9, 0, tzinfo=UTC)


def test_most_specific_policy_wins():
    policies = [
        engine.SlaRule(1, minutes=480),
        engine.SlaRule(2, grade="A", minutes=60),
        engine.SlaRule(3, grade="A", stage="SQL", minutes=30),
        engine.SlaRule(4, stage="MQL", minutes=240),
    ]
    assert engine.choose_policy(policies, grade="A", stage="SQL").id == 3
    assert engine.choose_policy(policies, grade="A", stage="MQL").id == 2
    assert engine.choose_policy(policies, grade="B", stage="MQL").id == 4
    assert engine.choose_policy(policies, grade="C", stage="SAL").id == 1
    assert engine.choose_policy([], grade="A", stage="MQL") is None

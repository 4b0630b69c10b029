"""The scoring engine on plain values: no database."""

from __future__ import annotations

import pytest

from scoring import engine
from scoring.engine import DAY, EngagementRule, Event, FitRule, LeadFacts, RuleSet

NOW = 1_800_000_000.0


def lead(**fields) -> LeadFacts:
    props = fields.pop("properties", {})
    return LeadFacts(id=1, fields=fields, properties=props)


def fit_only(*rules: FitRule, **bands) -> RuleSet:
    return RuleSet(id=1, fit_rules=rules, **bands)


def fit(rule: FitRule, facts: LeadFacts) -> int:
    return engine.score(fit_only(rule), facts, [], NOW).fit


def rule(field: str, operator: str, value, points: int = 10) -> FitRule:
    return FitRule(id=1, name=f"{field} {operator}", field=field, operator=operator, value=value, points=points)


# --- fit operators ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, facts, expected",
    [
        ("industry", "Software", lead(industry="software"), 10),  # case-insensitive
        ("industry", "Software", lead(industry="Retail"), 0),
        ("industry", "Software", lead(), 0),
        ("company_size", 250, lead(company_size=250), 10),
        ("company_size", "250", lead(company_size=250), 10),  # numbers compare numerically
    ],
)
def test_equals(field, value, facts, expected):
    assert fit(rule(field, "equals", value), facts) == expected


def test_in():
    r = rule("country", "in", ["FR", "BE", "CH"], 15)
    assert fit(r, lead(country="fr")) == 15
    assert fit(r, lead(country="DE")) == 0
    assert fit(r, lead(country="")) == 0


def test_contains_on_strings_and_lists():
    r = rule("job_title", "contains", "head", 20)
    assert fit(r, lead(job_title="Head of Marketing")) == 20
    assert fit(r, lead(job_title="Engineer")) == 0
    tags = rule("properties.tags", "contains", "crm", 5)
    assert fit(tags, lead(properties={"tags": ["ERP", "CRM"]})) == 5
    assert fit(tags, lead(properties={"tags": ["ERP"]})) == 0


def test_range_inclusive_and_open_ended():
    r = rule("company_size", "range", {"min": 50, "max": 500}, 25)
    assert fit(r, lead(company_size=50)) == 25
    assert fit(r, lead(company_size=500)) == 25
    assert fit(r, lead(company_size=49)) == 0
    assert fit(r, lead(company_size=None)) == 0
    big = rule("company_size", "range", {"min": 1000}, 30)
    assert fit(big, lead(company_size=10_000)) == 30
    assert fit(big, lead(company_size=999)) == 0
    seats = rule("properties.seats", "range", {"max": 10}, 5)
    assert fit(seats, lead(properties={"seats": "7"})) == 5
    assert fit(seats, lead(properties={"seats": "many"})) == 0


def test_exists():
    r = rule("phone", "exists", None, 5)
    assert fit(r, lead(phone="+33612345678")) == 5
    assert fit(r, lead(phone="")) == 0
    p = rule("properties.budget", "exists", None, 8)
    assert fit(p, lead(properties={"budget": 0})) == 8
    assert fit(p, lead(properties={})) == 0


def test_custom_property_equals_boolean():
    r = rule("properties.student", "equals", True, -30)
    rs = fit_only(r, rule("industry", "equals", "software", 40))
    assert engine.score(rs, lead(industry="Software", properties={"student": True}), [], NOW).fit == 10


def test_fit_is_clamped_and_contributions_listed():
    rs = fit_only(rule("industry", "equals", "software", 80), rule("country", "equals", "FR", 60))
    s = engine.score(rs, lead(industry="software", country="FR"), [], NOW)
    assert s.fit == 100
    assert [c["points"] for c in s.reasons] == [80, 60]
    neg = engine.score(fit_only(rule("industry", "equals", "software", -50)), lead(industry="software"), [], NOW)
    assert neg.fit == 0


def test_unknown_operator_raises():
    with pytest.raises(ValueError):
        engine.condition("like", "x")


# --- grades -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "points, grade", [(80, "A"), (75, "A"), (74, "B"), (50, "B"), (49, "C"), (25, "C"), (24, "D"), (0, "D")]
)
def test_grade_bands_from_fit(points, grade):
    rs = fit_only(rule("industry", "exists", None, points), grade_a_min=75, grade_b_min=50, grade_c_min=25)
    assert engine.score(rs, lead(industry="x"), [], NOW).grade == grade


def test_grade_ignores_engagement():
    rs = RuleSet(id=1, engagement_rules=(EngagementRule(id=1, name="demo", event_type="demo_request", points=90),))
    s = engine.score(rs, lead(), [Event("demo_request", NOW)], NOW)
    assert (s.fit, s.engagement, s.total, s.grade) == (0, 90, 90, "D")


# --- engagement: decay, caps, conditions --------------------------------------------------


def eng(*rules: EngagementRule) -> RuleSet:
    return RuleSet(id=1, engagement_rules=rules)


def test_decay_halves_every_half_life():
    rs = eng(EngagementRule(id=1, name="pricing", event_type="pricing_view", points=40, half_life_days=30))
    assert engine.score(rs, lead(), [Event("pricing_view", NOW)], NOW).engagement == 40
    assert engine.score(rs, lead(), [Event("pricing_view", NOW - 30 * DAY)], NOW).engagement == 20
    assert engine.score(rs, lead(), [Event("pricing_view", NOW - 60 * DAY)], NOW).engagement == 10
    # The same events score lower as time passes (the nightly decay).
    later = engine.score(rs, lead(), [Event("pricing_view", NOW)], NOW + 90 * DAY)
    assert later.engagement == 5


def test_no_half_life_means_no_decay_and_future_events_ignored():
    rs = eng(EngagementRule(id=1, name="webinar", event_type="webinar", points=15))
    assert engine.score(rs, lead(), [Event("webinar", NOW - 400 * DAY)], NOW).engagement == 15
    assert engine.score(rs, lead(), [Event("webinar", NOW + DAY)], NOW).engagement == 0


def test_cap_over_whole_history():
    rs = eng(EngagementRule(id=1, name="views", event_type="page_view", points=3, cap=10))
    events = [Event("page_view", NOW - i * 60) for i in range(20)]
    assert engine.score(rs, lead(), events, NOW).engagement == 10


def test_cap_per_period():
    rs = eng(EngagementRule(id=1, name="views", event_type="page_view", points=5, cap=10, cap_period_days=7))
    this_week = [Event("page_view", NOW - i * 3600) for i in range(6)]  # 30 raw → capped 10
    last_week = [Event("page_view", NOW - 8 * DAY - i * 3600) for i in range(6)]  # another 10
    assert engine.score(rs, lead(), this_week, NOW).engagement == 10
    assert engine.score(rs, lead(), this_week + last_week, NOW).engagement == 20


def test_cap_with_decay_counts_the_earliest_events():
    rs = eng(
        EngagementRule(id=1, name="views", event_type="page_view", points=10, cap=10, half_life_days=10),
    )
    old, new = Event("page_view", NOW - 10 * DAY), Event("page_view", NOW)
    # The old event fills the cap; it is worth half now, the new one is over the cap.
    assert engine.score(rs, lead(), [new, old], NOW).engagement == 5


def test_negative_points_and_floor_at_zero():
    rs = eng(
        EngagementRule(id=1, name="demo", event_type="demo_request", points=30),
        EngagementRule(
            id=2,
            name="unsubscribed",
            event_type="custom",
            points=-50,
            property_key="kind",
            property_value="unsubscribe",
        ),
    )
    demo = Event("demo_request", NOW)
    unsub = Event("custom", NOW, "", {"kind": "unsubscribe"})
    other = Event("custom", NOW, "", {"kind": "survey"})
    assert engine.score(rs, lead(), [demo, other], NOW).engagement == 30
    assert engine.score(rs, lead(), [demo, unsub], NOW).engagement == 0
    negative_cap = eng(EngagementRule(id=1, name="bounce", event_type="custom", points=-20, cap=30))
    fit_rs = RuleSet(
        id=1,
        fit_rules=(rule("industry", "exists", None, 50),),
        engagement_rules=negative_cap.engagement_rules,
    )
    s = engine.score(fit_rs, lead(industry="x"), [Event("custom", NOW)] * 3, NOW)
    assert (s.fit, s.engagement, s.total) == (50, 0, 50)


def test_url_pattern():
    rs = eng(
        EngagementRule(
            id=1, name="pricing pages", event_type="page_view", points=12, url_pattern=r"/(pricing|tarifs)\b"
        )
    )
    assert engine.score(rs, lead(), [Event("page_view", NOW, "https://x.example/pricing?a=1")], NOW).engagement == 12
    assert engine.score(rs, lead(), [Event("page_view", NOW, "https://x.example/fr/tarifs")], NOW).engagement == 12
    assert engine.score(rs, lead(), [Event("page_view", NOW, "https://x.example/blog")], NOW).engagement == 0


def test_total_is_fit_plus_engagement_clamped():
    rs = RuleSet(
        id=1,
        fit_rules=(rule("industry", "exists", None, 70),),
        engagement_rules=(EngagementRule(id=9, name="demo", event_type="demo_request", points=60),),
    )
    s = engine.score(rs, lead(industry="x"), [Event("demo_request", NOW)], NOW)
    assert (s.fit, s.engagement, s.total) == (70, 60, 100)
    assert {c["kind"] for c in s.reasons} == {"fit", "engagement"}


# --- backtest helpers ---------------------------------------------------------------------


def test_auc_by_ranks():
    assert engine.auc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert engine.auc([4, 3, 2, 1], [0, 0, 1, 1]) == 0.0
    assert engine.auc([5, 5, 5, 5], [0, 1, 0, 1]) == 0.5
    assert engine.auc([1, 2], [1, 1]) is None


def test_conversion_by_band():
    bands = engine.conversion_by_band([10, 15, 85, 90, 95], [0, 0, 1, 1, 0])
    assert bands[0]["leads"] == 2 and bands[0]["conversion"] == 0
    assert bands[-1]["leads"] == 3 and bands[-1]["won"] == 2
    assert bands[2]["conversion"] is None


# --- memoized checks and encoded reasons (the full rescore's fast paths) ------------------


def test_memoized_checks_tell_true_from_one_and_handle_lists():
    check = engine.memoized(engine.condition("equals", True))
    assert check(True) and not check(1) and check(True)  # same hash, different answers
    contains = engine.memoized(engine.condition("contains", "crm"))
    assert contains(["crm", "erp"]) and not contains(["erp"])  # unhashable: checked each time
    assert [check(v) for v in range(engine.MEMO_SIZE + 10)][-1] is False  # bounded, still right


def test_reasons_json_is_the_reasons_document():
    import json
    import random

    rules = RuleSet(
        id=1,
        fit_rules=(
            FitRule(id=1, name='Soft "ware" é', field="industry", operator="equals", value="Software", points=20),
            FitRule(id=2, name="Student", field="job_title", operator="exists", value=None, points=-30),
        ),
        engagement_rules=(
            EngagementRule(id=3, name="Visits", event_type="page_view", points=2, cap=10, half_life_days=30),
            EngagementRule(id=4, name="Unsubscribe", event_type="unsubscribe", points=-7),
        ),
    )
    compiled = engine.compile_ruleset(rules)
    rnd = random.Random(3)
    for _ in range(200):
        facts = lead(industry=rnd.choice(["Software", "Retail", ""]), job_title=rnd.choice(["", "CTO"]))
        events = [
            Event(rnd.choice(["page_view", "unsubscribe", "download"]), NOW - rnd.random() * 90 * DAY)
            for _ in range(rnd.randint(0, 8))
        ]
        s = engine.score_lead(compiled, facts, events, NOW)
        assert json.loads(engine.reasons_json(compiled, s)) == s.reasons

"""A routing rule's validity, once (routing.rules.routing_rule_errors): pure, no database."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Role
from routing import engine, rules

TEAM = SimpleNamespace(pk=1)
SELLER = SimpleNamespace(is_active=True, role=Role.SDR)


def errors(**kwargs):
    return rules.routing_rule_errors(**{"conditions": {}, "team": TEAM, **kwargs})


def test_a_valid_rule_has_no_errors():
    spec = {
        "country": ["FR"],
        "industry": ["Software"],
        "source": ["seo"],
        "grade": ["A", "B"],
        "company_size_min": 200,
        "company_size_max": 5000,
        "score_min": 50,
        "score_max": 100,
        "properties": {"product_interest": ["analytics"]},
        "region": ["dach"],
    }
    assert errors(conditions=spec, regions=["DACH"]) == {}
    assert rules.routing_rule_errors(conditions={}, user=SELLER) == {}
    assert rules.routing_rule_errors(conditions={}, partners_by_territory=True) == {}


def test_exactly_one_target():
    assert rules.routing_rule_errors(conditions={}) == {"target": [rules.TARGET_MESSAGE]}
    assert set(errors(user=SELLER)) == {"target"}
    assert set(errors(partners_by_territory=True)) == {"target"}
    assert set(rules.routing_rule_errors(conditions={}, partner=object(), user=SELLER)) == {"target"}


def test_a_user_target_is_an_active_seller():
    for user in (
        SimpleNamespace(is_active=False, role=Role.SDR),
        SimpleNamespace(is_active=True, role=Role.MARKETING),
    ):
        assert rules.routing_rule_errors(conditions={}, user=user) == {"user": [rules.USER_MESSAGE]}
        # A rule left pointing at someone who left can still be edited otherwise.
        assert rules.routing_rule_errors(conditions={}, user=user, user_changed=False) == {}
    for role in (Role.SDR, Role.MANAGER, Role.ADMIN):
        assert rules.routing_rule_errors(conditions={}, user=SimpleNamespace(is_active=True, role=role)) == {}


def test_condition_errors_name_their_condition():
    found = errors(
        conditions={"colour": ["red"], "country": "FR", "score_min": 80, "score_max": 20, "region": ["Mars"]},
        regions=["DACH"],
    )
    assert set(found) == {"conditions"}
    assert {m.split(":", 1)[0] for m in found["conditions"]} == {"colour", "country", "score_min", "region"}
    assert errors(conditions=[]) == {"conditions": ["Must be an object."]}
    assert errors(conditions={"company_size_min": 10, "company_size_max": 5})["conditions"] == [
        "company_size_min: Greater than company_size_max."
    ]


_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(sorted(engine.CONDITION_KEYS)) | st.text(max_size=8)
_conditions = st.dictionaries(_keys, _json, max_size=6) | _json
_target = st.none() | st.just(TEAM)
_user = st.none() | st.builds(SimpleNamespace, is_active=st.booleans(), role=st.sampled_from([*Role.values, "", "x"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conditions=_conditions,
    team=_target,
    user=_user,
    partner=_target,
    by_territory=st.booleans(),
    regions=st.none() | st.lists(st.text(max_size=5), max_size=3),
)
def test_any_input_gives_field_errors_never_an_exception(conditions, team, user, partner, by_territory, regions):
    found = rules.routing_rule_errors(
        conditions=conditions,
        team=team,
        user=user,
        partner=partner,
        partners_by_territory=by_territory,
        regions=regions,
    )
    assert isinstance(found, dict) and set(found) <= {"conditions", "target", "user"}
    assert all(isinstance(v, list) and v and all(isinstance(m, str) and m for m in v) for v in found.values())
    if not found:
        # What the validation lets through, the engine compiles and matches without error.
        compiled = engine.compile_rules(
            [engine.RuleSpec(id=1, name="r", position=1, conditions=conditions, target=engine.Target("team", 1))]
        )
        engine.match(engine.LeadFacts(id=1, country="FR", score=50, properties={"a": "b"}), compiled)

"""The segment filter's pure rules: what a filter may say, and the order segments are checked in."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nurturing.segment_rules import FilterInvalid, clean_filter, evaluation_order, has_time_window

LIST_KEYS = {"stage", "owner", "source", "score_min", "grade", "country", "q"}
TYPES = {"page_view", "pricing_view", "email_open"}
CONSENT = {"none", "pending", "opt_in", "opt_out"}


def clean(raw):
    return clean_filter(
        raw, list_keys=LIST_KEYS, multi_keys={"stage", "grade"}, event_types=TYPES, consent_statuses=CONSENT
    )


def test_a_filter_is_normalised():
    got = clean(
        {
            "stage": "MQL",
            "score_min": 40,
            "consent": ["opt_in", "opt_in"],
            "properties": {"plan": "pro"},
            "events": [{"type": "pricing_view", "within_days": "7"}],
            "segments": [3, "2", 3],
        }
    )
    assert got == {
        "stage": ["MQL"],
        "score_min": "40",
        "consent": ["opt_in"],
        "properties": {"plan": ["pro"]},
        "events": [{"type": "pricing_view", "within_days": 7, "min_count": 1}],
        "segments": [2, 3],
    }


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"owner": "me"}, "owner"),
        ({"colour": "red"}, "colour"),
        ({"events": [{"type": "teleport"}]}, "events"),
        ({"events": [{"type": "page_view", "within_days": 0}]}, "events"),
        ({"events": []}, "events"),
        ({"consent": ["maybe"]}, "consent"),
        ({"segments": ["x"]}, "segments"),
        ({"properties": {"": "x"}}, "properties"),
        ({"stage": [{"a": 1}]}, "stage"),
        ({"team": "blue"}, "team"),
        ({"properties": {"plan": "pro\x00"}}, "properties"),
        ({"properties": {"pl\x00an": "pro"}}, "properties"),
        ({"source": "seo\x00"}, "source"),
    ],
)
def test_each_bad_key_is_named(raw, key):
    with pytest.raises(FilterInvalid) as err:
        clean(raw)
    assert set(err.value.errors) == {key}


def test_not_an_object_is_refused():
    with pytest.raises(FilterInvalid) as err:
        clean(["stage"])
    assert "filter" in err.value.errors


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=6,
)
keys = st.sampled_from(sorted(LIST_KEYS | {"team", "consent", "properties", "events", "segments", "x"}))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.dictionaries(keys, json_values, max_size=5))
def test_any_json_is_either_clean_or_a_field_error(raw):
    try:
        got = clean(raw)
    except FilterInvalid as exc:
        assert exc.errors and set(exc.errors) <= set(raw)
    else:
        assert set(got) == set(raw)
        assert clean(got) == got  # normalising twice changes nothing


def test_segments_come_after_those_they_name():
    order = evaluation_order({1: {"segments": [2]}, 2: {"segments": [3]}, 3: {}, 4: {}})
    assert order.index(3) < order.index(2) < order.index(1)
    assert sorted(order) == [1, 2, 3, 4]


def test_a_circle_of_segments_is_refused():
    with pytest.raises(FilterInvalid) as err:
        evaluation_order({1: {"segments": [2]}, 2: {"segments": [1]}})
    assert "circle" in err.value.errors["segments"][0]


def test_only_event_windows_need_the_periodic_check():
    assert has_time_window({"events": [{"type": "page_view", "within_days": 7, "min_count": 1}]})
    assert not has_time_window({"stage": ["MQL"]})

"""The sequence rules and the condition language, without a database: validation keyed by
step path, cursors, waits (durations, business days, dates, send windows in the lead's
zone), the weighted variant choice; any JSON gives field errors, never an exception."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nurturing import conditions
from nurturing import sequence_rules as rules
from nurturing.conditions import LeadFacts, condition_errors, condition_holds

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")
WINDOW = {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}
TREE = [
    {"type": "email", "template": 1},
    {"type": "wait", "days": 2, "window": WINDOW},
    {
        "type": "split",
        "variants": [
            {"weight": 50, "steps": [{"type": "email", "template": 2}]},
            {"weight": 50, "steps": [{"type": "email", "template": 3}, {"type": "wait", "hours": 4}]},
        ],
    },
    {
        "type": "branch",
        "if": {"field": "score", "op": "gte", "value": 50},
        "then": [{"type": "task", "kind": "call", "due_in_hours": 24}],
        "else": [],
    },
    {"type": "email", "template": 4},
]


def no_actions(action):
    return []


def errors(steps, **kw):
    return rules.steps_errors(steps, action_errors=kw.pop("action_errors", no_actions), **kw)


# --- validation --------------------------------------------------------------------------


def test_a_valid_tree_has_no_errors_and_is_normalised():
    assert errors(TREE, template_ids={1, 2, 3, 4}) == {}
    cleaned = rules.clean_steps(TREE, action_errors=no_actions)
    assert cleaned[1]["window"] == WINDOW and cleaned[3]["else"] == []


def test_errors_are_keyed_by_the_step_path():
    bad = [
        {"type": "wait"},
        {"type": "email", "template": "x"},
        {
            "type": "split",
            "variants": [
                {"weight": 1, "steps": [{"type": "email", "template": 9}]},
                {"weight": -1, "steps": [{"type": "nope"}]},
            ],
        },
        {"type": "branch", "if": {"field": "shoe_size", "op": "eq", "value": 1}, "then": "x"},
        {"type": "wait", "days": 1, "window": {"start": "18:00", "end": "09:00"}},
        {"type": "wait", "until": "2026-13-01"},
    ]
    got = errors(bad, template_ids={1})
    assert set(got) == {
        "steps[0]",
        "steps[1].template",
        "steps[2].variants[0].steps[0].template",
        "steps[2].variants[1].weight",
        "steps[2].variants[1].steps[0].type",
        "steps[3].if",
        "steps[3].then",
        "steps[4].window",
        "steps[5].until",
    }


def test_action_steps_are_checked_by_the_actions_rules():
    got = rules.steps_errors([{"type": "move_stage", "to": "NOWHERE"}, {"type": "task", "kind": "call"}])
    assert list(got) == ["steps[0].to"]
    assert errors([{"type": "enroll", "sequence": 7}], sequence_ids={1}) == {
        "steps[0].sequence": ["Unknown sequence 7."]
    }


def test_exit_on_and_reentry():
    assert rules.exit_on_errors(["reply", "opt_out", "reply"]) == (["opt_out", "reply"], [])
    assert rules.exit_on_errors(["later"])[1]
    assert rules.parse_reentry("after_days:30") == ("after_days", 30, [])
    assert rules.parse_reentry("always")[:2] == ("always", None)
    for bad in ("after_days:0", "after_days:x", "sometimes", None, 3):
        assert rules.parse_reentry(bad)[2]


# --- cursors -----------------------------------------------------------------------------


def test_cursor_navigation_enters_and_leaves_nested_lists():
    assert rules.step_at(TREE, [0])["template"] == 1
    assert rules.next_cursor(TREE, [0]) == [1]
    assert rules.enter(TREE, [2], 1) == [2, "variants", 1, "steps", 0]
    assert rules.step_at(TREE, [2, "variants", 1, "steps", 0])["template"] == 3
    assert rules.next_cursor(TREE, [2, "variants", 1, "steps", 0]) == [2, "variants", 1, "steps", 1]
    assert rules.next_cursor(TREE, [2, "variants", 1, "steps", 1]) == [3]  # leaves the split
    assert rules.next_cursor(TREE, [2, "variants", 0, "steps", 0]) == [3]
    assert rules.enter(TREE, [3], "then") == [3, "then", 0]
    assert rules.enter(TREE, [3], "else") == [4]  # an empty list: the step after the branch
    assert rules.next_cursor(TREE, [3, "then", 0]) == [4]
    assert rules.next_cursor(TREE, [4]) == []
    assert rules.step_at(TREE, [9]) is None and rules.step_at(TREE, ["x"]) is None
    assert rules.path_of([2, "variants", 1, "steps", 0]) == "2.variants.1.steps.0"
    assert rules.variant_of([2, "variants", 1, "steps", 0]) == "2:1" and rules.variant_of([4]) == ""


def test_the_window_of_an_email_is_the_one_of_the_wait_before_it():
    assert rules.window_for(TREE, [0]) is None
    assert rules.window_for(TREE, [2, "variants", 0, "steps", 0]) == WINDOW  # via the parent's siblings
    assert rules.window_for(TREE, [4]) == WINDOW
    cleared = [*TREE[:4], {"type": "wait", "hours": 1}, {"type": "email", "template": 4}]
    assert rules.window_for(cleared, [5]) is None


def test_variants_are_deterministic_and_weighted():
    assert rules.choose_variant([1, 1], enrollment_id=7, path="2") == rules.choose_variant(
        [1, 1], enrollment_id=7, path="2"
    )
    counts = Counter(rules.choose_variant([80, 20], enrollment_id=i, path="2") for i in range(5000))
    assert 0.76 < counts[0] / 5000 < 0.84
    assert {rules.choose_variant([0, 5, 0], enrollment_id=i, path="0") for i in range(200)} == {1}


# --- time ----------------------------------------------------------------------------------


def at(text: str, zone=UTC) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=zone)


def test_days_hours_and_business_days():
    friday = at("2026-12-04 10:00", PARIS)
    assert rules.wait_until({"days": 2}, start=friday, zone=PARIS) == at("2026-12-06 10:00", PARIS)
    assert rules.wait_until({"hours": 5}, start=friday, zone=PARIS) == friday + dt.timedelta(hours=5)
    assert rules.wait_until({"days": 1, "business_days": True}, start=friday, zone=PARIS) == at(
        "2026-12-07 10:00", PARIS
    )
    assert rules.wait_until({"days": 3, "business_days": True}, start=friday, zone=PARIS) == at(
        "2026-12-09 10:00", PARIS
    )
    saturday = at("2026-12-05 10:00", PARIS)
    assert rules.wait_until({"days": 1, "business_days": True}, start=saturday, zone=PARIS) == at(
        "2026-12-07 10:00", PARIS
    )


def test_days_keep_the_wall_time_across_a_dst_change():
    before = at("2026-03-28 10:00", PARIS)  # the clocks go forward on the 29th
    assert rules.wait_until({"days": 2}, start=before, zone=PARIS).astimezone(PARIS).hour == 10


def test_until_a_date_is_midnight_in_the_leads_zone():
    start = at("2026-12-01 12:00")
    assert rules.wait_until({"until": "2026-12-24"}, start=start, zone=PARIS) == at("2026-12-23 23:00")
    assert rules.wait_until({"until": "2020-01-01"}, start=start, zone=PARIS) == start  # past: no wait


def test_a_window_in_the_leads_zone_is_never_left():
    ny = ZoneInfo("America/New_York")
    # Friday 16:30 in New York + 1 hour = 17:30, after the window: Monday 09:00 New York.
    start = at("2026-12-04 16:30", ny)
    got = rules.wait_until({"hours": 1, "window": WINDOW}, start=start, zone=ny)
    assert got == at("2026-12-07 09:00", ny)
    assert rules.in_window(got, WINDOW, ny) and not rules.in_window(got, WINDOW, ZoneInfo("Asia/Tokyo"))
    inside = at("2026-12-07 10:00", ny)
    assert rules.next_in_window(inside, WINDOW, ny) == inside


@given(
    start=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(UTC)),
    days=st.integers(0, 30),
    hours=st.integers(0, 100),
    business=st.booleans(),
    zone=st.sampled_from(["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]),
    window_days=st.lists(st.integers(0, 6), min_size=1, max_size=7),
)
@settings(max_examples=200, deadline=None)
def test_a_wait_with_a_window_always_ends_inside_it(start, days, hours, business, zone, window_days):
    tz = ZoneInfo(zone)
    window = {"start": "09:00", "end": "17:00", "days": sorted(set(window_days))}
    step = {"days": days, "hours": hours, "business_days": business, "window": window}
    got = rules.wait_until(step, start=start, zone=tz)
    assert got >= start and rules.in_window(got, window, tz)
    if business:
        assert got.astimezone(tz).weekday() < 5 or set(window["days"]) <= {5, 6}


def test_the_leads_zone():
    assert rules.lead_zone(timezone_name="Asia/Tokyo", country="FR").key == "Asia/Tokyo"
    assert rules.lead_zone(timezone_name="Mars/Olympus", country="FR").key == "Europe/Paris"
    assert rules.lead_zone(timezone_name=None, country="us").key == "America/New_York"
    assert rules.lead_zone(timezone_name="../etc/passwd", country="", fallback="Europe/Berlin").key == "Europe/Berlin"
    assert rules.lead_zone(country="ZZ", fallback="nope").key == "UTC"


# --- conditions ----------------------------------------------------------------------------

FACTS = LeadFacts(
    lead={
        "score": 72,
        "grade": "A",
        "stage": "MQL",
        "country": "FR",
        "owner": None,
        "properties": {"plan": "pro", "seats": "40"},
    },
    segment_ids=frozenset({3}),
    opened_last=True,
)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({}, True),
        ({"field": "score", "op": "gte", "value": 50}, True),
        ({"field": "score", "op": "lt", "value": "50"}, False),
        ({"field": "grade", "op": "in", "value": ["A", "B"]}, True),
        ({"field": "stage", "op": "ne", "value": "SQL"}, True),
        ({"field": "owner", "op": "unset"}, True),
        ({"field": "properties.plan", "op": "eq", "value": "PRO"}, True),
        ({"field": "properties.seats", "op": "gt", "value": 39}, True),
        ({"field": "properties.missing", "op": "set"}, False),
        ({"segment": 3}, True),
        ({"segment": 4}, False),
        ({"opened_last": True}, True),
        ({"clicked_last": True}, False),
        ({"all": [{"segment": 3}, {"not": {"field": "country", "op": "eq", "value": "DE"}}]}, True),
        ({"any": [{"segment": 9}, {"field": "grade", "op": "eq", "value": "D"}]}, False),
        ({"field": "grade", "op": "gt", "value": 3}, False),  # unrelated types: false, no error
    ],
)
def test_conditions_hold_or_not(cond, expected):
    assert condition_errors(cond) == []
    assert condition_holds(cond, FACTS) is expected


def test_condition_errors():
    assert condition_errors({"segment": 5}, segment_ids={1}) == ["segment: unknown segment 5."]
    assert condition_errors({"field": "score", "op": "between", "value": 1})
    assert condition_errors({"all": [{"field": "score", "op": "in", "value": 3}]})[0].startswith("all[0]")
    assert condition_errors({"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}}}})
    assert condition_errors([1])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
STEP_KEYS = st.sampled_from(
    ["type", "days", "hours", "until", "business_days", "window", "template", "variants", "weight", "steps", "if",
     "then", "else", "to", "sequence", "kind", "field", "value", "op", "all", "any", "not", "segment"]
)  # fmt: skip
STEPISH = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 30) | st.sampled_from([*rules.STEP_TYPES, "09:00", "2026-12-24"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STEP_KEYS, inner, max_size=5),
    max_leaves=40,
)


@given(steps=JSON | STEPISH)
@settings(max_examples=300, deadline=None)
def test_any_json_gives_field_errors_never_an_exception(steps):
    got = rules.steps_errors(steps)
    assert isinstance(got, dict)
    assert all(isinstance(k, str) and k.startswith("steps") and v for k, v in got.items())
    if not got:  # what passes can be walked from start to end
        cleaned = rules.clean_steps(steps)
        cursor, seen = rules.first_cursor(cleaned), 0
        while cursor and seen < 500:
            step = rules.step_at(cleaned, cursor)
            assert step is not None
            if step["type"] == "split":
                cursor = rules.enter(cleaned, cursor, 0)
            elif step["type"] == "branch":
                cursor = rules.enter(cleaned, cursor, "then")
            else:
                cursor = rules.next_cursor(cleaned, cursor)
            seen += 1
        assert cursor == []


@given(cond=JSON | STEPISH)
@settings(max_examples=300, deadline=None)
def test_any_json_condition_gives_errors_or_holds_without_an_exception(cond):
    problems = conditions.condition_errors(cond)
    assert isinstance(problems, list)
    if not problems:
        assert condition_holds(cond, FACTS) in (True, False)

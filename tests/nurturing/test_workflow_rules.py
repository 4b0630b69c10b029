"""Workflow rules (nurturing.workflow_rules): pure, no database."""

from __future__ import annotations

import pytest

from nurturing import workflow_rules as rules


@pytest.mark.parametrize(
    ("trigger", "normal"),
    [
        ({"event": "lead.created"}, {"event": "lead.created"}),
        ({"event": "lead.stage_changed", "to": "MQL"}, {"event": "lead.stage_changed", "to": "MQL"}),
        (
            {"event": "lead.stage_changed", "from": "MCL", "to": "MQL"},
            {"event": "lead.stage_changed", "from": "MCL", "to": "MQL"},
        ),
        (
            {"event": "lead.score_changed", "crosses": 70},
            {"event": "lead.score_changed", "crosses": 70, "direction": "up"},
        ),
        (
            {"event": "lead.score_changed", "crosses": 30, "direction": "down"},
            {"event": "lead.score_changed", "crosses": 30, "direction": "down"},
        ),
        (
            {"event": "lead.activity_recorded", "type": "form_submit"},
            {"event": "lead.activity_recorded", "type": "form_submit"},
        ),
        ({"segment_entered": 4}, {"segment_entered": 4}),
        ({"event": "segment.left", "segment": 4}, {"segment_left": 4}),
        ({"event": "email.clicked", "template": 2}, {"event": "email.clicked", "template": 2}),
        ({"event": "email.replied"}, {"event": "email.replied"}),
        ({"inactive_days": 30}, {"inactive_days": 30}),
        ({"date_property": "renewal_date", "offset_days": -30}, {"date_property": "renewal_date", "offset_days": -30}),
        ({"date_property": "renewal_date"}, {"date_property": "renewal_date", "offset_days": 0}),
    ],
)
def test_triggers_are_normalised(trigger, normal):
    assert rules.clean_trigger(trigger) == (normal, [])


@pytest.mark.parametrize(
    "trigger",
    [
        None,
        {},
        [],
        "lead.created",
        {"event": "lead.updated"},
        {"event": "lead.stage_changed", "to": "NOPE"},
        {"event": "lead.stage_changed", "stage": "MQL"},
        {"event": "lead.score_changed"},
        {"event": "lead.score_changed", "crosses": 101},
        {"event": "lead.score_changed", "crosses": True},
        {"event": "lead.score_changed", "crosses": 50, "direction": "sideways"},
        {"event": "lead.activity_recorded", "type": "teleport"},
        {"segment_entered": "4"},
        {"segment_entered": 4, "event": "x"},
        {"event": "email.opened", "template": 0},
        {"inactive_days": 0},
        {"inactive_days": 10**6},
        {"inactive_days": 3, "type": "x"},
        {"date_property": "renewal__date\x00"},
        {"date_property": "renewal_date", "offset_days": 1.5},
    ],
)
def test_bad_triggers_are_refused(trigger):
    normal, errors = rules.clean_trigger(trigger)
    assert normal == {} and errors


def test_which_event_a_trigger_listens_to_and_whether_a_payload_may_fire_it():
    assert rules.trigger_event({"segment_entered": 3}) == "segment.entered"
    assert rules.trigger_event({"inactive_days": 3}) is None
    stage = {"event": "lead.stage_changed", "to": "MQL"}
    assert rules.trigger_matches(stage, event="lead.stage_changed", payload={"from_stage": "MCL", "to_stage": "MQL"})
    assert not rules.trigger_matches(stage, event="lead.stage_changed", payload={"to_stage": "SQL"})
    assert not rules.trigger_matches(stage, event="lead.created", payload={})
    assert rules.trigger_matches({"segment_left": 3}, event="segment.left", payload={"segment_id": 3})
    assert not rules.trigger_matches({"segment_left": 3}, event="segment.left", payload={"segment_id": 4})
    assert not rules.trigger_matches({"segment_left": 3}, event="segment.entered", payload={"segment_id": 3})


@pytest.mark.parametrize(
    ("direction", "old", "new", "expected"),
    [
        ("up", 60, 70, True),
        ("up", 70, 80, False),
        ("up", 80, 60, False),
        ("down", 70, 69, True),
        ("down", 69, 60, False),
    ],
)
def test_crossing_a_score(direction, old, new, expected):
    assert rules.crosses({"crosses": 70, "direction": direction}, old, new) is expected


VALID = {
    "name": "MQL follow-up",
    "trigger": {"event": "lead.stage_changed", "to": "MQL"},
    "conditions": {"field": "grade", "op": "in", "value": ["A", "B"]},
    "actions": [{"type": "task", "kind": "call", "due_in_hours": 4}, {"type": "enroll", "sequence": 1}],
}


def test_a_valid_workflow_is_cleaned():
    clean, errors = rules.workflow_errors(**VALID)
    assert errors == {}
    assert clean["name"] == "MQL follow-up" and clean["actions"] == VALID["actions"]


def test_errors_are_keyed_by_field_and_action():
    _clean, errors = rules.workflow_errors(
        name="",
        trigger={"event": "nope"},
        conditions={"field": "shoe_size", "op": "eq", "value": 1},
        actions=[{"type": "task"}, {"type": "email"}],
    )
    assert set(errors) == {"name", "trigger", "conditions", "actions[1]"}
    assert rules.workflow_errors(name="x", trigger={"inactive_days": 3}, actions=[])[1] == {
        "actions": ["A list of at least one action."]
    }
    assert "actions" in rules.workflow_errors(name="x", trigger={"inactive_days": 3}, actions={"type": "route"})[1]
    too_many = [{"type": "route"}] * (rules.MAX_ACTIONS + 1)
    assert "actions" in rules.workflow_errors(name="x", trigger={"inactive_days": 3}, actions=too_many)[1]


def test_unknown_segments_are_errors_when_the_segments_are_known():
    _c, errors = rules.workflow_errors(
        name="x",
        trigger={"segment_entered": 9},
        conditions={"segment": 8},
        actions=[{"type": "route"}],
        segment_ids={1},
    )
    assert set(errors) == {"trigger", "conditions"}


def test_partial_checks_only_what_is_given():
    clean, errors = rules.workflow_errors(active=False, partial=True)
    assert (clean, errors) == ({"active": False}, {})
    assert rules.workflow_errors(active="yes", partial=True)[1] == {"active": ["true or false."]}
    assert rules.workflow_errors(name="x\x00", partial=True)[1]["name"]

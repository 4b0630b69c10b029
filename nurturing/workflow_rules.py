"""Workflow rules, pure (plain data in and out, no database): what a trigger, its
conditions and its actions may be, their normal form, and which domain event a trigger
listens to.

Triggers (their normal form):
    {"event": "lead.created"}
    {"event": "lead.stage_changed", "to"?: STAGE, "from"?: STAGE}
    {"event": "lead.score_changed", "crosses": N, "direction"?: "up" | "down"}   (up by default)
    {"event": "lead.activity_recorded", "type"?: TOUCHPOINT_TYPE}   (e.g. "form_submit")
    {"segment_entered": id}   {"segment_left": id}
    {"event": "email.opened" | "email.clicked" | "email.replied", "template"?: id}
    {"inactive_days": N}   (no activity for N days; checked by the daily beat)
    {"date_property": "renewal_date", "offset_days": -30}   (the lead's date property ± days)
Conditions: the language of `nurturing.conditions`. Actions: `nurturing.actions`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from leadcrm import inputs
from leads.models import Stage, TouchpointType
from nurturing import actions as workflow_actions
from nurturing.conditions import condition_errors

LEAD_CREATED = "lead.created"
STAGE_CHANGED = "lead.stage_changed"
SCORE_CHANGED = "lead.score_changed"
ACTIVITY_RECORDED = "lead.activity_recorded"
SEGMENT_ENTERED = "segment.entered"
SEGMENT_LEFT = "segment.left"
EMAIL_EVENTS = ("email.opened", "email.clicked", "email.replied")
EVENTS = (LEAD_CREATED, STAGE_CHANGED, SCORE_CHANGED, ACTIVITY_RECORDED, SEGMENT_ENTERED, SEGMENT_LEFT, *EMAIL_EVENTS)
# Triggers a beat task looks for (no event announces them).
TIMED = ("inactive_days", "date_property")

MAX_ACTIONS = 20
MAX_NAME = 200
MAX_DAYS = 3650
MAX_SCORE = 100
PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_.\- ]{1,100}$")


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def clean_trigger(trigger: object) -> tuple[dict, list[str]]:
    """(the trigger in its normal form, errors). Aliases are accepted and normalised:
    {"event": "segment.entered", "segment": id} is {"segment_entered": id}."""
    if not isinstance(trigger, Mapping) or not trigger:
        return {}, ["A trigger is a JSON object: an event, segment_entered/left, inactive_days or date_property."]
    t = dict(trigger)
    if t.get("event") in (SEGMENT_ENTERED, SEGMENT_LEFT) and set(t) <= {"event", "segment"}:
        t = {("segment_entered" if t["event"] == SEGMENT_ENTERED else "segment_left"): t.get("segment")}
    for key in ("segment_entered", "segment_left"):
        if key in t:
            if set(t) != {key}:
                return {}, [f"{key}: alone, with the id of a segment."]
            if not inputs.is_id(t[key]):
                return {}, [f"{key}: the id of a segment."]
            return {key: t[key]}, []
    if "inactive_days" in t:
        if set(t) != {"inactive_days"}:
            return {}, ["inactive_days: alone."]
        if not _int_in(t["inactive_days"], 1, MAX_DAYS):
            return {}, [f"inactive_days: a whole number of days from 1 to {MAX_DAYS}."]
        return {"inactive_days": t["inactive_days"]}, []
    if "date_property" in t:
        errors = []
        if set(t) - {"date_property", "offset_days"}:
            errors.append("date_property: only with offset_days.")
        key = t["date_property"]
        if not isinstance(key, str) or not PROPERTY_KEY.match(key):
            errors.append("date_property: the name of a custom field holding a date (YYYY-MM-DD).")
        offset = t.get("offset_days", 0)
        if not _int_in(offset, -MAX_DAYS, MAX_DAYS):
            errors.append(f"offset_days: a whole number of days from -{MAX_DAYS} to {MAX_DAYS}.")
        return ({} if errors else {"date_property": key, "offset_days": offset}), errors
    return _clean_event_trigger(t)


def _clean_event_trigger(t: dict) -> tuple[dict, list[str]]:
    event = t.get("event")
    if event not in EVENTS or event in (SEGMENT_ENTERED, SEGMENT_LEFT):
        choices = ", ".join(e for e in EVENTS if e not in (SEGMENT_ENTERED, SEGMENT_LEFT))
        return {}, [f"event: one of {choices} (or segment_entered, segment_left, inactive_days, date_property)."]
    allowed = {
        LEAD_CREATED: set(),
        STAGE_CHANGED: {"to", "from"},
        SCORE_CHANGED: {"crosses", "direction"},
        ACTIVITY_RECORDED: {"type"},
    }.get(event, {"template"})
    errors = [f"{k}: not a filter of {event}." for k in sorted(set(t) - allowed - {"event"}, key=str)]
    clean = {"event": event}
    if event == STAGE_CHANGED:
        for key in ("to", "from"):
            if key in t:
                if t[key] not in Stage.values:
                    errors.append(f"{key}: one of {', '.join(Stage.values)}.")
                else:
                    clean[key] = t[key]
    elif event == SCORE_CHANGED:
        if not _int_in(t.get("crosses"), 0, MAX_SCORE):
            errors.append(f"crosses: the score (0 to {MAX_SCORE}) whose crossing triggers.")
        else:
            clean["crosses"] = t["crosses"]
        direction = t.get("direction", "up")
        if direction not in ("up", "down"):
            errors.append("direction: up or down.")
        else:
            clean["direction"] = direction
    elif event == ACTIVITY_RECORDED and "type" in t:
        if t["type"] not in TouchpointType.values:
            errors.append(f"type: one of {', '.join(TouchpointType.values)}.")
        else:
            clean["type"] = t["type"]
    elif event in EMAIL_EVENTS and "template" in t:
        if not inputs.is_id(t["template"]):
            errors.append("template: the id of an e-mail template.")
        else:
            clean["template"] = t["template"]
    return ({} if errors else clean), errors


def trigger_event(trigger: Mapping) -> str | None:
    """The domain event a (normal) trigger listens to; None for the timed ones."""
    if "segment_entered" in trigger:
        return SEGMENT_ENTERED
    if "segment_left" in trigger:
        return SEGMENT_LEFT
    return trigger.get("event")


def trigger_matches(trigger: Mapping, *, event: str, payload: Mapping) -> bool:
    """Whether an event (its name and payload, before any lead is read) may fire this
    trigger: the per-lead facts (which stage change, which score change) are read after."""
    if trigger_event(trigger) != event:
        return False
    if event in (SEGMENT_ENTERED, SEGMENT_LEFT):
        key = "segment_entered" if event == SEGMENT_ENTERED else "segment_left"
        return payload.get("segment_id") == trigger[key]
    if event == STAGE_CHANGED:
        to, src = payload.get("to_stage"), payload.get("from_stage")
        return (to is None or trigger.get("to", to) == to) and (src is None or trigger.get("from", src) == src)
    return True


def crosses(trigger: Mapping, old: int, new: int) -> bool:
    """Whether a score move old → new crosses the trigger's value in its direction."""
    value = trigger["crosses"]
    if trigger.get("direction", "up") == "down":
        return old >= value > new
    return old < value <= new


def actions_errors(actions: object) -> dict[str, list[str]]:
    """Field errors keyed like "actions[2]"."""
    if not isinstance(actions, list) or not actions:
        return {"actions": ["A list of at least one action."]}
    if len(actions) > MAX_ACTIONS:
        return {"actions": [f"At most {MAX_ACTIONS} actions."]}
    errors = {}
    for n, action in enumerate(actions):
        found = workflow_actions.action_errors(action)
        if found:
            errors[f"actions[{n}]"] = found
    return errors


def workflow_errors(
    *,
    name: object = None,
    trigger: object = None,
    conditions: object = None,
    actions: object = None,
    active: object = None,
    segment_ids: set[int] | None = None,
    partial: bool = False,
) -> tuple[dict, dict[str, list[str]]]:
    """(the given fields cleaned, field errors). With `partial`, absent (None) fields are
    not checked. `segment_ids` are the segments that exist, when known."""
    clean: dict = {}
    errors: dict[str, list[str]] = {}
    if name is not None or not partial:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or "\x00" in name:
            errors["name"] = [f"A name of 1 to {MAX_NAME} characters."]
        else:
            clean["name"] = name.strip()
    if active is not None:
        if not isinstance(active, bool):
            errors["active"] = ["true or false."]
        else:
            clean["active"] = active
    if trigger is not None or not partial:
        normal, problems = clean_trigger(trigger)
        if problems:
            errors["trigger"] = problems
        else:
            segment = normal.get("segment_entered") or normal.get("segment_left")
            if segment is not None and segment_ids is not None and segment not in segment_ids:
                errors["trigger"] = [f"Unknown segment {segment}."]
            clean["trigger"] = normal
    if conditions is not None or not partial:
        conditions = {} if conditions is None else conditions
        problems = condition_errors(conditions, segment_ids=segment_ids)
        if problems:
            errors["conditions"] = problems
        else:
            clean["conditions"] = conditions
    if actions is not None or not partial:
        problems = actions_errors(actions)
        errors.update(problems)
        if not problems:
            clean["actions"] = actions
    return clean, errors

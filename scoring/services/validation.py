"""What a rule set and its rules may hold: field errors (a 400, never a database error)
for the API, the admin forms and the page, and the rule fields each kind stores."""

from __future__ import annotations

import re

from leadcrm.userregex import compile_user_regex
from leads.models import TouchpointType
from leads.services import WRITABLE_FIELDS
from scoring import engine
from scoring.models import DEFAULT_GROUP, Operator

# Lead fields a fit rule may test (besides `properties.<key>`).
FIT_FIELDS = ("email", *WRITABLE_FIELDS, "consent_status")
EVENT_TYPES = tuple(TouchpointType.values)
RULESET_FIELDS = ("name", "description", "mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min")
FIT_RULE_FIELDS = ("name", "field", "operator", "value", "points")
ENGAGEMENT_RULE_FIELDS = (
    "name",
    "event_type",
    "url_pattern",
    "property_key",
    "property_value",
    "points",
    "cap",
    "cap_period_days",
    "half_life_days",
)


def int_in(value, low: int, high: int) -> bool:
    """An integer (not a boolean) from `low` to `high`."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _text_errors(data: dict, limits: dict[str, int | None], *, nullable: tuple[str, ...] = ()) -> dict:
    """Text fields given with another type or over their column's length: a 400, not a
    database error."""
    errors: dict[str, list[str]] = {}
    for name, limit in limits.items():
        if name not in data or (data[name] is None and name in nullable):
            continue
        if not isinstance(data[name], str):
            errors[name] = ["A string."]
        elif limit is not None and len(data[name]) > limit:
            errors[name] = [f"At most {limit} characters."]
    return errors


def validate_fit_rule(data: dict) -> dict[str, list[str]]:
    """Field errors of one fit rule (empty when valid)."""
    errors: dict[str, list[str]] = _text_errors(data, {"name": 200, "field": 150})
    name = data.get("field") or ""
    if "field" in errors:
        pass
    elif not name:
        errors["field"] = ["This field is required."]
    elif name.startswith("properties."):
        if not name[len("properties.") :].strip():
            errors["field"] = ["Name the custom field: properties.<key>."]
    elif name not in FIT_FIELDS:
        errors["field"] = [f"Unknown field {name!r}. Use one of {', '.join(FIT_FIELDS)} or properties.<key>."]
    op, value = data.get("operator"), data.get("value")
    if op not in Operator.values:
        errors["operator"] = [f"Unknown operator {op!r}. Use one of {', '.join(Operator.values)}."]
    elif op == Operator.IN and not (isinstance(value, list) and value):
        errors["value"] = ["`in` needs a non-empty list of values."]
    elif op in (Operator.EQUALS, Operator.CONTAINS) and (value in (None, "") or isinstance(value, (list, dict))):
        errors["value"] = [f"`{op}` needs one value (a string, number or boolean)."]
    elif op == Operator.RANGE:
        if not isinstance(value, dict) or not ({"min", "max"} & set(value)) or set(value) - {"min", "max"}:
            errors["value"] = ['`range` needs {"min": number, "max": number} (either may be left out).']
        elif any(v is not None and engine._number(v) is None for v in value.values()):
            errors["value"] = ["`range` bounds must be numbers."]
        elif (
            value.get("min") is not None
            and value.get("max") is not None
            and engine._number(value["min"]) > engine._number(value["max"])
        ):
            errors["value"] = ["`range` min is above max."]
    if not int_in(data.get("points"), -100, 100):
        errors["points"] = ["Points must be an integer between -100 and 100."]
    return errors


def validate_engagement_rule(data: dict) -> dict[str, list[str]]:
    """Field errors of one engagement rule (empty when valid)."""
    errors: dict[str, list[str]] = _text_errors(
        data, {"name": 200, "url_pattern": 500, "property_key": 100}, nullable=("url_pattern", "property_key")
    )
    if data.get("event_type") not in EVENT_TYPES:
        errors["event_type"] = [f"Unknown event type {data.get('event_type')!r}. Use one of {', '.join(EVENT_TYPES)}."]
    pattern = data.get("url_pattern") or ""
    if pattern and "url_pattern" not in errors:
        try:
            compile_user_regex(pattern)
        except (ValueError, TypeError) as exc:
            errors["url_pattern"] = [f"Not a valid regular expression: {exc}."]
    if data.get("property_value") not in (None, "") and not data.get("property_key"):
        errors["property_key"] = ["A property condition needs the property's key."]
    if not int_in(data.get("points"), -100, 100):
        errors["points"] = ["Points must be an integer between -100 and 100."]
    if data.get("cap") is not None and not int_in(data.get("cap"), 1, 1000):
        errors["cap"] = ["The cap must be an integer between 1 and 1000 points."]
    if data.get("cap_period_days") is not None:
        if not int_in(data.get("cap_period_days"), 1, 3650):
            errors["cap_period_days"] = ["The period must be between 1 and 3650 days."]
        elif data.get("cap") is None:
            errors["cap_period_days"] = ["A period needs a cap."]
    hl = data.get("half_life_days")
    if hl is not None and (isinstance(hl, bool) or not isinstance(hl, (int, float)) or not 0 < hl <= 3650):
        errors["half_life_days"] = ["The half-life must be a number of days between 0 and 3650."]
    return errors


def validate_ruleset(data: dict) -> dict[str, list[str]]:
    """Field errors of a rule set with its rules (`fit_rules[0].points`: one rule's field)."""
    errors: dict[str, list[str]] = _text_errors(data, {"name": 200, "description": None})
    for name in ("mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min"):
        if name in data and not int_in(data[name], 0, 100):
            errors[name] = ["An integer between 0 and 100."]
    if not errors and {"grade_a_min", "grade_b_min", "grade_c_min"} & set(data):
        a, b, c = (data.get(k, d) for k, d in (("grade_a_min", 75), ("grade_b_min", 50), ("grade_c_min", 25)))
        if not a >= b >= c:
            errors["grade_a_min"] = ["Grade bands must be ordered: A ≥ B ≥ C."]
    group = data.get("group", DEFAULT_GROUP)
    if not isinstance(group, str) or not re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", group):
        errors["group"] = ["A short slug (letters, digits, - and _)."]
    for kind, check in (("fit_rules", validate_fit_rule), ("engagement_rules", validate_engagement_rule)):
        rules = data.get(kind) or []
        if not isinstance(rules, list):
            errors[kind] = ["A list of rules."]
            continue
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                errors[f"{kind}[{i}]"] = ["A rule object."]
                continue
            for name, messages in check(rule).items():
                errors[f"{kind}[{i}].{name}"] = messages
    return errors


def picked(data: dict, names: tuple[str, ...]) -> dict:
    """The entries of `data` named in `names` (what a row stores)."""
    return {k: data[k] for k in names if k in data}


def fit_rule_values(data: dict) -> dict:
    """A fit rule's stored values."""
    return picked(data, FIT_RULE_FIELDS)


def engagement_rule_values(data: dict) -> dict:
    """An engagement rule's stored values: an absent or null URL pattern or property key
    is stored blank (the columns are not nullable)."""
    out = picked(data, ENGAGEMENT_RULE_FIELDS)
    out["url_pattern"] = out.get("url_pattern") or ""
    out["property_key"] = out.get("property_key") or ""
    return out

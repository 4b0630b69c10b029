"""The condition language of sequence branches and workflow conditions: plain data in, a
yes or no out, no database (the facts about a lead are read once, set-based, by
`nurturing.selectors.lead_facts`).

    {"all": [c, ...]}  {"any": [c, ...]}  {"not": c}  {} (always true)
    {"field": NAME, "op": OP, "value": V}
    {"segment": id}  {"opened_last": true}  {"clicked_last": true}

NAME is one of FIELDS or "properties.<key>"; OP one of OPS. `opened_last`/`clicked_last`
read the previous e-mail step of the enrollment (false outside a sequence).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from leadcrm import inputs

FIELDS = frozenset(
    {
        "score",
        "fit_score",
        "engagement_score",
        "grade",
        "stage",
        "country",
        "industry",
        "source",
        "company_size",
        "consent_status",
        "owner",
        "team",
    }
)
PROPERTIES = "properties."
OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "set", "unset")
MAX_DEPTH = 8
MAX_ITEMS = 50
MAX_VALUES = 100
MAX_TEXT = 200


@dataclass(frozen=True)
class LeadFacts:
    """What conditions read about one lead: its fields (FIELDS + "properties"), the segments
    it belongs to, and what it did with the enrollment's previous e-mail."""

    lead: dict
    segment_ids: frozenset[int] = field(default_factory=frozenset)
    opened_last: bool = False
    clicked_last: bool = False


def _scalar_ok(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_TEXT and "\x00" not in value
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    return value is None or isinstance(value, (bool, int))


def condition_errors(cond: object, *, segment_ids: set[int] | None = None) -> list[str]:
    """What is wrong with a condition ([] when it may be saved). `segment_ids`, when given,
    are the segments that exist (an unknown one is an error)."""
    errors: list[str] = []
    _check(cond, "", 0, segment_ids, errors)
    return errors[:20]


def _check(cond: object, where: str, depth: int, segment_ids: set[int] | None, errors: list[str]) -> None:
    at = f"{where}: " if where else ""
    if depth > MAX_DEPTH:
        errors.append(f"{at}conditions nest at most {MAX_DEPTH} deep.")
        return
    if not isinstance(cond, Mapping):
        errors.append(f"{at}a condition is a JSON object.")
        return
    if not cond:
        return
    keys = set(cond)
    if keys in ({"all"}, {"any"}):
        (key,) = keys
        items = cond[key]
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            errors.append(f"{at}{key}: a list of at most {MAX_ITEMS} conditions.")
            return
        for n, item in enumerate(items):
            _check(item, f"{where}.{key}[{n}]".lstrip("."), depth + 1, segment_ids, errors)
        return
    if keys == {"not"}:
        _check(cond["not"], f"{where}.not".lstrip("."), depth + 1, segment_ids, errors)
        return
    if keys == {"segment"}:
        value = cond["segment"]
        if not inputs.is_id(value):
            errors.append(f"{at}segment: the id of a segment.")
        elif segment_ids is not None and value not in segment_ids:
            errors.append(f"{at}segment: unknown segment {value}.")
        return
    if keys in ({"opened_last"}, {"clicked_last"}):
        (key,) = keys
        if not isinstance(cond[key], bool):
            errors.append(f"{at}{key}: true or false.")
        return
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        _check_field(cond, at, errors)
        return
    errors.append(f"{at}one of all, any, not, field/op/value, segment, opened_last, clicked_last.")


def _check_field(cond: Mapping, at: str, errors: list[str]) -> None:
    name, op = cond["field"], cond["op"]
    if not isinstance(name, str) or not (
        name in FIELDS or (name.startswith(PROPERTIES) and _scalar_ok(name) and len(name) > len(PROPERTIES))
    ):
        errors.append(f"{at}field: one of {', '.join(sorted(FIELDS))} or properties.<key>.")
    if op not in OPS:
        errors.append(f"{at}op: one of {', '.join(OPS)}.")
        return
    value = cond.get("value")
    if op in ("set", "unset"):
        return
    if "value" not in cond:
        errors.append(f"{at}value: required for {op}.")
    elif op in ("in", "not_in"):
        if not isinstance(value, list) or len(value) > MAX_VALUES or not all(_scalar_ok(v) for v in value):
            errors.append(f"{at}value: a list of at most {MAX_VALUES} values.")
    elif op in ("gt", "gte", "lt", "lte"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or not _scalar_ok(value):
            errors.append(f"{at}value: a number (or a text compared as text).")
    elif not _scalar_ok(value):
        errors.append(f"{at}value: a single value.")


def condition_holds(cond: dict, facts: LeadFacts) -> bool:
    """Whether the (valid) condition holds for these facts. Comparisons between values of
    unrelated types are false, never an error."""
    if not cond:
        return True
    if "all" in cond:
        return all(condition_holds(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(condition_holds(c, facts) for c in cond["any"])
    if "not" in cond:
        return not condition_holds(cond["not"], facts)
    if "segment" in cond:
        return cond["segment"] in facts.segment_ids
    if "opened_last" in cond:
        return facts.opened_last == bool(cond["opened_last"])
    if "clicked_last" in cond:
        return facts.clicked_last == bool(cond["clicked_last"])
    return _field_holds(cond, facts.lead)


def _value_of(name: str, lead: Mapping) -> object:
    if name.startswith(PROPERTIES):
        props = lead.get("properties") or {}
        return props.get(name[len(PROPERTIES) :]) if isinstance(props, Mapping) else None
    return lead.get(name)


def _same(a: object, b: object) -> bool:
    """Equal, with numbers and their text equal too ("5" == 5: properties come from forms)."""
    if a == b and type(a) is not bool and type(b) is not bool:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return isinstance(a, str) and isinstance(b, str) and a.casefold() == b.casefold()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if number == number else None
    return None


def _field_holds(cond: Mapping, lead: Mapping) -> bool:
    op, wanted = cond["op"], cond.get("value")
    value = _value_of(cond["field"], lead)
    if op == "set":
        return value not in (None, "", [], {})
    if op == "unset":
        return value in (None, "", [], {})
    if op == "eq":
        return _same(value, wanted)
    if op == "ne":
        return not _same(value, wanted)
    if op in ("in", "not_in"):
        found = any(_same(value, w) for w in (wanted or ()))
        return found if op == "in" else not found
    a, b = _number(value), _number(wanted)
    if a is None or b is None:
        if not (isinstance(value, str) and isinstance(wanted, str)):
            return False
        a, b = value, wanted  # type: ignore[assignment]
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]  # type: ignore[operator]

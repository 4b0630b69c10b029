"""What a segment's filter may say, checked and normalised: plain data in, plain data out.

The filter takes the leads list's filter names (SPEC "Public REST API": stage, owner, source,
score_min, score_max, grade, country, created_after, created_before, q) plus `team`,
`consent`, `properties` ({key: [values]}), `events` ([{type, within_days, min_count}]) and
`segments` (ids that must all hold). Errors come back per key, as the API answers them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from leadcrm import inputs

# What a segment adds to the leads list's own filter names (`list_keys` below, which the
# leads list's filter defines and checks the values of).
EXTRA_KEYS = frozenset({"team", "consent", "properties", "events", "segments"})
MAX_WINDOW_DAYS = 3650
MAX_EVENT_CONDITIONS = 10
MAX_PROPERTY_KEYS = 20
MAX_VALUES = 100


class FilterInvalid(ValueError):
    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(str(errors))
        self.errors = errors


def _text_ok(value: str) -> bool:
    """PostgreSQL's jsonb refuses a NUL character: refuse it here, as a field error."""
    return len(value) <= 200 and "\x00" not in value


def _scalar(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and not _text_ok(value))


def _values(value: object) -> list | None:
    """A value or a list of values, as a list; None when it is neither."""
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_VALUES or not all(_scalar(v) for v in values):
        return None
    return values


def _int(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return inputs.int_or_none(value, minimum=low, maximum=high)
    return value if isinstance(value, int) and low <= value <= high else None


def clean_filter(
    raw: object,
    *,
    list_keys: Iterable[str],
    multi_keys: Iterable[str],
    event_types: Iterable[str],
    consent_statuses: Iterable[str],
) -> dict:
    """The filter normalised (lists where a list is meant, ints where ids are meant), or
    FilterInvalid naming each bad key. `owner: "me"` is refused: a segment means the same
    leads whoever looks at it."""
    if not isinstance(raw, Mapping):
        raise FilterInvalid({"filter": ["Expected an object of filter names."]})
    errors: dict[str, list[str]] = {}
    out: dict = {}
    list_keys, multi_keys = frozenset(list_keys) - EXTRA_KEYS, frozenset(multi_keys)
    for key, value in raw.items():
        if key in list_keys:
            if key == "owner" and value == "me":
                errors[key] = ['A segment names its owner by id (or "none"), not "me".']
            elif key in multi_keys:
                values = _values(value)
                if values is None or not all(isinstance(v, str) for v in values):
                    errors[key] = ["A value or a list of values."]
                else:
                    out[key] = [str(v) for v in values]
            elif not _scalar(value):
                errors[key] = ["A single value."]
            else:
                out[key] = str(value)
        elif key == "team":
            team = _int(value, 1, 2**31)
            if team is None:
                errors[key] = ["A team id."]
            else:
                out[key] = team
        elif key == "consent":
            values = _values(value)
            allowed = set(consent_statuses)
            if values is None or not set(values) <= allowed:
                errors[key] = [f"Consent statuses among: {', '.join(sorted(allowed))}."]
            else:
                out[key] = sorted(set(values))
        elif key == "properties":
            props = _properties(value)
            if props is None:
                errors[key] = ["An object {key: value or [values]}, at most 20 keys."]
            else:
                out[key] = props
        elif key == "events":
            events, message = _events(value, set(event_types))
            if message:
                errors[key] = [message]
            else:
                out[key] = events
        elif key == "segments":
            ids = value if isinstance(value, list) else None
            ids = [_int(x, 1, 2**31) for x in ids] if ids is not None and len(ids) <= MAX_VALUES else None
            if ids is None or None in ids:
                errors[key] = ["A list of segment ids."]
            else:
                out[key] = sorted(set(ids))
        else:
            errors[key] = ["Unknown filter name."]
    if errors:
        raise FilterInvalid(errors)
    return out


def _properties(value: object) -> dict | None:
    if not isinstance(value, Mapping) or len(value) > MAX_PROPERTY_KEYS:
        return None
    out = {}
    for key, wanted in value.items():
        values = _values(wanted)
        if not isinstance(key, str) or not key or len(key) > 100 or not _text_ok(key) or values is None:
            return None
        out[key] = values
    return out


def _events(value: object, types: set[str]) -> tuple[list, str]:
    if not isinstance(value, list) or not value or len(value) > MAX_EVENT_CONDITIONS:
        return [], f"A list of 1 to {MAX_EVENT_CONDITIONS} conditions {{type, within_days, min_count}}."
    out = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"type", "within_days", "min_count"}:
            return [], "Each condition is {type, within_days, min_count}."
        if item.get("type") not in types:
            return [], f"Event types among: {', '.join(sorted(types))}."
        days = _int(item.get("within_days", 30), 1, MAX_WINDOW_DAYS)
        count = _int(item.get("min_count", 1), 1, 10_000)
        if days is None or count is None:
            return [], f"within_days is 1 to {MAX_WINDOW_DAYS}, min_count 1 to 10,000."
        out.append({"type": item["type"], "within_days": days, "min_count": count})
    return out, ""


def depends_on(segment_filters: Mapping[int, Mapping]) -> dict[int, set[int]]:
    return {pk: set(f.get("segments", ())) for pk, f in segment_filters.items()}


def evaluation_order(segment_filters: Mapping[int, Mapping]) -> list[int]:
    """Segments in an order where each comes after the segments its filter names (so one
    pass re-checks a lead everywhere). A cycle raises FilterInvalid."""
    deps = depends_on(segment_filters)
    order: list[int] = []
    state: dict[int, str] = {}

    def visit(pk: int, path: tuple[int, ...]) -> None:
        if state.get(pk) == "done":
            return
        if state.get(pk) == "open":
            chain = " → ".join(str(x) for x in (*path, pk))
            raise FilterInvalid({"segments": [f"Segments cannot include each other in a circle ({chain})."]})
        state[pk] = "open"
        for dep in sorted(deps.get(pk, ())):
            if dep in deps:
                visit(dep, (*path, pk))
        state[pk] = "done"
        order.append(pk)

    for pk in sorted(deps):
        visit(pk, ())
    return order


def has_time_window(segment_filter: Mapping) -> bool:
    """Leads leave such a segment as time passes, with no event: a periodic check re-runs it."""
    return bool(segment_filter.get("events"))

"""The score as pure functions: lead facts + events + rules + now → fit, engagement, total,
grade and the rules that contributed. No database, no Django: unit-tested on plain values.

- Fit: the sum of the points of every fit rule whose condition holds, clamped to 0–100.
- Engagement: for every event, each engagement rule of its type (whose URL pattern and
  property condition hold) gives its points, decayed by age (halved every `half_life_days`).
  A rule counts at most `cap` raw points (absolute value) per period of `cap_period_days`
  (over the whole history without a period); events count in time order. The sum is clamped
  to 0–100.
- Total: fit + engagement, clamped to 0–100. Grade: from fit, by the rule set's bands.

Hot path (1,000,000 leads in a full rescore): rules are compiled once (`compile_ruleset`),
events are tuples (`Event`), so a lead costs a few dict look-ups per rule and per event.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from leadcrm.userregex import compile_user_regex

DAY = 86400.0
OPERATORS = ("equals", "in", "contains", "range", "exists")


@dataclass(frozen=True)
class LeadFacts:
    """What fit rules read: standard fields by name and the custom `properties`."""

    id: int
    fields: dict[str, Any]
    properties: dict[str, Any] = field(default_factory=dict)


class Event(NamedTuple):
    """One touchpoint. A tuple so the rescore streams rows straight from the database;
    `occurred_at` is a UNIX timestamp (seconds)."""

    type: str
    occurred_at: float
    url: str = ""
    properties: dict | None = None


@dataclass(frozen=True)
class FitRule:
    id: int
    name: str
    field: str  # a lead field, or properties.<key>
    operator: str
    value: Any
    points: int


@dataclass(frozen=True)
class EngagementRule:
    id: int
    name: str
    event_type: str
    points: int
    url_pattern: str = ""
    property_key: str = ""
    property_value: Any = None
    cap: int | None = None
    cap_period_days: int | None = None
    half_life_days: float | None = None


@dataclass(frozen=True)
class RuleSet:
    id: int
    fit_rules: tuple[FitRule, ...] = ()
    engagement_rules: tuple[EngagementRule, ...] = ()
    mql_threshold: int = 50
    grade_a_min: int = 75
    grade_b_min: int = 50
    grade_c_min: int = 25


class Contribution(NamedTuple):
    rule: int
    name: str
    kind: str  # fit / engagement
    points: float

    def as_json(self) -> dict:
        return {"rule": self.rule, "name": self.name, "kind": self.kind, "points": round(self.points, 2)}


class Score(NamedTuple):
    """A tuple: a full rescore makes a million of them (a frozen dataclass costs 3× more)."""

    fit: int
    engagement: int
    total: int
    grade: str
    contributions: Sequence[Contribution] = ()

    @property
    def reasons(self) -> list[dict]:
        return [c.as_json() for c in self.contributions]


# --- fit conditions -----------------------------------------------------------------------


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _same(a: Any, b: Any) -> bool:
    """Strings compare case-insensitively; numbers numerically ("250" equals 250)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b or _norm(str(a)) == _norm(str(b))
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return _norm(str(a)) == _norm(str(b))


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _one_of(options: list) -> Callable[[Any], bool]:
    """equals / in: a set look-up for the usual case (a string or a number), `_same` for
    the rest (booleans, numbers written as strings)."""
    texts = {_norm(o) for o in options if isinstance(o, str)}
    numbers = {float(n) for n in (_number(o) for o in options) if n is not None}
    general = [o for o in options if isinstance(o, bool)]

    def check(v: Any) -> bool:
        if v is None or v == "":
            return False
        if isinstance(v, bool):
            return any(_same(v, o) for o in general) or _norm(str(v)) in texts
        if isinstance(v, str):
            if v.strip().lower() in texts:
                return True
            n = _number(v) if numbers else None
            return n is not None and n in numbers
        if isinstance(v, (int, float)):
            return float(v) in numbers
        return any(_same(v, o) for o in options)

    return check


def condition(operator: str, expected: Any) -> Callable[[Any], bool]:
    """A predicate on one value for a fit rule's operator and value."""
    if operator == "equals":
        return _one_of([expected])
    if operator == "in":
        return _one_of(list(expected or []))
    if operator == "contains":
        needle = _norm(str(expected))

        def contains(v: Any) -> bool:
            if isinstance(v, (list, tuple)):
                return any(_same(x, expected) for x in v)
            return _present(v) and needle in _norm(str(v))

        return contains
    if operator == "range":
        low, high = _number((expected or {}).get("min")), _number((expected or {}).get("max"))

        def in_range(v: Any) -> bool:
            n = _number(v)
            return n is not None and (low is None or n >= low) and (high is None or n <= high)

        return in_range
    if operator == "exists":
        return _present
    raise ValueError(f"Unknown operator {operator!r}")


MEMO_SIZE = 4096


def memoized(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """`check` with its answers remembered per value: a million leads share a few hundred
    industries, countries and titles. Keyed by type too (True == 1, but not for a rule);
    unhashable values (lists) are checked every time; the memo is bounded."""
    memo: dict[tuple[type, Any], bool] = {}

    def cached(v: Any) -> bool:
        key = (v.__class__, v)
        try:
            return memo[key]
        except KeyError:
            pass
        except TypeError:
            return check(v)
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        answer = memo[key] = check(v)
        return answer

    return cached


def lead_value(lead: LeadFacts, path: str) -> Any:
    if path.startswith("properties."):
        return lead.properties.get(path[len("properties.") :])
    return lead.fields.get(path)


# --- compiled rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class _CompiledEngagement:
    rule: EngagementRule
    url: Callable[[str], bool] | None  # does the URL pattern match
    prop_check: Callable[[Any], bool] | None
    period: float | None  # seconds
    half_life: float | None  # seconds
    points: float


@dataclass(frozen=True)
class CompiledRuleSet:
    ruleset: RuleSet
    fit: tuple[tuple[FitRule, bool, str, Callable[[Any], bool]], ...]  # rule, in properties, key, check
    by_type: dict[str, tuple[_CompiledEngagement, ...]]
    names: dict[int, str]
    # Each rule's reason as JSON text, or its text up to the points: a full rescore encodes
    # a million leads' reasons by joining these (json.dumps of the dicts cost ~20 % of it).
    json_fit: dict[int, str]
    json_engagement: dict[int, str]


def _searcher(pattern) -> Callable[[str], bool]:
    return lambda url: pattern.search(url) is not None


def compile_ruleset(rules: RuleSet) -> CompiledRuleSet:
    by_type: dict[str, list[_CompiledEngagement]] = {}
    for r in rules.engagement_rules:
        by_type.setdefault(r.event_type, []).append(
            _CompiledEngagement(
                rule=r,
                url=memoized(_searcher(compile_user_regex(r.url_pattern))) if r.url_pattern else None,
                prop_check=memoized(condition("equals", r.property_value)) if r.property_key else None,
                period=r.cap_period_days * DAY if r.cap_period_days else None,
                half_life=r.half_life_days * DAY if r.half_life_days else None,
                points=float(r.points),
            )
        )
    return CompiledRuleSet(
        ruleset=rules,
        fit=tuple(
            (
                r,
                r.field.startswith("properties."),
                r.field.removeprefix("properties."),
                memoized(condition(r.operator, r.value)),
            )
            for r in rules.fit_rules
        ),
        by_type={k: tuple(v) for k, v in by_type.items()},
        names={r.id: r.name for r in rules.engagement_rules},
        json_fit={r.id: json.dumps(Contribution(r.id, r.name, "fit", r.points).as_json()) for r in rules.fit_rules},
        json_engagement={r.id: _json_prefix(r.id, r.name, "engagement") for r in rules.engagement_rules},
    )


def _json_prefix(rule_id: int, name: str, kind: str) -> str:
    return json.dumps({"rule": rule_id, "name": name, "kind": kind, "points": 0})[: -len("0}")]


def reasons_json(compiled: CompiledRuleSet, score: Score) -> str:
    """`score.reasons` as JSON text (the same document as `json.dumps(score.reasons)`)."""
    parts = []
    for c in score.contributions:
        if c.kind == "fit":
            parts.append(compiled.json_fit[c.rule])
        else:
            parts.append(f"{compiled.json_engagement[c.rule]}{round(c.points, 2)!r}}}")
    return f"[{', '.join(parts)}]"


def clamp(value: float, low: int = 0, high: int = 100) -> int:
    return int(max(low, min(high, round(value))))


def grade_for(fit: int, rules: RuleSet) -> str:
    if fit >= rules.grade_a_min:
        return "A"
    if fit >= rules.grade_b_min:
        return "B"
    if fit >= rules.grade_c_min:
        return "C"
    return "D"


def decay(points: float, age_seconds: float, half_life_seconds: float | None) -> float:
    if not half_life_seconds or age_seconds <= 0:
        return points
    return points * math.pow(0.5, age_seconds / half_life_seconds)


def fit_points(compiled: CompiledRuleSet, lead: LeadFacts) -> tuple[float, list[Contribution]]:
    total, fired = 0.0, []
    fields, props = lead.fields, lead.properties
    for rule, in_props, key, check in compiled.fit:
        if check(props.get(key) if in_props else fields.get(key)):
            total += rule.points
            fired.append(Contribution(rule.id, rule.name, "fit", rule.points))
    return total, fired


def engagement_points(
    compiled: CompiledRuleSet, events: Iterable[Event], now: float
) -> tuple[float, list[Contribution]]:
    """Events in any order (any tuple whose first items are type, occurred_at, url,
    properties); they are counted oldest first, so a cap keeps the earliest."""
    by_type = compiled.by_type
    per_rule: dict[int, float] = {}
    used: dict[tuple[int, int], float] = {}  # (rule, period bucket) → raw points counted
    if not isinstance(events, (list, tuple)):
        events = list(events)
    if len(events) > 1:
        events = sorted(events, key=itemgetter(1))
    for ev in events:
        candidates = by_type.get(ev[0])
        if candidates is None:
            continue
        age = now - ev[1]
        if age < 0:
            continue  # from the future (backtests score as of a past date)
        for c in candidates:
            r = c.rule
            if c.url is not None and not c.url(ev[2] or ""):
                continue
            if c.prop_check is not None and not c.prop_check((ev[3] or {}).get(r.property_key)):
                continue
            raw = c.points
            if r.cap is not None:
                key = (r.id, int(age // c.period) if c.period else 0)
                room = r.cap - used.get(key, 0.0)
                if room <= 0:
                    continue
                if abs(raw) > room:
                    raw = math.copysign(room, raw)
                used[key] = used.get(key, 0.0) + abs(raw)
            if c.half_life is not None and age > 0:
                raw *= 0.5 ** (age / c.half_life)
            per_rule[r.id] = per_rule.get(r.id, 0.0) + raw
    if not per_rule:
        return 0.0, []
    names = compiled.names
    fired = [
        Contribution(rule_id, names[rule_id], "engagement", pts)
        for rule_id, pts in per_rule.items()
        if abs(pts) >= 0.005
    ]
    return sum(per_rule.values()), fired


def score_lead(compiled: CompiledRuleSet, lead: LeadFacts, events: Iterable[Event], now: float) -> Score:
    """The whole score of one lead at `now` (UNIX seconds)."""
    fit_raw, fired = fit_points(compiled, lead)
    eng_raw, eng_fired = engagement_points(compiled, events, now) if events != [] else (0.0, [])
    fit = 0 if fit_raw <= 0 else 100 if fit_raw >= 100 else int(round(fit_raw))
    engagement = 0 if eng_raw <= 0 else 100 if eng_raw >= 100 else int(round(eng_raw))
    rs = compiled.ruleset
    grade = "A" if fit >= rs.grade_a_min else "B" if fit >= rs.grade_b_min else "C" if fit >= rs.grade_c_min else "D"
    if eng_fired:
        fired += eng_fired
    return Score(fit=fit, engagement=engagement, total=min(100, fit + engagement), grade=grade, contributions=fired)


def score(rules: RuleSet, lead: LeadFacts, events: Iterable[Event], now: float) -> Score:
    """Convenience for one lead: compiles the rules, then `score_lead`."""
    return score_lead(compile_ruleset(rules), lead, events, now)


# --- backtest -----------------------------------------------------------------------------

BANDS = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 100))


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """ROC AUC by ranks (Mann–Whitney U), ties counted half. None without both classes."""
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: p[0])
    pos = sum(1 for _, y in pairs if y)
    neg = len(pairs) - pos
    if not pos or not neg:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        avg_rank = (i + 1 + j) / 2  # ranks i+1 .. j
        rank_sum += avg_rank * sum(1 for k in range(i, j) if pairs[k][1])
        i = j
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def conversion_by_band(scores: Sequence[int], labels: Sequence[int]) -> list[dict]:
    rows = []
    for low, high in BANDS:
        ys = [y for s, y in zip(scores, labels, strict=True) if low <= s <= high]
        rows.append(
            {
                "band": f"{low}–{high}",
                "min": low,
                "max": high,
                "leads": len(ys),
                "won": sum(ys),
                "conversion": round(sum(ys) / len(ys), 4) if ys else None,
            }
        )
    return rows

"""The router's decisions, pure: no database, no clock, plain dataclasses in and out.

- rules: `compile_rules` turns rule rows into predicates once; `match` returns the first
  rule whose conditions all hold, with what each condition saw (the "why").
- sellers: `choose_seller` is a weighted fair round-robin (virtual finish time): the
  available seller under capacity with the lowest `(served + 1) / weight` is next, so
  over time each seller's share of a team's leads is exactly their share of the weights.
- SLA: `add_business_minutes` counts working minutes in a time zone across nights and
  weekends; `choose_policy` picks the most specific SLA policy for a grade and stage.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

LIST_KEYS = ("country", "region", "industry", "source", "grade", "stage")
RANGE_KEYS = ("company_size_min", "company_size_max", "score_min", "score_max")
CONDITION_KEYS = frozenset((*LIST_KEYS, *RANGE_KEYS, "properties"))


# --- rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadFacts:
    """What the rules look at, read from a lead (and its company)."""

    id: int
    country: str = ""
    industry: str = ""
    source: str = ""
    grade: str = ""
    stage: str = ""
    company_size: int | None = None
    score: int = 0
    properties: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    kind: str  # team / user / partner / partners_by_territory
    id: int | None = None


@dataclass(frozen=True)
class RuleSpec:
    id: int
    name: str
    position: int
    conditions: Mapping[str, object]
    target: Target


@dataclass(frozen=True)
class Match:
    rule: RuleSpec
    matched: dict[str, object]  # condition → the lead's value that satisfied it


def _norm(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value).strip().casefold()


def validate_conditions(conditions: object, regions: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Field errors for a `conditions` object (SPEC "Admin API"); empty when valid."""
    if not isinstance(conditions, dict):
        return {"conditions": ["Must be an object."]}
    errors: dict[str, list[str]] = {}
    known_regions = {_norm(r) for r in regions} if regions is not None else None
    for key, value in conditions.items():
        if key not in CONDITION_KEYS:
            errors[key] = [f"Unknown condition; use one of {', '.join(sorted(CONDITION_KEYS))}."]
        elif key in LIST_KEYS:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
                errors[key] = ["A non-empty list of strings."]
            elif key == "region" and known_regions is not None:
                unknown = [v for v in value if _norm(v) not in known_regions]
                if unknown:
                    errors[key] = [f"Unknown territory: {', '.join(unknown)}."]
        elif key in RANGE_KEYS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                errors[key] = ["A number."]
        elif key == "properties":
            if not isinstance(value, dict) or not value:
                errors[key] = ["An object {key: [values]}."]
            elif not all(isinstance(v, list) and v for v in value.values()):
                errors[key] = ["Each property needs a non-empty list of values."]
    for low, high in (("company_size_min", "company_size_max"), ("score_min", "score_max")):
        if low in conditions and high in conditions and not errors.get(low) and not errors.get(high):
            if conditions[low] > conditions[high]:
                errors[low] = [f"Greater than {high}."]
    return errors


# A predicate reads the lead's normalised view (computed once per lead, not per rule).
Predicate = Callable[[dict], bool]
# Which lead value each condition looked at, for the "why" of the winning rule.
_SHOWN = {
    "country": "country",
    "region": "country",
    "industry": "industry",
    "source": "source",
    "grade": "grade",
    "stage": "stage",
    "company_size_min": "company_size",
    "company_size_max": "company_size",
    "score_min": "score",
    "score_max": "score",
}


@dataclass(frozen=True)
class CompiledRule:
    spec: RuleSpec
    predicates: tuple[tuple[str, Predicate], ...]


def _view(lead: LeadFacts) -> dict:
    return {
        "country": _norm(lead.country),
        "industry": _norm(lead.industry),
        "source": _norm(lead.source),
        "grade": _norm(lead.grade),
        "stage": _norm(lead.stage),
        "company_size": lead.company_size,
        "score": lead.score,
        "properties": lead.properties,
    }


def _in_set(attr: str, values: frozenset[str]) -> Predicate:
    return lambda v: v[attr] in values


def _at_least(attr: str, bound: float) -> Predicate:
    return lambda v: v[attr] is not None and v[attr] >= bound


def _at_most(attr: str, bound: float) -> Predicate:
    return lambda v: v[attr] is not None and v[attr] <= bound


def _property_in(key: str, values: frozenset[str]) -> Predicate:
    def check(v: dict) -> bool:
        value = v["properties"].get(key)
        if isinstance(value, list):
            return any(_norm(x) in values for x in value)
        return value is not None and _norm(value) in values

    return check


def compile_rule(spec: RuleSpec, regions: Mapping[str, Iterable[str]] | None = None) -> CompiledRule:
    """Predicates for one rule. `regions` maps a territory name to its country codes."""
    regions = {_norm(k): frozenset(_norm(c) for c in v) for k, v in (regions or {}).items()}
    preds: list[tuple[str, Predicate]] = []
    c = spec.conditions
    for key in ("country", "industry", "source", "grade", "stage"):
        if key in c:
            preds.append((key, _in_set(key, frozenset(_norm(v) for v in c[key]))))
    if "region" in c:
        countries = frozenset().union(*(regions.get(_norm(n), frozenset()) for n in c["region"]))
        preds.append(("region", _in_set("country", countries)))
    for key, attr in (("company_size_min", "company_size"), ("score_min", "score")):
        if key in c:
            preds.append((key, _at_least(attr, c[key])))
    for key, attr in (("company_size_max", "company_size"), ("score_max", "score")):
        if key in c:
            preds.append((key, _at_most(attr, c[key])))
    for prop, values in (c.get("properties") or {}).items():
        preds.append((f"properties.{prop}", _property_in(prop, frozenset(_norm(v) for v in values))))
    return CompiledRule(spec, tuple(preds))


def compile_rules(specs: Iterable[RuleSpec], regions: Mapping[str, Iterable[str]] | None = None) -> list[CompiledRule]:
    return [compile_rule(s, regions) for s in sorted(specs, key=lambda s: (s.position, s.id))]


def _shown(lead: LeadFacts, key: str) -> object:
    if key.startswith("properties."):
        return lead.properties.get(key.split(".", 1)[1])
    return getattr(lead, _SHOWN[key])


def conditions_hold(rule: CompiledRule, lead: LeadFacts, view: dict | None = None) -> dict[str, object] | None:
    view = view if view is not None else _view(lead)
    for _key, pred in rule.predicates:
        if not pred(view):
            return None
    return {key: _shown(lead, key) for key, _ in rule.predicates}


def match(
    lead: LeadFacts, rules: Sequence[CompiledRule], skip: Callable[[RuleSpec], bool] | None = None
) -> Match | None:
    """The first rule (by position) whose every condition holds; `skip` leaves out rules
    whose target cannot take this lead (a partner that declined it, one outside its
    territory)."""
    view = _view(lead)
    for rule in rules:
        for _key, pred in rule.predicates:
            if not pred(view):
                break
        else:
            if skip is not None and skip(rule.spec):
                continue
            return Match(rule.spec, {key: _shown(lead, key) for key, _ in rule.predicates})
    return None


# --- sellers ------------------------------------------------------------------------------


@dataclass
class Seller:
    id: int
    weight: int = 1
    capacity: int = 50
    load: int = 0  # open leads now
    served: int = 0  # leads received from the round-robin so far
    available: bool = True  # active and not away
    languages: frozenset[str] = frozenset()
    skills: frozenset[str] = frozenset()

    @property
    def has_room(self) -> bool:
        return self.available and self.weight > 0 and self.load < self.capacity


def choose_seller(
    sellers: Iterable[Seller],
    *,
    exclude: Iterable[int] = (),
    language: str = "",
    skill: str = "",
) -> Seller | None:
    """Weighted fair round-robin among sellers with room. Sellers speaking the lead's
    language, then those covering its product line, are preferred when there are any."""
    excluded = set(exclude)
    pool = [s for s in sellers if s.has_room and s.id not in excluded]
    if not pool:
        return None
    if language:
        lang = _norm(language)
        speakers = [s for s in pool if lang in s.languages]
        pool = speakers or pool
    if skill:
        sk = _norm(skill)
        skilled = [s for s in pool if sk in s.skills]
        pool = skilled or pool
    return min(pool, key=lambda s: ((s.served + 1) / s.weight, -s.weight, s.id))


def take(seller: Seller) -> None:
    seller.served += 1
    seller.load += 1


def seed_served(weight: int, others: Iterable[Seller]) -> int:
    """A newcomer's starting counter: level with the team, so they get their share from now
    on instead of a burst that 'catches up' on the past."""
    levels = [s.served / s.weight for s in others if s.weight > 0]
    return int(min(levels) * weight) if levels else 0


# --- SLA ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    tz: str = "Europe/Paris"
    day_start: dt.time = dt.time(9, 0)
    day_end: dt.time = dt.time(18, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})

    def _window(self, day: dt.date, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime] | None:
        if day.weekday() not in self.weekdays or self.day_end <= self.day_start:
            return None
        start = dt.datetime.combine(day, self.day_start, tzinfo=zone).astimezone(dt.UTC)
        end = dt.datetime.combine(day, self.day_end, tzinfo=zone).astimezone(dt.UTC)
        return start, end


def add_business_minutes(start: dt.datetime, minutes: float, hours: BusinessHours) -> dt.datetime:
    """The moment `minutes` working minutes after `start` (aware), in UTC. Outside hours
    the clock waits for the next opening: Friday 17:30 + 60 min → Monday 09:30."""
    if not hours.weekdays or hours.day_end <= hours.day_start:
        return start + dt.timedelta(minutes=minutes)  # no business hours: wall-clock time
    zone = zoneinfo.ZoneInfo(hours.tz)
    remaining = dt.timedelta(minutes=minutes)
    cursor = start.astimezone(dt.UTC)
    day = start.astimezone(zone).date()
    for _ in range(3700):
        window = hours._window(day, zone)
        if window is not None:
            open_, close = window
            begin = max(cursor, open_)
            if begin < close:
                span = close - begin
                if remaining <= span:
                    return begin + remaining
                remaining -= span
        day += dt.timedelta(days=1)
    raise ValueError("No business hours within ten years.")


def business_minutes_between(a: dt.datetime, b: dt.datetime, hours: BusinessHours) -> float:
    """Working minutes from `a` to `b` (0 when b <= a)."""
    if b <= a:
        return 0.0
    if not hours.weekdays or hours.day_end <= hours.day_start:
        return (b - a).total_seconds() / 60
    zone = zoneinfo.ZoneInfo(hours.tz)
    total = dt.timedelta()
    day, last = a.astimezone(zone).date(), b.astimezone(zone).date()
    while day <= last:
        window = hours._window(day, zone)
        if window is not None:
            lo, hi = max(a, window[0]), min(b, window[1])
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total.total_seconds() / 60


@dataclass(frozen=True)
class SlaRule:
    id: int
    grade: str = ""
    stage: str = ""
    minutes: int = 60
    reassign_minutes: int | None = None
    hours: BusinessHours = BusinessHours()


def choose_policy(policies: Iterable[SlaRule], *, grade: str, stage: str) -> SlaRule | None:
    """The most specific policy: grade and stage, then grade, then stage, then catch-all."""
    best, best_rank = None, -1
    for p in policies:
        if (p.grade and p.grade != grade) or (p.stage and p.stage != stage):
            continue
        rank = (2 if p.grade else 0) + (1 if p.stage else 0)
        if rank > best_rank or (rank == best_rank and best is not None and p.id < best.id):
            best, best_rank = p, rank
    return best

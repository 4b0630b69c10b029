"""The router's decisions, pure: no database, no clock, plain dataclasses in and out.

- rules: `compile_rules` turns rule rows into predicates once; `match` returns the first
  rule whose conditions all hold, with what each condition saw (the "why").
- sellers: `choose_seller` is a weighted fair round-robin (virtual finish time): the
  available seller under capacity with the lowest `(served + 1) / weight` is next, so
  over time each seller's share of a team's leads is exactly their share of the weights.
- SLA: `add_business_minutes` counts working minutes in a time zone across nights and
  weekends; `choose_policy` picks the most specific SLA policy for a grade and stage.
- the decision: `plan_routes` takes the leads and what the router knows (`RoutingContext`)
  and says, for each lead, who gets it and why (`RoutePlan`): the company's owner, else the
  first matching rule (a team's round-robin, a named seller, a partner), else the default
  team; a named seller without room sends the lead to their team, a team without room to
  its pool. `routing.services.assignment` writes the plans, for one lead or ten thousand.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

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
    # What the router needs besides the rules (defaults: a new unowned lead, no company).
    owner_id: int | None = None
    team_id: int | None = None
    account_owner_id: int | None = None  # the owner of the lead's company
    company: object = None  # how the "why" names that company (see `plan_routes`)
    excluded_users: frozenset[int] = frozenset()  # not to them (the owner it is taken from)
    declined_partners: frozenset[int] = frozenset()  # partners that declined it or let it lapse


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
    username: str = ""  # how the "why" names them

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


# --- the routing decision -----------------------------------------------------------------


@dataclass(frozen=True)
class PartnerFacts:
    """A partner as the router sees it."""

    id: int
    name: str
    user_id: int  # its login, which owns the leads offered to it
    user_team_id: int | None = None
    weight: int = 1
    response_hours: int = 48
    takes_offers: bool = True  # the partner and its login are active
    countries: frozenset[str] = frozenset()  # upper case; none: no territory


@dataclass(frozen=True)
class Person:
    """A user the router names: a company's owner or a rule's named seller."""

    id: int
    username: str
    team_id: int | None = None
    capacity: int = 50
    takes_leads: bool = True  # an active seller who is not away


@dataclass
class RoutingContext:
    """What the router knows for one routing (one lead or a batch): the rules, the default
    team, the partners and their pending offers, the people named by companies and rules,
    each team's round-robin sellers, and every one's open leads. `now` dates the partners'
    deadlines. The planner never changes it."""

    rules: Sequence[CompiledRule] = ()
    default_team_id: int | None = None
    partners: Mapping[int, PartnerFacts] = field(default_factory=dict)
    people: Mapping[int, Person] = field(default_factory=dict)
    teams: Mapping[int, Sequence[Seller]] = field(default_factory=dict)
    loads: Mapping[int, int] = field(default_factory=dict)
    pending_offers: Mapping[int, int] = field(default_factory=dict)
    now: dt.datetime | None = None

    def partner_takes(self, partner_id: int | None, lead: LeadFacts) -> bool:
        """An active partner that has not turned the lead down and covers its country (a
        partner without territories covers any country when a rule names it)."""
        partner = self.partners.get(partner_id)
        if partner is None or not partner.takes_offers or partner.id in lead.declined_partners:
            return False
        return not partner.countries or lead.country.upper() in partner.countries

    def partners_covering(self, lead: LeadFacts) -> list[PartnerFacts]:
        return [p for p in self.partners.values() if p.countries and self.partner_takes(p.id, lead)]

    def target_skipped(self, lead: LeadFacts, target: Target) -> bool:
        """A rule whose partner target cannot take this lead is passed over."""
        if target.kind == "partner":
            return not self.partner_takes(target.id, lead)
        if target.kind == "partners_by_territory":
            return not self.partners_covering(lead)
        return False


@dataclass(frozen=True)
class Aim:
    """Where a lead is pointed before anyone's room is looked at: its company's owner
    (`account`), a rule's target (`team`, `user`, `partner`, `partners_by_territory`; the
    default team is a `team`), or nowhere (`none`). `info` is the rule part of the "why"."""

    kind: str
    id: int | None = None
    info: Mapping[str, object] = field(default_factory=dict)
    rule_id: int | None = None
    rule_name: str = ""


@dataclass(frozen=True)
class RoutePlan:
    """One lead's routing: its outcome, its owner and team after, and why.

    outcome: assigned / pool / partner / unmatched. `writes`: the lead's owner or team
    changes (an Assignment row); a lead routed again to the seller or pool it is in is not
    written. `reason` is the default text of the Assignment row."""

    lead_id: int
    outcome: str
    owner_id: int | None = None
    team_id: int | None = None
    partner_id: int | None = None
    reason: str = ""
    details: Mapping[str, object] = field(default_factory=dict)
    writes: bool = False
    rule_id: int | None = None  # the rule behind a partner offer
    deadline: dt.datetime | None = None  # a partner's answer is due


def route_aims(leads: Sequence[LeadFacts], context: RoutingContext) -> list[Aim]:
    """Each lead's aim, in order: its company's owner when they take leads (and the lead is
    not being taken from them), else the first rule that matches and whose partner target
    can take it, else the default team.

    The account-owner "why" is `{"method": "account", "rule": None, "matched": {"company":
    ...}}` where the company is named as `LeadFacts.company` says (the routing service
    gives its name, else its domain, else its id): what the lead's history shows."""
    aims = []
    for lead in leads:
        owner = context.people.get(lead.account_owner_id) if lead.account_owner_id else None
        if owner is not None and owner.takes_leads and owner.id not in lead.excluded_users:
            info = {"method": "account", "rule": None, "matched": {"company": lead.company}}
            aims.append(Aim("account", owner.id, info))
            continue
        m = match(lead, context.rules, skip=lambda spec, lead=lead: context.target_skipped(lead, spec.target))
        if m is not None:
            info = {"rule": {"id": m.rule.id, "name": m.rule.name}, "matched": m.matched}
            aims.append(Aim(m.rule.target.kind, m.rule.target.id, info, m.rule.id, m.rule.name))
        elif context.default_team_id:
            aims.append(Aim("team", context.default_team_id, {"rule": None, "matched": {}, "default_team": True}))
        else:
            aims.append(Aim("none", None, {"rule": None, "matched": {}}))
    return aims


def lead_hints(props: Mapping[str, object]) -> tuple[str, str]:
    """The language and product line a lead asks for, from its custom properties."""
    lang = props.get("language") or props.get("lang") or ""
    skill = props.get("product_interest") or props.get("product_line") or ""
    return (str(lang) if not isinstance(lang, list) else "", str(skill) if not isinstance(skill, list) else "")


def load_label(seller: Seller) -> str:
    return f"{seller.load}/{seller.capacity}" + ("" if seller.available else " away")


def plan_routes(
    leads: Sequence[LeadFacts], context: RoutingContext, aims: Sequence[Aim] | None = None
) -> list[RoutePlan]:
    """Route the leads in order, each seeing the loads, round-robin counters and pending
    offers the earlier ones left: a batch decides exactly what routing them one by one
    would. `aims` (from `route_aims`) when the caller already has them.

    - account owner: theirs, whatever their load;
    - named seller: theirs while under capacity, else their team's round-robin (the "why"
      says `named_unavailable`), else unmatched when they have no team;
    - team: weighted round-robin among sellers with room (`choose_seller`; the "why" has
      every seller's load when the choice is made), else the team's pool;
    - partner: offered (the explicit one, or the covering partner with the fewest pending
      offers per unit of weight), answer due after its response hours;
    - nowhere: unmatched; a lead a partner held goes back to nobody."""
    aims = list(aims) if aims is not None else route_aims(leads, context)
    loads = dict(context.loads)
    teams = {t: [replace(s) for s in sellers] for t, sellers in context.teams.items()}
    seats = {s.id: s for sellers in teams.values() for s in sellers}
    pending = dict(context.pending_offers)
    partner_users = {p.user_id for p in context.partners.values()}

    def give(user_id: int) -> None:
        loads[user_id] = loads.get(user_id, 0) + 1
        if user_id in seats:
            seats[user_id].load = loads[user_id]

    def plan(lead: LeadFacts, outcome: str, owner_id, team_id, reason: str, details: dict, **more) -> RoutePlan:
        changes = (owner_id, team_id) != (lead.owner_id, lead.team_id)
        return RoutePlan(lead.id, outcome, owner_id, team_id, reason=reason, details=details, writes=changes, **more)

    plans = []
    for lead, aim in zip(leads, aims, strict=True):
        info = dict(aim.info)
        kind, target = aim.kind, aim.id
        if kind == "account":
            person = context.people[target]
            give(person.id)
            plans.append(plan(lead, "assigned", person.id, person.team_id, "Account owner", info))
            continue
        if kind == "none":
            if lead.owner_id is not None and lead.owner_id in partner_users:
                # Recalled from a partner and no rule takes it: back to nobody (or its pool).
                details = {"method": "unmatched", **info}
                plans.append(plan(lead, "unmatched", None, lead.team_id, "No routing rule matched", details))
            else:
                plans.append(RoutePlan(lead.id, "unmatched", None, lead.team_id, details=info))
            continue
        if kind in ("partner", "partners_by_territory"):
            if kind == "partner":
                partner = context.partners[target]
            else:
                partner = min(
                    context.partners_covering(lead), key=lambda p: ((pending.get(p.id, 0) + 1) / p.weight, p.id)
                )
            pending[partner.id] = pending.get(partner.id, 0) + 1
            deadline = context.now + dt.timedelta(hours=partner.response_hours)
            details = {
                "method": "partner",
                **info,
                "partner": {"id": partner.id, "name": partner.name},
                "deadline": deadline.isoformat(),
            }
            reason = f"Offered to partner {partner.name}"
            plans.append(
                plan(
                    lead,
                    "partner",
                    partner.user_id,
                    partner.user_team_id,
                    reason,
                    details,
                    partner_id=partner.id,
                    rule_id=aim.rule_id,
                    deadline=deadline,
                )
            )
            continue
        if kind == "user":
            person = context.people.get(target)
            load = loads.get(target, 0)
            if person is not None and person.takes_leads and person.id not in lead.excluded_users:
                if load < person.capacity:
                    give(person.id)
                    details = {"method": "named", **info, "loads": {person.username: f"{load}/{person.capacity}"}}
                    plans.append(plan(lead, "assigned", person.id, person.team_id, f"Rule: {aim.rule_name}", details))
                    continue
            if person is None or person.team_id is None:
                plans.append(RoutePlan(lead.id, "unmatched", details=info))
                continue
            target, info = person.team_id, {**info, "named_unavailable": person.username}
        sellers = teams.get(target, [])
        language, skill = lead_hints(lead.properties)
        chosen = choose_seller(sellers, exclude=lead.excluded_users, language=language, skill=skill)
        shown = {s.username: load_label(s) for s in sellers}
        if chosen is None:
            details = {"method": "pool", **info, "team": target, "loads": shown}
            plans.append(plan(lead, "pool", None, target, "No seller available: team pool", details))
            continue
        chosen.served += 1
        give(chosen.id)
        details = {"method": "round_robin", **info, "team": target, "loads": shown}
        reason = f"Rule: {aim.rule_name}" if aim.rule_id else "Default team"
        plans.append(plan(lead, "assigned", chosen.id, target, reason, details))
    return plans


def served_after(plans: Iterable[RoutePlan], teams: Mapping[int, Sequence[Seller]]) -> dict[tuple[int, int], int]:
    """Each (team, seller)'s round-robin counter after the plans: the ones that moved."""
    given: dict[tuple[int, int], int] = {}
    for p in plans:
        if p.details.get("method") == "round_robin":
            key = (p.team_id, p.owner_id)
            given[key] = given.get(key, 0) + 1
    served = {(t, s.id): s.served for t, sellers in teams.items() for s in sellers}
    return {key: served[key] + n for key, n in given.items() if key in served}

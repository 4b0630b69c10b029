"""What the router knows before it decides: the routing configuration (rules, partners, SLA
policies, default team), read once per routing call or beat run, and the sellers it locks
for one routing (each team's round-robin, the named sellers, their open leads and counters).
Reads and locks only: the decisions are `routing.engine`'s, the writes `assignment`'s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Q

from accounts.models import Role, User
from leadcrm.permissions import may_own_leads
from leads.models import OPEN_STAGES, Lead
from routing import engine
from routing.models import Partner, RoundRobinState, RoutingRule, RoutingSettings, SlaPolicy, Territory

# Who takes leads from a team's round-robin (managers receive them only by name or account).
ROUND_ROBIN_ROLES = (Role.SDR,)


@dataclass(frozen=True)
class Context:
    """Rules, partners and SLA policies, read once per routing call (or batch, or beat run)."""

    rules: list[engine.CompiledRule]
    partners: dict[int, engine.PartnerFacts]
    policies: list[engine.SlaRule]
    default_team_id: int | None

    @classmethod
    def load(cls) -> Context:
        regions = {t.name: t.countries for t in Territory.objects.all()}
        specs = [
            engine.RuleSpec(r.id, r.name, r.position, r.conditions, rule_target(r))
            for r in RoutingRule.objects.filter(active=True)
        ]
        partners = {
            p.pk: engine.PartnerFacts(
                id=p.pk,
                name=p.name,
                user_id=p.user_id,
                user_team_id=p.user.team_id,
                weight=p.weight,
                response_hours=p.response_hours,
                takes_offers=p.active and p.user.is_active,
                countries=frozenset(c.upper() for t in p.territories.all() for c in t.countries),
            )
            for p in Partner.objects.select_related("user").prefetch_related("territories")
        }
        policies = [
            engine.SlaRule(
                id=p.pk,
                grade=p.grade,
                stage=p.stage,
                minutes=p.minutes_to_first_touch,
                reassign_minutes=p.reassign_after_minutes,
                hours=engine.BusinessHours(
                    tz="UTC", day_start=p.day_start, day_end=p.day_end, weekdays=frozenset(p.weekdays)
                ),
            )
            for p in SlaPolicy.objects.filter(active=True)
        ]
        settings = RoutingSettings.current()
        return cls(engine.compile_rules(specs, regions), partners, policies, settings.default_team_id)


def rule_target(rule: RoutingRule) -> engine.Target:
    if rule.team_id:
        return engine.Target("team", rule.team_id)
    if rule.user_id:
        return engine.Target("user", rule.user_id)
    if rule.partner_id:
        return engine.Target("partner", rule.partner_id)
    return engine.Target("partners_by_territory")


def person(user: User) -> engine.Person:
    return engine.Person(
        id=user.pk,
        username=user.username,
        team_id=user.team_id,
        capacity=user.capacity,
        takes_leads=may_own_leads(user) and user.routing_active,
    )


def open_loads(user_ids: Iterable[int]) -> dict[int, int]:
    """Open leads held by each of these users (one grouped query)."""
    return dict(
        Lead.objects.filter(owner_id__in=list(user_ids), stage__in=OPEN_STAGES)
        .order_by()
        .values_list("owner_id")
        .annotate(n=Count("id"))
    )


@dataclass(frozen=True)
class Locked:
    """Sellers locked for one routing: each team's round-robin sellers, named users, and
    the open leads of all of them."""

    teams: dict[int, list[engine.Seller]]
    users: dict[int, User]
    loads: dict[int, int]


def lock_sellers(team_ids: Iterable[int], user_ids: Iterable[int] = ()) -> Locked:
    """Lock the round-robin sellers of these teams and the named users in ONE statement
    (SELECT ... FOR UPDATE in id order, so concurrent routings queue instead of
    deadlocking), then read their open leads and counters: two routings never both see
    the last free slot. A newcomer's counter starts level with the team (`seed_served`)."""
    team_ids, user_ids = sorted(set(team_ids) - {None}), sorted(set(user_ids) - {None})
    if not team_ids and not user_ids:
        return Locked({}, {}, {})
    users = list(
        User.objects.select_for_update()
        .filter(Q(team_id__in=team_ids, role__in=ROUND_ROBIN_ROLES, is_active=True) | Q(pk__in=user_ids))
        .order_by("pk")
    )
    loads = open_loads(u.pk for u in users)
    teams = set(team_ids)
    rr = [u for u in users if u.team_id in teams and u.role in ROUND_ROBIN_ROLES and u.is_active]
    served = {
        (s.team_id, s.user_id): s.served
        for s in RoundRobinState.objects.filter(team_id__in=team_ids, user_id__in=[u.pk for u in rr])
    }
    by_team: dict[int, list[engine.Seller]] = defaultdict(list)
    fresh: list[tuple[int, engine.Seller]] = []
    for u in rr:
        seller = engine.Seller(
            id=u.pk,
            weight=u.weight,
            capacity=u.capacity,
            load=loads.get(u.pk, 0),
            served=served.get((u.team_id, u.pk), 0),
            available=u.routing_active,
            languages=frozenset(str(x).casefold() for x in u.languages or ()),
            skills=frozenset(str(x).casefold() for x in u.skills or ()),
            username=u.username,
        )
        by_team[u.team_id].append(seller)
        if (u.team_id, u.pk) not in served:
            fresh.append((u.team_id, seller))
    for team_id, seller in fresh:
        others = [s for s in by_team[team_id] if s is not seller and (team_id, s.id) in served]
        seller.served = engine.seed_served(seller.weight, others)
    if fresh:
        RoundRobinState.objects.bulk_create(
            [RoundRobinState(team_id=t, user_id=s.id, served=s.served) for t, s in fresh], ignore_conflicts=True
        )
    return Locked(dict(by_team), {u.pk: u for u in users}, loads)

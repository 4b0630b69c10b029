"""Every write of routing: route a lead (or a batch), partner offers, SLA clocks and the
reassignment after a breach, bulk reassignment, and the routing configuration.

Decisions come from the pure `routing.engine`; ownership changes go through
`leads.services.lead_assign` (one lead) or its set-based twin here (a batch), so every
assignment leaves an `Assignment` row whose `details` say why: the rule, the conditions it
matched and the team's loads at that moment.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import Role, Team, User
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.bulk import bulk_insert, update_rows
from leadcrm.errors import Conflict, ServiceError
from leadcrm.permissions import may_own_leads
from leads import services as lead_services
from leads.models import (
    CLOSED_STAGES,
    OPEN_STAGES,
    SALES_TOUCH_TYPES,
    Assignment,
    Lead,
    StageChange,
    Touchpoint,
)
from routing import engine
from routing.models import (
    OfferStatus,
    Partner,
    PartnerOffer,
    RoundRobinState,
    RoutingRule,
    RoutingSettings,
    SlaClock,
    SlaPolicy,
    Territory,
)

# Who takes leads from a team's round-robin (managers receive them only by name or account).
ROUND_ROBIN_ROLES = (Role.SDR,)


@dataclass
class RouteResult:
    lead_id: int
    outcome: str  # assigned / pool / partner / unmatched / skipped
    owner_id: int | None = None
    team_id: int | None = None
    partner_id: int | None = None
    details: dict = field(default_factory=dict)


# --- what the router knows ------------------------------------------------------------------


@dataclass
class Context:
    """Rules, partners and SLA policies, read once per routing call (or batch)."""

    rules: list[engine.CompiledRule]
    partners: dict[int, Partner]
    partner_countries: dict[int, frozenset[str]]
    policies: list[engine.SlaRule]
    settings: RoutingSettings

    @classmethod
    def load(cls) -> Context:
        regions = {t.name: t.countries for t in Territory.objects.all()}
        specs = [
            engine.RuleSpec(r.id, r.name, r.position, r.conditions, _target(r))
            for r in RoutingRule.objects.filter(active=True)
        ]
        partners = {p.pk: p for p in Partner.objects.select_related("user").prefetch_related("territories")}
        coverage = {
            pk: frozenset(c.upper() for t in p.territories.all() for c in t.countries) for pk, p in partners.items()
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
        return cls(engine.compile_rules(specs, regions), partners, coverage, policies, RoutingSettings.current())

    def partner_takes(self, partner_id: int, country: str, excluded: set[int]) -> bool:
        partner = self.partners.get(partner_id)
        if partner is None or not partner.active or partner_id in excluded or not partner.user.is_active:
            return False
        covered = self.partner_countries.get(partner_id)
        return not covered or country.upper() in covered

    def partner_for(self, country: str, excluded: set[int]) -> Partner | None:
        """The active partner covering the country with the fewest pending offers per weight."""
        eligible = [
            p
            for pk, p in self.partners.items()
            if self.partner_countries.get(pk) and self.partner_takes(pk, country, excluded)
        ]
        if not eligible:
            return None
        pending = dict(
            PartnerOffer.objects.filter(partner__in=eligible, status=OfferStatus.PENDING)
            .values_list("partner")
            .annotate(n=Count("id"))
        )
        return min(eligible, key=lambda p: ((pending.get(p.pk, 0) + 1) / p.weight, p.pk))

    def skipper(self, lead: engine.LeadFacts, excluded_partners: set[int]):
        def skip(spec: engine.RuleSpec) -> bool:
            if spec.target.kind == "partner":
                return not self.partner_takes(spec.target.id, lead.country, excluded_partners)
            if spec.target.kind == "partners_by_territory":
                return self.partner_for(lead.country, excluded_partners) is None
            return False

        return skip


def _target(rule: RoutingRule) -> engine.Target:
    if rule.team_id:
        return engine.Target("team", rule.team_id)
    if rule.user_id:
        return engine.Target("user", rule.user_id)
    if rule.partner_id:
        return engine.Target("partner", rule.partner_id)
    return engine.Target("partners_by_territory")


def _facts(lead: Lead) -> engine.LeadFacts:
    size = lead.company_size
    if size is None and lead.company_id and lead.company is not None:
        size = lead.company.size
    return engine.LeadFacts(
        id=lead.pk,
        country=lead.country,
        industry=lead.industry,
        source=lead.source,
        grade=lead.grade,
        stage=lead.stage,
        company_size=size,
        score=lead.score,
        properties=lead.properties or {},
    )


def _rule_info(match: engine.Match | None) -> dict:
    if match is None:
        return {"rule": None, "matched": {}}
    return {"rule": {"id": match.rule.id, "name": match.rule.name}, "matched": match.matched}


def _takes_leads(user: User | None) -> bool:
    return may_own_leads(user) and user.routing_active


# --- round-robin inside a team ----------------------------------------------------------------


def _open_loads(user_ids: Iterable[int]) -> dict[int, int]:
    """Open leads held by each of these users (one grouped query)."""
    return dict(
        Lead.objects.filter(owner_id__in=list(user_ids), stage__in=OPEN_STAGES)
        .order_by()
        .values_list("owner_id")
        .annotate(n=Count("id"))
    )


@dataclass
class Locked:
    """Sellers locked for one routing: each team's round-robin sellers, plus named users."""

    teams: dict[int, list[engine.Seller]]
    users: dict[int, User]
    loads: dict[int, int]


def _lock_sellers(team_ids: Iterable[int], user_ids: Iterable[int] = ()) -> Locked:
    """Lock the round-robin sellers of these teams and the named users in ONE statement
    (SELECT ... FOR UPDATE in id order, so concurrent routings queue instead of
    deadlocking), then read their open leads and counters: two routings never both see
    the last free slot."""
    team_ids, user_ids = sorted(set(team_ids)), sorted(set(user_ids))
    users = list(
        User.objects.select_for_update()
        .filter(Q(team_id__in=team_ids, role__in=ROUND_ROBIN_ROLES, is_active=True) | Q(pk__in=user_ids))
        .order_by("pk")
    )
    loads = _open_loads(u.pk for u in users)
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
        )
        seller.username = u.username  # type: ignore[attr-defined]
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
    return Locked(by_team, {u.pk: u for u in users}, loads)


def _lock_team_sellers(team_ids: Iterable[int]) -> dict[int, list[engine.Seller]]:
    return _lock_sellers(team_ids).teams


def _load_label(s: engine.Seller) -> str:
    return f"{s.load}/{s.capacity}" + ("" if s.available else " away")


def _loads(sellers: list[engine.Seller]) -> dict[str, str]:
    """Each seller's open leads / capacity when the choice is made (the "why")."""
    return {s.username: _load_label(s) for s in sellers}  # type: ignore[attr-defined]


def _save_served(team_id: int, sellers: Iterable[engine.Seller]) -> None:
    for s in sellers:
        RoundRobinState.objects.filter(team_id=team_id, user_id=s.id).update(served=s.served, updated_at=timezone.now())


def _lead_hints(props: dict) -> tuple[str, str]:
    """The language and product line a lead asks for, from its custom properties."""
    lang = props.get("language") or props.get("lang") or ""
    skill = props.get("product_interest") or props.get("product_line") or ""
    return (str(lang) if not isinstance(lang, list) else "", str(skill) if not isinstance(skill, list) else "")


# --- one lead ---------------------------------------------------------------------------------


def lead_route(
    *,
    lead_id: int,
    actor: Actor,
    reason: str = "",
    exclude_user_ids: Iterable[int] = (),
    context: Context | None = None,
    unowned_only: bool = False,
) -> RouteResult:
    """Route one lead: its company's owner (unless away), else the first matching rule
    (team round-robin, named seller, partner), else the default team. No seller with room →
    the team's pool, and the manager is told. Closed leads are left alone."""
    ctx = context or Context.load()
    excluded_users = set(exclude_user_ids)
    with transaction.atomic():
        lead = Lead.objects.select_for_update(of=("self",)).select_related("company__owner").get(pk=lead_id)
        if lead.stage in CLOSED_STAGES or (unowned_only and lead.owner_id is not None):
            return RouteResult(lead.pk, "skipped", lead.owner_id, lead.team_id)
        now = timezone.now()
        facts = _facts(lead)
        declined = set(
            PartnerOffer.objects.filter(lead=lead, status__in=(OfferStatus.DECLINED, OfferStatus.EXPIRED)).values_list(
                "partner_id", flat=True
            )
        )
        _close_pending_offer(lead, now, reason)

        account_owner = lead.company.owner if lead.company_id and lead.company else None
        if _takes_leads(account_owner) and account_owner.pk not in excluded_users:
            details = {
                "method": "account",
                "rule": None,
                "matched": {"company": lead.company.name or lead.company.domain or lead.company_id},
            }
            return _assign(lead, account_owner, actor, reason or "Account owner", details, ctx, now)

        match = engine.match(facts, ctx.rules, skip=ctx.skipper(facts, declined))
        info = _rule_info(match)
        target = match.rule.target if match else None
        if target is None and ctx.settings.default_team_id:
            target, info = engine.Target("team", ctx.settings.default_team_id), {**info, "default_team": True}
        if target is None:
            if lead.owner_id is not None and lead.owner_id in {p.user_id for p in ctx.partners.values()}:
                # Recalled from a partner and no rule takes it: back to nobody (or its pool).
                lead_services.lead_assign(
                    lead_id=lead.pk,
                    owner=None,
                    actor=actor,
                    reason=reason or "No routing rule matched",
                    details={"method": "unmatched", **info},
                    team_id=lead.team_id,
                )
            return RouteResult(lead.pk, "unmatched", None, lead.team_id, details=info)

        if target.kind in ("partner", "partners_by_territory"):
            partner = ctx.partners[target.id] if target.kind == "partner" else ctx.partner_for(facts.country, declined)
            return _offer(lead, partner, match, actor, reason, info, now)

        if target.kind == "user":
            # The named seller is locked with their team (one ordered lock): capacity holds too.
            team_id = User.objects.filter(pk=target.id).values_list("team_id", flat=True).first()
            locked = _lock_sellers([team_id] if team_id else [], [target.id])
            named, load = locked.users.get(target.id), locked.loads.get(target.id, 0)
            if _takes_leads(named) and named.pk not in excluded_users and load < named.capacity:
                details = {"method": "named", **info, "loads": {named.username: f"{load}/{named.capacity}"}}
                return _assign(lead, named, actor, reason or f"Rule: {match.rule.name}", details, ctx, now)
            if named is None or named.team_id is None:
                return RouteResult(lead.pk, "unmatched", details=info)
            target, info = engine.Target("team", named.team_id), {**info, "named_unavailable": named.username}
            sellers = locked.teams.get(target.id, [])
        else:
            sellers = _lock_team_sellers([target.id]).get(target.id, [])
        language, skill = _lead_hints(facts.properties)
        chosen = engine.choose_seller(sellers, exclude=excluded_users, language=language, skill=skill)
        loads = _loads(sellers)
        if chosen is None:
            return _to_pool(lead, target.id, actor, reason, info, loads, now)
        engine.take(chosen)
        _save_served(target.id, [chosen])
        owner = User.objects.get(pk=chosen.id)
        details = {"method": "round_robin", **info, "team": target.id, "loads": loads}
        rule_reason = f"Rule: {match.rule.name}" if match else "Default team"
        return _assign(lead, owner, actor, reason or rule_reason, details, ctx, now)


def _assign(lead: Lead, owner: User, actor: Actor, reason: str, details: dict, ctx: Context, now) -> RouteResult:
    unchanged = lead.owner_id == owner.pk and lead.team_id == owner.team_id
    lead_services.lead_assign(lead_id=lead.pk, owner=owner, actor=actor, reason=reason, details=details)
    if unchanged:  # routed again to the same seller: their clock keeps running
        return RouteResult(lead.pk, "assigned", owner.pk, owner.team_id, details=details)
    _sla_open([(lead.pk, owner.pk, owner.team_id, lead.grade, lead.stage)], ctx, now)
    accounts_services.notify(
        user=owner,
        kind="lead_assigned",
        text=f"New lead for you: {lead.full_name or lead.email} ({reason}).",
        lead_id=lead.pk,
    )
    return RouteResult(lead.pk, "assigned", owner.pk, owner.team_id, details=details)


def _to_pool(lead: Lead, team_id: int, actor: Actor, reason: str, info: dict, loads, now, notify: bool = True):
    details = {"method": "pool", **info, "team": team_id, "loads": loads}
    lead_services.lead_assign(
        lead_id=lead.pk,
        owner=None,
        actor=actor,
        reason=reason or "No seller available: team pool",
        details=details,
        team_id=team_id,
    )
    SlaClock.objects.filter(lead=lead, closed_at__isnull=True).update(closed_at=now)
    team = Team.objects.select_related("manager").get(pk=team_id)
    if notify and team.manager is not None:
        accounts_services.notify(
            user=team.manager,
            kind="pool_waiting",
            text=f"No seller of {team.name} has room: {lead.email} waits in the pool.",
            lead_id=lead.pk,
        )
    return RouteResult(lead.pk, "pool", None, team_id, details=details)


# --- partners ---------------------------------------------------------------------------------


def _offer(lead: Lead, partner: Partner, match, actor: Actor, reason: str, info: dict, now) -> RouteResult:
    deadline = now + dt.timedelta(hours=partner.response_hours)
    PartnerOffer.objects.create(
        lead=lead, partner=partner, rule_id=match.rule.id if match else None, offered_at=now, deadline=deadline
    )
    details = {
        "method": "partner",
        **info,
        "partner": {"id": partner.pk, "name": partner.name},
        "deadline": deadline.isoformat(),
    }
    lead_services.lead_assign(
        lead_id=lead.pk,
        owner=partner.user,
        actor=actor,
        reason=reason or f"Offered to partner {partner.name}",
        details=details,
    )
    SlaClock.objects.filter(lead=lead, closed_at__isnull=True).update(closed_at=now)
    accounts_services.notify(
        user=partner.user,
        kind="partner_offer",
        text=f"{partner.name}: {lead.email} is offered to you; answer by {deadline:%Y-%m-%d %H:%M} UTC.",
        lead_id=lead.pk,
    )
    return RouteResult(lead.pk, "partner", partner.user_id, None, partner.pk, details)


def _close_pending_offer(lead: Lead, now, reason: str) -> None:
    PartnerOffer.objects.filter(lead=lead, status=OfferStatus.PENDING).update(
        status=OfferStatus.EXPIRED, answered_at=now, reason=reason or "Routed elsewhere"
    )


def _pending_offer(offer_id: int, actor: Actor) -> PartnerOffer:
    offer = PartnerOffer.objects.select_for_update().select_related("partner").get(pk=offer_id)
    user = actor.user
    if user is not None and not user.is_admin_role and user.pk != offer.partner.user_id:
        # A permission, not a state the offer is in: 403 (marketing sees every offer, as it
        # sees every lead, but answers none of them).
        raise PermissionDenied("Only the partner or an admin answers this offer.")
    if offer.status != OfferStatus.PENDING:
        raise Conflict("offer_closed", f"This offer is already {offer.status}.", status=offer.status)
    return offer


def _audit_offer(offer: PartnerOffer, actor: Actor) -> None:
    """On the lead (its timeline shows the partner's answer)."""
    audit.record(
        actor=actor,
        action=f"lead.partner_offer.{offer.status}",
        target=("leads.lead", offer.lead_id, ""),
        changes={"offer_status": [OfferStatus.PENDING, offer.status]},
        details={"offer": offer.pk, "partner": offer.partner.name, "reason": offer.reason},
    )


def partner_offer_accept(*, offer_id: int, actor: Actor) -> PartnerOffer:
    with transaction.atomic():
        offer = _pending_offer(offer_id, actor)
        offer.status, offer.answered_at, offer.answered_by = OfferStatus.ACCEPTED, timezone.now(), actor.user
        offer.save(update_fields=["status", "answered_at", "answered_by"])
        _audit_offer(offer, actor)
    return offer


def partner_offer_decline(*, offer_id: int, actor: Actor, reason: str = "") -> PartnerOffer:
    """The partner passes: the lead is recalled and routed again, never to that partner."""
    with transaction.atomic():
        offer = _pending_offer(offer_id, actor)
        offer.status, offer.answered_at, offer.answered_by = OfferStatus.DECLINED, timezone.now(), actor.user
        offer.reason = reason
        offer.save(update_fields=["status", "answered_at", "answered_by", "reason"])
        _audit_offer(offer, actor)
        lead_route(lead_id=offer.lead_id, actor=actor, reason=f"Declined by partner {offer.partner.name}")
    return offer


def partner_offers_expire(*, now: dt.datetime | None = None) -> int:
    """Offers past their deadline: recalled and routed again (beat job; what is due is in
    the database). Each offer in its own transaction; a concurrent run skips locked rows."""
    now = now or timezone.now()
    done = 0
    ids = list(
        PartnerOffer.objects.filter(status=OfferStatus.PENDING, deadline__lte=now).values_list("pk", flat=True)[:1000]
    )
    ctx = Context.load() if ids else None
    for pk in ids:
        with transaction.atomic():
            offer = (
                PartnerOffer.objects.select_for_update(skip_locked=True)
                .select_related("partner")
                .filter(pk=pk, status=OfferStatus.PENDING)
                .first()
            )
            if offer is None:
                continue
            offer.status, offer.answered_at = OfferStatus.EXPIRED, now
            offer.reason = "No answer before the deadline"
            offer.save(update_fields=["status", "answered_at", "reason"])
            lead_route(
                lead_id=offer.lead_id,
                actor=Actor.automation(),
                reason=f"Recalled from partner {offer.partner.name}: no answer in time",
                context=ctx,
            )
            done += 1
    return done


# --- SLA clocks -------------------------------------------------------------------------------


def _team_zones(team_ids: Iterable[int]) -> dict[int, str]:
    return dict(Team.objects.filter(pk__in=set(team_ids) - {None}).values_list("pk", "timezone"))


def _sla_open(
    rows: list[tuple[int, int, int | None, str, str]], ctx: Context, now: dt.datetime, close_previous: bool = True
) -> int:
    """Start a first-touch clock for each (lead, owner, team, grade, stage) under the most
    specific SLA policy, in the team's time zone; the lead's previous open clock closes
    (a batch of unowned leads skips that: their clocks are closed already, and a stale one
    would be closed by the sync reaction or the SLA check, which compare owners)."""
    if close_previous:
        SlaClock.objects.filter(lead_id__in=[r[0] for r in rows], closed_at__isnull=True).update(closed_at=now)
    if not ctx.policies:
        return 0
    zones = _team_zones(r[2] for r in rows)
    fallback = django_settings.TIME_ZONE
    clocks = []
    dues: dict[tuple, tuple] = {}  # one computation per (grade, stage, time zone) in a batch
    for lead_id, owner_id, team_id, grade, stage in rows:
        key = (grade, stage, zones.get(team_id, fallback))
        if key not in dues:
            dues[key] = _due(ctx, grade, stage, key[2], now)
        policy, due, reassign = dues[key]
        if policy is None:
            continue
        clocks.append(
            {
                "lead_id": lead_id,
                "owner_id": owner_id,
                "team_id": team_id,
                "policy_id": policy.id,
                "started_at": now,
                "due_at": due,
                "reassign_at": reassign,
                "first_touch_at": None,
                "breached_at": None,
                "reassigned_at": None,
                "closed_at": None,
            }
        )
    bulk_insert(clocks, model=SlaClock)
    return len(clocks)


def _due(ctx: Context, grade: str, stage: str, tz: str, now: dt.datetime) -> tuple:
    policy = engine.choose_policy(ctx.policies, grade=grade, stage=stage)
    if policy is None:
        return None, None, None
    hours = engine.BusinessHours(tz, policy.hours.day_start, policy.hours.day_end, policy.hours.weekdays)
    due = engine.add_business_minutes(now, policy.minutes, hours)
    reassign = engine.add_business_minutes(due, policy.reassign_minutes, hours) if policy.reassign_minutes else None
    return policy, due, reassign


def sla_clocks_sync(*, lead_ids: Iterable[int]) -> int:
    """After any assignment (the admin's, the API's, an import): close clocks of owners who
    no longer hold the lead and start one for a new owner whose clock is not the lead's
    latest. Idempotent; a few set-based queries for any number of leads."""
    ids = list(lead_ids)
    now = timezone.now()
    with transaction.atomic():
        leads = {
            x["pk"]: x
            for x in Lead.objects.filter(pk__in=ids).values("pk", "owner_id", "owner__team_id", "grade", "stage")
        }
        latest: dict[int, tuple] = {}
        stale: list[int] = []
        for pk, lead_id, owner_id, started_at, closed_at in SlaClock.objects.filter(lead_id__in=ids).values_list(
            "pk", "lead_id", "owner_id", "started_at", "closed_at"
        ):
            if lead_id not in latest or (started_at, pk) > latest[lead_id][:2]:
                latest[lead_id] = (started_at, pk, owner_id)
            if closed_at is None and leads.get(lead_id, {}).get("owner_id") != owner_id:
                stale.append(pk)
        if stale:
            SlaClock.objects.filter(pk__in=stale).update(closed_at=now)
        offered = set(
            PartnerOffer.objects.filter(lead_id__in=ids, status=OfferStatus.PENDING).values_list("lead_id", flat=True)
        )
        todo = [
            (x["pk"], x["owner_id"], x["owner__team_id"], x["grade"], x["stage"])
            for x in leads.values()
            if x["owner_id"]
            and x["pk"] not in offered
            and x["stage"] not in CLOSED_STAGES
            and (x["pk"] not in latest or latest[x["pk"]][2] != x["owner_id"])
        ]
        return _sla_open(todo, Context.load(), now) if todo else 0


def sla_first_touch_record(*, lead_ids: Iterable[int]) -> int:
    """Record the owner's first touch (a logged call / e-mail / meeting, or a stage move
    by the owner) on the leads' open clocks; a touched clock is closed."""
    touch = (
        Touchpoint.objects.filter(
            lead_id=OuterRef("lead_id"),
            author_id=OuterRef("owner_id"),
            type__in=SALES_TOUCH_TYPES,
            occurred_at__gte=OuterRef("started_at"),
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    move = (
        StageChange.objects.filter(
            lead_id=OuterRef("lead_id"), actor_id=OuterRef("owner_id"), created_at__gte=OuterRef("started_at")
        )
        .order_by("created_at")
        .values("created_at")[:1]
    )
    n = 0
    with transaction.atomic():
        clocks = (
            SlaClock.objects.select_for_update(skip_locked=True)
            .filter(lead_id__in=list(lead_ids), first_touch_at__isnull=True, closed_at__isnull=True)
            .annotate(touch=Subquery(touch), move=Subquery(move))
        )
        for clock in clocks:
            when = min((t for t in (clock.touch, clock.move) if t is not None), default=None)
            if when is not None:
                SlaClock.objects.filter(pk=clock.pk).update(first_touch_at=when, closed_at=when)
                n += 1
    return n


def sla_check(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The beat job: clocks past due without a first touch become breaches (the team's
    manager is alerted once); breaches past their second delay are routed to someone else."""
    now = now or timezone.now()
    candidates = list(
        SlaClock.objects.filter(closed_at__isnull=True, due_at__lte=now).values_list("lead_id", flat=True)[:5000]
    )
    if candidates:
        sla_first_touch_record(lead_ids=candidates)
    breached = reassigned = closed = 0
    with transaction.atomic():
        due = list(
            SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead", "owner", "team__manager")
            .filter(closed_at__isnull=True, breached_at__isnull=True, due_at__lte=now)[:5000]
        )
        alerts = []
        for clock in due:
            if clock.lead.owner_id != clock.owner_id or clock.lead.stage in CLOSED_STAGES:
                SlaClock.objects.filter(pk=clock.pk).update(closed_at=now)
                closed += 1
                continue
            SlaClock.objects.filter(pk=clock.pk).update(breached_at=now)
            breached += 1
            if clock.team is not None and clock.team.manager is not None:
                alerts.append(
                    (
                        clock.team.manager,
                        "sla_breach",
                        f"SLA breach: {clock.owner.username} has not touched {clock.lead.email} "
                        f"(due {clock.due_at:%Y-%m-%d %H:%M} UTC).",
                        clock.lead_id,
                    )
                )
        if alerts:
            accounts_services.notify_many(items=alerts)
    overdue = list(
        SlaClock.objects.filter(
            closed_at__isnull=True, breached_at__isnull=False, reassign_at__isnull=False, reassign_at__lte=now
        ).values_list("pk", flat=True)[:1000]
    )
    ctx = Context.load() if overdue else None
    for pk in overdue:
        with transaction.atomic():
            clock = (
                SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("lead", "owner")
                .filter(pk=pk, closed_at__isnull=True)
                .first()
            )
            if clock is None:
                continue
            SlaClock.objects.filter(pk=clock.pk).update(reassigned_at=now, closed_at=now)
            if clock.lead.owner_id == clock.owner_id and clock.lead.stage not in CLOSED_STAGES:
                lead_route(
                    lead_id=clock.lead_id,
                    actor=Actor.automation(),
                    reason=f"SLA: no first touch by {clock.owner.username}; reassigned",
                    exclude_user_ids=[clock.owner_id],
                    context=ctx,
                )
                reassigned += 1
    return {"breached": breached, "reassigned": reassigned, "closed": closed}


# --- many leads -------------------------------------------------------------------------------


def leads_route_batch(*, lead_ids: Iterable[int], actor: Actor) -> dict[str, int]:
    """Route many unowned leads set-based, in one transaction: one read of the leads, one
    lock of the teams' sellers, the engine in memory, then COPY-based writes (owners,
    Assignment rows with their "why", SLA clocks, round-robin counters) and one
    `lead.assigned` event. Partner targets go through `lead_route` one by one."""
    ids = sorted(set(lead_ids))
    ctx = Context.load()
    now = timezone.now()
    counts = {"assigned": 0, "pool": 0, "partner": 0, "unmatched": 0}
    one_by_one: list[int] = []
    with transaction.atomic():
        leads = list(
            Lead.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, owner__isnull=True)
            .exclude(stage__in=CLOSED_STAGES)
            .order_by("pk")
            .values(
                "pk",
                "email",
                "country",
                "industry",
                "source",
                "grade",
                "stage",
                "company_size",
                "score",
                "properties",
                "team_id",
                "company_id",
                "company__size",
                "company__owner_id",
            )
        )
        account_owner_ids = {x["company__owner_id"] for x in leads if x["company__owner_id"]}
        account_owners = {u.pk: u for u in User.objects.filter(pk__in=account_owner_ids)}
        plans: list[tuple[dict, str, object, dict]] = []  # (lead, kind, target, info)
        for x in leads:
            owner = account_owners.get(x["company__owner_id"])
            if _takes_leads(owner):
                info = {"method": "account", "rule": None, "matched": {"company": x["company_id"]}}
                plans.append((x, "user", owner.pk, info))
                continue
            facts = engine.LeadFacts(
                id=x["pk"],
                country=x["country"],
                industry=x["industry"],
                source=x["source"],
                grade=x["grade"],
                stage=x["stage"],
                company_size=x["company_size"] if x["company_size"] is not None else x["company__size"],
                score=x["score"],
                properties=x["properties"] or {},
            )
            m = engine.match(facts, ctx.rules, skip=ctx.skipper(facts, set()))
            info = _rule_info(m)
            target = m.rule.target if m else None
            if target is None and ctx.settings.default_team_id:
                target, info = engine.Target("team", ctx.settings.default_team_id), {**info, "default_team": True}
            if target is None:
                counts["unmatched"] += 1
            elif target.kind in ("partner", "partners_by_territory"):
                one_by_one.append(x["pk"])
            else:
                plans.append((x, target.kind, target.id, info))
        # Lock, in one ordered statement, the rules' teams, the named sellers and their teams
        # (where a named seller who is away or full sends the lead).
        named_ids = {t for _, k, t, _ in plans if k == "user"}
        named_teams = set(User.objects.filter(pk__in=named_ids, team__isnull=False).values_list("team_id", flat=True))
        locked = _lock_sellers({t for _, k, t, _ in plans if k == "team"} | named_teams, named_ids)
        named, named_loads, sellers_by_team = locked.users, dict(locked.loads), locked.teams
        for i, (x, kind, target, info) in enumerate(plans):
            if kind != "user":
                continue
            user = named.get(target)
            by_account = info.get("method") == "account"  # the account's owner: no capacity check
            if _takes_leads(user) and (by_account or named_loads.get(target, 0) < user.capacity):
                named_loads[target] = named_loads.get(target, 0) + 1
            else:
                if user is not None and user.team_id:
                    plans[i] = (x, "team", user.team_id, {**info, "named_unavailable": user.username})
                else:
                    counts["unmatched"] += 1
                    plans[i] = (x, "none", None, info)
        users_team = {u.pk: u.team_id for u in (*account_owners.values(), *named.values())}
        previous_team = {x["pk"]: x["team_id"] for x in leads}

        updates, assignments, clocks_rows, notes = [], [], [], defaultdict(list)
        pooled: dict[int, list[str]] = defaultdict(list)
        team_loads: dict[int, dict[str, str]] = {}
        touched_teams: set[int] = set()
        for x, kind, target, info in plans:
            if kind == "none":
                continue
            if kind == "user":
                owner_id, team_id = target, users_team.get(target)
                details = {"method": info.get("method", "named"), **info}
                reason = "Account owner" if info.get("method") == "account" else f"Rule: {info['rule']['name']}"
            else:
                sellers = sellers_by_team.get(target, [])
                language, skill = _lead_hints(x["properties"] or {})
                chosen = engine.choose_seller(sellers, language=language, skill=skill)
                if target not in team_loads:  # kept up to date as leads are given out
                    team_loads[target] = _loads(sellers)
                loads = dict(team_loads[target])
                if chosen is None:
                    details = {"method": "pool", **info, "team": target, "loads": loads}
                    if x["team_id"] != target:
                        updates.append({"id": x["pk"], "owner_id": None, "team_id": target, "updated_at": now})
                        assignments.append(
                            _assignment_row(
                                x["pk"], None, target, actor, "No seller available: team pool", details, now
                            )
                        )
                    pooled[target].append(x["email"])
                    counts["pool"] += 1
                    continue
                engine.take(chosen)
                team_loads[target][chosen.username] = _load_label(chosen)
                touched_teams.add(target)
                owner_id, team_id = chosen.id, target
                details = {"method": "round_robin", **info, "team": target, "loads": loads}
                reason = f"Rule: {info['rule']['name']}" if info.get("rule") else "Default team"
            updates.append({"id": x["pk"], "owner_id": owner_id, "team_id": team_id, "updated_at": now})
            assignments.append(_assignment_row(x["pk"], owner_id, team_id, actor, reason, details, now))
            clocks_rows.append((x["pk"], owner_id, team_id, x["grade"], x["stage"]))
            notes[owner_id].append(x["email"])
            counts["assigned"] += 1

        _write_owners(updates)
        bulk_insert(assignments, model=Assignment)
        audit.record_many(
            audit.entry(
                actor=actor,
                action="lead.assign",
                target=("leads.lead", a["lead_id"], ""),
                changes=audit.diff(
                    {"owner": None, "team": previous_team[a["lead_id"]]},
                    {"owner": a["to_owner_id"], "team": a["team_id"]},
                ),
                details={"reason": a["reason"]},
                at=now,
            )
            for a in assignments
        )
        for team_id in touched_teams:
            _save_served_bulk(team_id, sellers_by_team[team_id], now)
        _sla_open(clocks_rows, ctx, now, close_previous=False)
        _notify_batch(notes, pooled)
        events.emit(events.LEAD_ASSIGNED, lead_ids=[u["id"] for u in updates])
    for pk in one_by_one:
        # Owned meanwhile (a concurrent or repeated routing of the batch): left alone.
        result = lead_route(lead_id=pk, actor=actor, context=ctx, unowned_only=True)
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return counts


# --- routing the unassigned leads as a resumable job -----------------------------------------

ROUTE_KIND = "routing.route"
ROUTE_LANE = "routing.route"
ROUTE_CHUNK = 500  # leads per chunk (one transaction with its cursor): well under a second


def _unassigned(team_id: int | None):
    """Open leads nobody owns (or only those waiting in that team's pool), by id."""
    qs = Lead.objects.filter(owner__isnull=True).exclude(stage__in=CLOSED_STAGES).order_by("pk")
    return qs.filter(team_id=team_id) if team_id is not None else qs


def _merge_route(old: dict, new: dict) -> dict:
    """Two requests for one run: one team's pool only when both ask for that team."""
    return {
        "team": old.get("team") if old.get("team") == new.get("team") else None,
        "actor_kind": new.get("actor_kind") or old.get("actor_kind"),
        **({"chunk": new["chunk"]} if new.get("chunk") else {}),
    }


def route_unassigned_start(*, actor: Actor, team: Team | None = None, chunk_size: int | None = None):
    """Route every open lead without an owner (or one team's pool) as the resumable job
    `routing.route`: chunked by lead id, each chunk routed set-based (`leads_route_batch`)
    in one transaction with the job's cursor and counts. One at a time: a second request
    joins the queued job, or is run once after the running one. Audited. Returns the
    `leadcrm.jobs.JobRequest`."""
    from leadcrm import jobs

    if chunk_size is not None and not (isinstance(chunk_size, int) and 1 <= chunk_size <= 10_000):
        raise ServiceError({"chunk_size": ["A whole number from 1 to 10,000."]})
    params = {
        "team": team.pk if team is not None else None,
        "actor_kind": str(actor.kind),
        **({"chunk": chunk_size} if chunk_size else {}),
    }
    with transaction.atomic():
        request = jobs.job_request(
            kind=ROUTE_KIND, lane=ROUTE_LANE, params=params, merge=_merge_route, created_by=actor.user
        )
        audit.record(
            actor=actor,
            action="routing.route_unassigned.start",
            target=request.job,
            details={
                "team": {"id": team.pk, "name": team.name} if team is not None else None,
                "job": request.job.pk,
                "joined": not request.created,
                "after_current_run": request.follow_up,
            },
        )
    return request


def route_job_chunks(ctx) -> None:
    """The job's chunk loop: the next unowned open leads after the cursor (by id), routed in
    one transaction with the cursor's advance and the counts. A lead owned meanwhile (or by
    an earlier run) is skipped under its row lock, one still in the pool it was put in gets
    no second write: each lead is routed once, and a chunk rolled back by a crash is redone
    whole by the next run."""
    from leadcrm.models import Job

    params = ctx.params
    size = int(params.get("chunk") or ROUTE_CHUNK)
    created_by = Job.objects.filter(pk=ctx.job_id).values_list("created_by", flat=True).first()
    user = User.objects.filter(pk=created_by).first() if created_by else None
    actor = Actor(user, params.get("actor_kind") or "user") if user is not None else Actor.automation()
    leads = _unassigned(params.get("team"))
    after = int(ctx.cursor.get("after", 0))
    while True:
        with transaction.atomic():
            ids = list(leads.filter(pk__gt=after).values_list("pk", flat=True)[:size])
            if not ids:
                return
            counts = leads_route_batch(lead_ids=ids, actor=actor)
            routed = {k: v for k, v in counts.items() if k != "skipped"}
            ctx.commit_chunk(
                cursor={"after": ids[-1]},
                counts={"leads": len(ids), **routed, "skipped": len(ids) - sum(routed.values())},
            )
        after = ids[-1]


def _write_owners(rows: list[dict]) -> None:
    """Owners and pools of a batch in one statement (dicts: cheaper than model instances)."""
    update_rows(rows, model=Lead, fields=["owner", "team", "updated_at"])


def _assignment_row(lead_id, owner_id, team_id, actor: Actor, reason: str, details: dict, now) -> dict:
    return {
        "lead_id": lead_id,
        "from_owner_id": None,
        "to_owner_id": owner_id,
        "team_id": team_id,
        "actor_type": actor.kind,
        "actor_id": actor.user.pk if actor.user else None,
        "reason": reason,
        "details": details,
        "created_at": now,
    }


def _save_served_bulk(team_id: int, sellers: list[engine.Seller], now) -> None:
    states = {
        s.user_id: s for s in RoundRobinState.objects.filter(team_id=team_id, user_id__in=[x.id for x in sellers])
    }
    changed = []
    for seller in sellers:
        state = states.get(seller.id)
        if state is not None and state.served != seller.served:
            state.served, state.updated_at = seller.served, now
            changed.append(state)
    update_rows(changed, model=RoundRobinState, fields=["served", "updated_at"])


def _notify_batch(notes: dict[int, list[str]], pooled: dict[int, list[str]]) -> None:
    users = User.objects.in_bulk(list(notes))
    items = []
    for owner_id, emails in notes.items():
        text = (
            f"New lead for you: {emails[0]}."
            if len(emails) == 1
            else f"{len(emails)} new leads for you, e.g. {', '.join(emails[:3])}."
        )
        items.append((users[owner_id], "lead_assigned", text, None))
    for team in Team.objects.select_related("manager").filter(pk__in=list(pooled), manager__isnull=False):
        emails = pooled[team.pk]
        items.append(
            (
                team.manager,
                "pool_waiting",
                f"No seller of {team.name} has room: {len(emails)} lead(s) wait in the pool.",
                None,
            )
        )
    if items:
        accounts_services.notify_many(items=items)


def leads_bulk_reassign(
    *, lead_ids: Iterable[int], actor: Actor, to_user: User | None = None, reason: str = ""
) -> list[RouteResult]:
    """A manager moves leads: to a named seller, or (no seller given) through the routing
    again, away from their current owner."""
    ctx = Context.load()
    results = []
    ids = list(
        Lead.objects.filter(pk__in=list(lead_ids))
        .exclude(stage__in=CLOSED_STAGES)
        .order_by("pk")
        .values_list("pk", "owner_id")
    )
    if to_user is not None and not to_user.is_active:
        raise ServiceError({"to_user": ["This user is not active."]})
    for pk, owner_id in ids:
        if to_user is None:
            results.append(
                lead_route(
                    lead_id=pk,
                    actor=actor,
                    reason=reason or "Bulk reassignment",
                    exclude_user_ids=[owner_id] if owner_id else [],
                    context=ctx,
                )
            )
            continue
        with transaction.atomic():
            lead = Lead.objects.select_for_update().get(pk=pk)
            details = {
                "method": "manual",
                "rule": None,
                "matched": {},
                "by": actor.user.username if actor.user else None,
            }
            lead_services.lead_assign(
                lead_id=pk, owner=to_user, actor=actor, reason=reason or "Bulk reassignment", details=details
            )
            _close_pending_offer(lead, timezone.now(), "Reassigned by hand")
            _sla_open([(pk, to_user.pk, to_user.team_id, lead.grade, lead.stage)], ctx, timezone.now())
            results.append(RouteResult(pk, "assigned", to_user.pk, to_user.team_id, details=details))
    if to_user is not None and results:
        accounts_services.notify(
            user=to_user,
            kind="lead_assigned",
            text=f"{len(results)} lead(s) reassigned to you by {actor.user.username if actor.user else 'automation'}.",
            lead_id=results[0].lead_id if len(results) == 1 else None,
        )
    return results


# --- configuration ----------------------------------------------------------------------------


def _check_rule(conditions: dict, targets: dict) -> None:
    errors = engine.validate_conditions(conditions, Territory.objects.values_list("name", flat=True))
    given = [k for k in ("team", "user", "partner") if targets.get(k) is not None]
    if targets.get("partners_by_territory"):
        given.append("partners_by_territory")
    if len(given) != 1:
        errors["target"] = ["Give exactly one target: team, user or partner (or partners_by_territory)."]
    if errors:
        raise ServiceError(errors)


RULE_FIELDS = ("name", "position", "conditions", "team", "user", "partner", "partners_by_territory", "active")


def routing_rule_create(*, actor: Actor, **fields) -> RoutingRule:
    fields.setdefault("conditions", {})
    _check_rule(fields["conditions"], fields)
    with transaction.atomic():
        rule = RoutingRule.objects.create(**{k: v for k, v in fields.items() if k in RULE_FIELDS})
        audit.record(
            actor=actor,
            action="routing.rule.create",
            target=rule,
            changes={k: [None, v] for k, v in audit.snapshot(rule, RULE_FIELDS).items()},
        )
        return rule


def routing_rule_update(*, rule: RoutingRule, actor: Actor, **fields) -> RoutingRule:
    merged = {k: getattr(rule, k) for k in ("team", "user", "partner", "partners_by_territory")}
    for k in ("team", "user", "partner", "partners_by_territory"):
        if k in fields:
            merged = {
                "team": None,
                "user": None,
                "partner": None,
                "partners_by_territory": False,
                **{x: fields[x] for x in ("team", "user", "partner", "partners_by_territory") if x in fields},
            }
            break
    conditions = fields.get("conditions", rule.conditions)
    _check_rule(conditions, merged)
    with transaction.atomic():
        before = audit.snapshot(rule, RULE_FIELDS)
        for k, v in {**fields, **merged}.items():
            if k in RULE_FIELDS:
                setattr(rule, k, v)
        rule.save()
        audit.record(
            actor=actor, action="routing.rule.update", target=rule, changes=audit.diff(before, rule), skip_empty=True
        )
    return rule


def routing_rule_delete(*, rule: RoutingRule, actor: Actor) -> None:
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="routing.rule.delete",
            target=rule,
            changes={k: [v, None] for k, v in audit.snapshot(rule, RULE_FIELDS).items()},
        )
        rule.delete()


def config_save(*, instance, actor: Actor, fields: dict, m2m: dict | None = None):
    """Create or update a territory, partner or SLA policy (validated by the API)."""
    with transaction.atomic():
        created = instance.pk is None
        names = [*fields, *(m2m or {})]
        before = dict.fromkeys(names) if created else audit.snapshot(instance, names)
        for k, v in fields.items():
            setattr(instance, k, v)
        instance.full_clean(exclude=[f for f in ("user",) if f not in fields and instance.pk])
        instance.save()
        for k, v in (m2m or {}).items():
            getattr(instance, k).set(v)
        audit.record(
            actor=actor,
            action=f"routing.{instance._meta.model_name}.{'create' if created else 'update'}",
            target=instance,
            changes=audit.diff(before, instance),
            skip_empty=not created,
        )
    return instance


def config_delete(*, instance, actor: Actor) -> None:
    """Delete a territory, partner or SLA policy, its last values kept in the audit log."""
    with transaction.atomic():
        names = [f.name for f in instance._meta.concrete_fields if not f.primary_key]
        audit.record(
            actor=actor,
            action=f"routing.{instance._meta.model_name}.delete",
            target=instance,
            changes={k: [v, None] for k, v in audit.snapshot(instance, names).items()},
        )
        instance.delete()


def routing_settings_update(*, actor: Actor, **fields) -> RoutingSettings:
    with transaction.atomic():
        current, _ = RoutingSettings.objects.get_or_create(pk=1)
        names = ("route_on_mql", "route_on_capture", "default_team")
        before = audit.snapshot(current, names)
        for k in names:
            if k in fields:
                setattr(current, k, fields[k])
        current.save()
        audit.record(
            actor=actor,
            action="routing.settings.update",
            target=current,
            changes=audit.diff(before, current),
            skip_empty=True,
        )
    return current


def seller_profile_update(*, seller: User, actor: Actor, **fields) -> User:
    """Capacity, weight, availability and skills of a seller, from the manager page."""
    allowed = {k: v for k, v in fields.items() if k in ("capacity", "weight", "routing_active", "languages", "skills")}
    return accounts_services.user_update(user=seller, actor=actor, **allowed)

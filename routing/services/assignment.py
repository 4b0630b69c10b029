"""Routing leads: one write path for one lead or ten thousand.

`route_leads` locks the leads, reads what the router needs (`context`), lets the pure
`routing.engine.plan_routes` decide, then writes the plans set-based: owners and pools,
`Assignment` rows whose `details` say why (the rule, the conditions it matched, the team's
loads at that moment), the audit, partner offers, SLA clocks (`sla.sla_clocks_open`),
round-robin counters, notifications and one `lead.assigned` event. `lead_route` is a batch
of one; `leads_route_batch` the reactions' and the job's call. A manager's bulk move is
`leads_bulk_reassign`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import Team, User
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.bulk import bulk_insert, update_rows
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import CLOSED_STAGES, Assignment, Lead
from routing import engine
from routing.models import OfferStatus, PartnerOffer, RoundRobinState
from routing.services.context import Context, lock_sellers, person
from routing.services.sla import ClockStart, sla_clocks_close, sla_clocks_open

OUTCOMES = ("assigned", "pool", "partner", "unmatched")


@dataclass
class RouteResult:
    lead_id: int
    outcome: str  # assigned / pool / partner / unmatched / skipped
    owner_id: int | None = None
    team_id: int | None = None
    partner_id: int | None = None
    details: dict = field(default_factory=dict)


# What a routing reads of each lead it locked.
_LEAD_FIELDS = (
    "pk",
    "email",
    "first_name",
    "last_name",
    "country",
    "industry",
    "source",
    "grade",
    "stage",
    "company_size",
    "score",
    "properties",
    "owner_id",
    "team_id",
    "company_id",
    "company__name",
    "company__domain",
    "company__size",
    "company__owner_id",
)


def _facts(x: dict, excluded: frozenset[int], declined: frozenset[int]) -> engine.LeadFacts:
    return engine.LeadFacts(
        id=x["pk"],
        country=x["country"],
        industry=x["industry"],
        source=x["source"],
        grade=x["grade"],
        stage=x["stage"],
        company_size=x["company_size"] if x["company_size"] is not None else x["company__size"],
        score=x["score"],
        properties=x["properties"] or {},
        owner_id=x["owner_id"],
        team_id=x["team_id"],
        account_owner_id=x["company__owner_id"],
        # The account-owner "why" names the company as a reader knows it (engine.route_aims).
        company=(x["company__name"] or x["company__domain"] or x["company_id"]) if x["company_id"] else None,
        excluded_users=excluded,
        declined_partners=declined,
    )


def route_leads(
    *,
    lead_ids: Iterable[int],
    actor: Actor,
    reason: str = "",
    exclude_user_ids: Iterable[int] = (),
    away_from_owner: bool = False,
    unowned_only: bool = False,
    context: Context | None = None,
) -> list[RouteResult]:
    """Route these leads (by id order) in one transaction; see the module docstring.

    Closed leads are skipped, and with `unowned_only` the owned ones. `reason` replaces the
    plans' default reason on the Assignment rows; `exclude_user_ids` (and, with
    `away_from_owner`, each lead's current owner) never get the lead. A lead's pending
    partner offer lapses (it is routed elsewhere); a partner that declined it or let it
    lapse is not offered it again."""
    ctx = context or Context.load()
    ids = sorted(set(lead_ids))
    excluded = frozenset(exclude_user_ids)
    now = timezone.now()
    with transaction.atomic():
        qs = Lead.objects.select_for_update(of=("self",)).filter(pk__in=ids).exclude(stage__in=CLOSED_STAGES)
        if unowned_only:
            qs = qs.filter(owner__isnull=True)
        rows = list(qs.order_by("pk").values(*_LEAD_FIELDS))
        results: dict[int, RouteResult] = {pk: RouteResult(pk, "skipped") for pk in ids}
        if rows:
            for x in rows:
                del results[x["pk"]]
            plans = _route(rows, ctx, actor, reason, excluded, away_from_owner, now)
            for p in plans:
                team = None if p.outcome == "partner" else p.team_id
                results[p.lead_id] = RouteResult(p.lead_id, p.outcome, p.owner_id, team, p.partner_id, dict(p.details))
        skipped = [pk for pk, r in results.items() if r.outcome == "skipped"]
        if skipped:
            for pk, owner_id, team_id in Lead.objects.filter(pk__in=skipped).values_list("pk", "owner_id", "team_id"):
                results[pk].owner_id, results[pk].team_id = owner_id, team_id
    return [results[pk] for pk in ids]


def _route(
    rows: list[dict], ctx: Context, actor: Actor, reason: str, excluded: frozenset, away: bool, now: dt.datetime
) -> list[engine.RoutePlan]:
    ids = [x["pk"] for x in rows]
    declined: dict[int, set[int]] = defaultdict(set)
    if ctx.partners:
        for lead_id, partner_id in PartnerOffer.objects.filter(
            lead_id__in=ids, status__in=(OfferStatus.DECLINED, OfferStatus.EXPIRED)
        ).values_list("lead_id", "partner_id"):
            declined[lead_id].add(partner_id)
        PartnerOffer.objects.filter(lead_id__in=ids, status=OfferStatus.PENDING).update(
            status=OfferStatus.EXPIRED, answered_at=now, reason=reason or "Routed elsewhere"
        )
    facts = [
        _facts(
            x,
            excluded | ({x["owner_id"]} if away and x["owner_id"] else set()),
            frozenset(declined.get(x["pk"], ())),
        )
        for x in rows
    ]
    account_ids = {f.account_owner_id for f in facts if f.account_owner_id}
    people = {u.pk: person(u) for u in User.objects.filter(pk__in=account_ids)} if account_ids else {}
    routing = engine.RoutingContext(
        rules=ctx.rules, default_team_id=ctx.default_team_id, partners=ctx.partners, people=people, now=now
    )
    aims = engine.route_aims(facts, routing)
    # Lock, in one ordered statement, the aimed teams, the named sellers and their teams
    # (where a named seller who is away or full sends the lead).
    named = {a.id for a in aims if a.kind == "user"}
    named_teams = set(User.objects.filter(pk__in=named, team__isnull=False).values_list("team_id", flat=True))
    locked = lock_sellers({a.id for a in aims if a.kind == "team"} | named_teams, named)
    pending = {}
    if any(a.kind in ("partner", "partners_by_territory") for a in aims):
        pending = dict(
            PartnerOffer.objects.filter(status=OfferStatus.PENDING)
            .order_by()
            .values_list("partner_id")
            .annotate(n=Count("id"))
        )
    routing = replace(
        routing,
        people={**people, **{pk: person(u) for pk, u in locked.users.items()}},
        teams=locked.teams,
        loads=locked.loads,
        pending_offers=pending,
    )
    plans = engine.plan_routes(facts, routing, aims)
    _write(plans, rows, ctx, routing, actor, reason, now)
    return plans


def _write(
    plans: list[engine.RoutePlan],
    rows: list[dict],
    ctx: Context,
    routing: engine.RoutingContext,
    actor: Actor,
    reason: str,
    now: dt.datetime,
) -> None:
    """Apply the plans: every effect of a routing, written set-based."""
    leads = {x["pk"]: x for x in rows}
    written = [p for p in plans if p.writes]
    users = User.objects.in_bulk(
        {p.owner_id for p in written if p.owner_id} | {p.owner_id for p in plans if p.outcome == "partner"}
    )
    update_rows(
        [{"id": p.lead_id, "owner_id": p.owner_id, "team_id": p.team_id, "updated_at": now} for p in written],
        model=Lead,
        fields=["owner", "team", "updated_at"],
    )
    assignments = [
        {
            "lead_id": p.lead_id,
            "from_owner_id": leads[p.lead_id]["owner_id"],
            "to_owner_id": p.owner_id,
            "team_id": p.team_id,
            "actor_type": actor.kind,
            "actor_id": actor.user.pk if actor.user else None,
            "reason": reason or p.reason,
            "details": dict(p.details),
            "created_at": now,
        }
        for p in written
    ]
    bulk_insert(assignments, model=Assignment)
    audit.record_many(
        audit.entry(
            actor=actor,
            action="lead.assign",
            target=("leads.lead", p.lead_id, leads[p.lead_id]["email"]),
            changes=audit.diff(
                {"owner": leads[p.lead_id]["owner_id"], "team": leads[p.lead_id]["team_id"]},
                {"owner": users.get(p.owner_id), "team": p.team_id},
            ),
            details={"reason": reason or p.reason},
            at=now,
        )
        for p in written
    )
    offers = [p for p in plans if p.outcome == "partner"]
    PartnerOffer.objects.bulk_create(
        [
            PartnerOffer(
                lead_id=p.lead_id, partner_id=p.partner_id, rule_id=p.rule_id, offered_at=now, deadline=p.deadline
            )
            for p in offers
        ]
    )
    # A new owner's clock replaces the open one; a pool or a partner stops it.
    given = [p for p in written if p.outcome == "assigned"]
    sla_clocks_close(
        lead_ids=[p.lead_id for p in (*given, *(p for p in plans if p.outcome in ("pool", "partner")))], now=now
    )
    sla_clocks_open(
        starts=[
            ClockStart(p.lead_id, p.owner_id, p.team_id, leads[p.lead_id]["grade"], leads[p.lead_id]["stage"])
            for p in given
        ],
        policies=ctx.policies,
        now=now,
    )
    _save_served(engine.served_after(plans, routing.teams), now)
    _notify(plans, given, offers, leads, users, reason)
    events.emit(events.LEAD_ASSIGNED, lead_ids=[p.lead_id for p in written])


def _save_served(served: dict[tuple[int, int], int], now: dt.datetime) -> None:
    if not served:
        return
    states = RoundRobinState.objects.filter(
        team_id__in={t for t, _ in served}, user_id__in={u for _, u in served}
    ).only("pk", "team_id", "user_id")
    changed = []
    for state in states:
        if (state.team_id, state.user_id) in served:
            state.served, state.updated_at = served[(state.team_id, state.user_id)], now
            changed.append(state)
    update_rows(changed, model=RoundRobinState, fields=["served", "updated_at"])


def _name(lead: dict) -> str:
    return f"{lead['first_name']} {lead['last_name']}".strip() or lead["email"]


def _notify(plans, given, offers, leads: dict, users: dict, reason: str) -> None:
    """Each new owner once per routing, each pooling team's manager once, each offer."""
    items = []
    per_owner: dict[int, list] = defaultdict(list)
    for p in given:
        per_owner[p.owner_id].append(p)
    for owner_id, got in per_owner.items():
        if len(got) == 1:
            lead = leads[got[0].lead_id]
            text = f"New lead for you: {_name(lead)} ({reason or got[0].reason})."
            items.append((users[owner_id], "lead_assigned", text, got[0].lead_id))
        else:
            emails = [leads[p.lead_id]["email"] for p in got]
            text = f"{len(emails)} new leads for you, e.g. {', '.join(emails[:3])}."
            items.append((users[owner_id], "lead_assigned", text, None))
    pooled: dict[int, list] = defaultdict(list)
    for p in plans:
        if p.outcome == "pool":
            pooled[p.team_id].append(p.lead_id)
    if pooled:
        for team in Team.objects.select_related("manager").filter(pk__in=list(pooled), manager__isnull=False):
            waiting = pooled[team.pk]
            if len(waiting) == 1:
                text = f"No seller of {team.name} has room: {leads[waiting[0]]['email']} waits in the pool."
                items.append((team.manager, "pool_waiting", text, waiting[0]))
            else:
                text = f"No seller of {team.name} has room: {len(waiting)} lead(s) wait in the pool."
                items.append((team.manager, "pool_waiting", text, None))
    for p in offers:
        name = p.details["partner"]["name"]
        text = f"{name}: {leads[p.lead_id]['email']} is offered to you; answer by {p.deadline:%Y-%m-%d %H:%M} UTC."
        items.append((users[p.owner_id], "partner_offer", text, p.lead_id))
    if items:
        accounts_services.notify_many(items=items)


def lead_route(
    *,
    lead_id: int,
    actor: Actor,
    reason: str = "",
    exclude_user_ids: Iterable[int] = (),
    context: Context | None = None,
) -> RouteResult:
    """Route one lead (a batch of one): its company's owner (unless away), else the first
    matching rule (team round-robin, named seller, partner), else the default team. No
    seller with room → the team's pool, and the manager is told. Closed leads are left
    alone."""
    if not Lead.objects.filter(pk=lead_id).exists():
        raise Lead.DoesNotExist(f"No lead {lead_id}.")
    (result,) = route_leads(
        lead_ids=[lead_id], actor=actor, reason=reason, exclude_user_ids=exclude_user_ids, context=context
    )
    return result


def leads_route_batch(*, lead_ids: Iterable[int], actor: Actor) -> dict[str, int]:
    """Route the unowned open leads among these (the reactions' and the job's call): counts
    per outcome; owned and closed leads are left alone and not counted."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in route_leads(lead_ids=lead_ids, actor=actor, unowned_only=True):
        if r.outcome != "skipped":
            counts[r.outcome] += 1
    return counts


def leads_bulk_reassign(
    *, lead_ids: Iterable[int], actor: Actor, to_user: User | None = None, reason: str = ""
) -> list[RouteResult]:
    """A manager moves leads: to a named seller, or (no seller given) through the routing
    again, away from their current owner."""
    ids = list(
        Lead.objects.filter(pk__in=list(lead_ids))
        .exclude(stage__in=CLOSED_STAGES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if to_user is not None and not to_user.is_active:
        raise ServiceError({"to_user": ["This user is not active."]})
    if to_user is None:
        return (
            route_leads(lead_ids=ids, actor=actor, reason=reason or "Bulk reassignment", away_from_owner=True)
            if ids
            else []
        )
    ctx = Context.load()
    results = []
    for pk in ids:
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
            now = timezone.now()
            PartnerOffer.objects.filter(lead=lead, status=OfferStatus.PENDING).update(
                status=OfferStatus.EXPIRED, answered_at=now, reason="Reassigned by hand"
            )
            sla_clocks_close(lead_ids=[pk], now=now)
            sla_clocks_open(
                starts=[ClockStart(pk, to_user.pk, to_user.team_id, lead.grade, lead.stage)],
                policies=ctx.policies,
                now=now,
            )
            results.append(RouteResult(pk, "assigned", to_user.pk, to_user.team_id, details=details))
    if results:
        accounts_services.notify(
            user=to_user,
            kind="lead_assigned",
            text=f"{len(results)} lead(s) reassigned to you by {actor.user.username if actor.user else 'automation'}.",
            lead_id=results[0].lead_id if len(results) == 1 else None,
        )
    return results

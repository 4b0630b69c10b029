"""Reads of routing: the teams a user manages, team load vs capacity, the pool, SLA
breaches and compliance, rules a user may read. Constant query counts whatever the size."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from accounts.models import Role, Team, User
from accounts.selectors import managed_team_ids
from leadcrm.permissions import SELLERS
from leads.models import OPEN_STAGES, Lead
from leads.selectors import leads_visible_to
from routing.models import PartnerOffer, RoutingRule, SlaClock, Territory


def teams_managed_by(user: User) -> QuerySet[Team]:
    """Admins: every team; a manager: their team and the teams they manage; others none."""
    if not user.is_authenticated:
        return Team.objects.none()
    if user.is_admin_role:
        return Team.objects.select_related("manager").all()
    if user.role == Role.MANAGER:
        return Team.objects.select_related("manager").filter(pk__in=managed_team_ids(user))
    return Team.objects.none()


def territory_names() -> list[str]:
    """The territories' names: what a rule's `region` condition may name."""
    return list(Territory.objects.values_list("name", flat=True))


def rules_visible_to(user: User) -> QuerySet[RoutingRule]:
    qs = RoutingRule.objects.select_related("team", "user", "partner").order_by("position", "id")
    if user.is_admin_role or user.role == Role.MARKETING:
        return qs
    if user.role == Role.MANAGER:
        teams = list(teams_managed_by(user).values_list("pk", flat=True))
        return qs.filter(Q(team_id__in=teams) | Q(user__team_id__in=teams))
    return qs.none()


def offers_visible_to(user: User) -> QuerySet[PartnerOffer]:
    """Offers name their lead: admins and marketing (who see every lead) see all; a
    partner's login its partner's offers; a manager the offers of leads of their team
    (leads.selectors.leads_visible_to); nobody else any."""
    qs = PartnerOffer.objects.select_related("partner", "lead")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.sees_all_leads:
        return qs
    if user.role == Role.MANAGER:
        return qs.filter(Q(partner__user=user) | Q(lead__in=leads_visible_to(user).values("pk")))
    return qs.filter(partner__user=user)


def team_load(*, team: Team) -> list[dict]:
    """Each seller of the team: open leads vs capacity, weight, availability. One query."""
    sellers = (
        User.objects.filter(SELLERS, team=team)
        .annotate(open_leads=Count("leads", filter=Q(leads__stage__in=OPEN_STAGES)))
        .order_by("username")
    )
    rows = []
    for u in sellers:
        rows.append(
            {
                "id": u.pk,
                "username": u.username,
                "name": u.get_full_name() or u.username,
                "role": u.role,
                "open_leads": u.open_leads,
                "capacity": u.capacity,
                "weight": u.weight,
                "active": u.routing_active,
                "languages": u.languages,
                "skills": u.skills,
                "load_pct": round(100 * u.open_leads / u.capacity) if u.capacity else None,
                "full": u.open_leads >= u.capacity,
            }
        )
    return rows


def team_pool(*, team: Team, limit: int = 200) -> list[Lead]:
    return list(
        Lead.objects.filter(team=team, owner__isnull=True, stage__in=OPEN_STAGES).order_by("-score", "created_at")[
            :limit
        ]
    )


def team_pool_count(*, team: Team) -> int:
    return Lead.objects.filter(team=team, owner__isnull=True, stage__in=OPEN_STAGES).count()


def sla_breaches(*, team: Team, now: dt.datetime | None = None, limit: int = 200) -> list[SlaClock]:
    """Open clocks past due (first touch missing), oldest first."""
    now = now or timezone.now()
    return list(
        SlaClock.objects.filter(team=team, closed_at__isnull=True, due_at__lte=now)
        .select_related("lead", "owner", "policy")
        .order_by("due_at")[:limit]
    )


def sla_compliance(
    *, teams: QuerySet[Team] | None = None, since: dt.datetime | None = None, now: dt.datetime | None = None
) -> dict:
    """Share of assignments touched in time, per team and per seller, over the clocks that
    are decided (touched, or past due). Two grouped queries."""
    now = now or timezone.now()
    clocks = SlaClock.objects.filter(Q(first_touch_at__isnull=False) | Q(due_at__lte=now))
    if teams is not None:
        clocks = clocks.filter(team__in=teams)
    if since is not None:
        clocks = clocks.filter(started_at__gte=since)
    met = Count("id", filter=Q(first_touch_at__isnull=False, first_touch_at__lte=F("due_at")))

    def rate(row):
        return round(row["met"] / row["total"], 4) if row["total"] else None

    per_team = [
        {"team": r["team_id"], "team_name": r["team__name"], "total": r["total"], "met": r["met"], "rate": rate(r)}
        for r in clocks.order_by().values("team_id", "team__name").annotate(total=Count("id"), met=met)
    ]
    per_seller = [
        {
            "seller": r["owner_id"],
            "username": r["owner__username"],
            "team": r["team_id"],
            "total": r["total"],
            "met": r["met"],
            "rate": rate(r),
        }
        for r in clocks.order_by().values("owner_id", "owner__username", "team_id").annotate(total=Count("id"), met=met)
    ]
    return {
        "teams": sorted(per_team, key=lambda r: r["team_name"] or ""),
        "sellers": sorted(per_seller, key=lambda r: r["username"]),
    }

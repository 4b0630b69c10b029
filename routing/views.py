"""The manager page `/team/`: load vs capacity per seller, SLA breaches, the unassigned
pool, bulk reassignment, and each seller's capacity and availability. Reads through
`routing.selectors`, writes through `routing.services`."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Team, User
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from leadcrm.permissions import SELLERS
from leads.models import Lead
from routing import selectors, services


def _team(request: HttpRequest, team_id: str | None) -> tuple[Team, list[Team]]:
    teams = list(selectors.teams_managed_by(request.user))
    if not teams:
        raise PermissionDenied(_("The team page is for managers and admins."))
    chosen = next((t for t in teams if str(t.pk) == str(team_id)), teams[0])
    return chosen, teams


def _back(team: Team):
    return redirect(f"{reverse('team')}?team={team.pk}")


@login_required
def team_page(request: HttpRequest) -> HttpResponse:
    team, teams = _team(request, request.GET.get("team"))
    sellers = selectors.team_load(team=team)
    compliance = selectors.sla_compliance(teams=Team.objects.filter(pk=team.pk))
    by_seller = {r["seller"]: r for r in compliance["sellers"]}
    for s in sellers:
        s["sla"] = by_seller.get(s["id"])
    context = {
        "team": team,
        "teams": teams,
        "sellers": sellers,
        "pool": selectors.team_pool(team=team, limit=100),
        "pool_count": selectors.team_pool_count(team=team),
        "breaches": selectors.sla_breaches(team=team, limit=100),
        "compliance": compliance["teams"][0] if compliance["teams"] else None,
        "totals": {
            "open": sum(s["open_leads"] for s in sellers),
            "capacity": sum(s["capacity"] for s in sellers if s["active"]),
        },
    }
    return render(request, "routing/team.html", context)


@login_required
@require_POST
def team_reassign(request: HttpRequest) -> HttpResponse:
    team, _teams = _team(request, request.POST.get("team"))
    ids = [int(x) for x in request.POST.getlist("lead") if x.isdigit()]
    leads = list(
        Lead.objects.filter(pk__in=ids).filter(Q(team=team) | Q(owner__team=team)).values_list("pk", flat=True)
    )
    to = request.POST.get("to") or ""
    target = None
    if to:
        target = get_object_or_404(User.objects.filter(SELLERS), pk=to, team=team)
    if not leads:
        messages.warning(request, _("Select at least one lead of the team."))
        return _back(team)
    try:
        results = services.leads_bulk_reassign(
            lead_ids=leads,
            to_user=target,
            actor=Actor(request.user, ActorType.USER),
            reason=_("Reassigned by the manager"),
        )
    except ServiceError as exc:
        messages.error(request, "; ".join(m for msgs in exc.errors.values() for m in msgs))
        return _back(team)
    assigned = sum(1 for r in results if r.outcome == "assigned")
    messages.success(
        request, _("%(n)d lead(s) reassigned, %(p)d left in a pool.") % {"n": assigned, "p": len(results) - assigned}
    )
    return _back(team)


@login_required
@require_POST
def team_seller(request: HttpRequest, pk: int) -> HttpResponse:
    team, _teams = _team(request, request.POST.get("team"))
    seller = get_object_or_404(User, pk=pk, team=team)
    fields: dict = {"routing_active": request.POST.get("active") == "on"}
    for name in ("capacity", "weight"):
        raw = (request.POST.get(name) or "").strip()
        if raw:
            if not raw.isdigit() or (name == "weight" and int(raw) < 1) or int(raw) > 100000:
                messages.error(request, _("%(field)s must be a whole number.") % {"field": name})
                return _back(team)
            fields[name] = int(raw)
    services.seller_profile_update(seller=seller, actor=Actor(request.user, ActorType.USER), **fields)
    messages.success(request, _("%(user)s updated.") % {"user": seller.username})
    return _back(team)

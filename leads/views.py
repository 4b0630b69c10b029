"""Server-rendered pages. Reads go through `leads.selectors`; no page writes leads yet."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.models import Role
from leads.models import FUNNEL_STAGES, Stage
from leads.selectors import funnel_counts, leads_visible_to

SIDE_STAGES = (Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST)


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _width(part: int, whole: int) -> str:
    """A CSS width, formatted here so the page's locale never turns the dot into a comma."""
    return f"{min(100.0, 100.0 * part / whole):.1f}%" if whole else "0%"


def funnel_panel(leads) -> dict:
    """The funnel panel's rows from the shared funnel selector (constant number of queries
    whatever the volume, the same numbers as /api/v1/metrics/funnel/)."""
    data = funnel_counts(leads)
    counts, reached = data["counts"], data["reached"]
    total = sum(counts.values())
    top = max(*reached.values(), *counts.values(), 1)  # the longest bar spans the column
    rows, previous = [], None
    for stage in FUNNEL_STAGES:
        rate = data["conversion"].get(f"{previous}->{stage}") if previous else None
        rows.append(
            {
                "stage": stage.value,
                "label": stage.label,
                "now": counts[stage],
                "reached": reached[stage],
                "rate": None if rate is None else rate * 100,
                "width": _width(reached[stage], top),
                "now_width": _width(counts[stage], top),
            }
        )
        previous = stage
    exits = [
        {
            "stage": stage.value,
            "label": stage.label,
            "now": counts[stage],
            "share": _pct(counts[stage], total),
            "width": _width(counts[stage], top),
        }
        for stage in SIDE_STAGES
    ]
    first, won = reached[FUNNEL_STAGES[0]], reached[Stage.WO]
    return {"rows": rows, "exits": exits, "total": total, "overall": _pct(won, first)}


def scope_label(user) -> str:
    if user.sees_all_leads:
        return _("All leads")
    if user.role == Role.MANAGER:
        return _("Leads of your team")
    return _("Your leads and your team's unassigned pool")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {"funnel": funnel_panel(leads_visible_to(user)), "scope": scope_label(user)}
    return render(request, "leads/dashboard.html", context)

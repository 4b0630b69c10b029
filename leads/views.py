"""The marketing dashboard. Reads go through `leads.selectors` and `leads.reports` (grouped
queries: a constant number whatever the volume); every table exports as CSV."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.models import Role, Team
from accounts.selectors import teams_visible_to
from leads import reports, rollups
from leads.exports import csv_response
from leads.models import FUNNEL_STAGES, Stage
from leads.selectors import funnel_counts, leads_visible_to

SIDE_STAGES = (Stage.RECYCLED, Stage.DISQUALIFIED, Stage.LOST)


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _width(part: int, whole: int) -> str:
    """A CSS width, formatted here so the page's locale never turns the dot into a comma."""
    return f"{min(100.0, 100.0 * part / whole):.1f}%" if whole else "0%"


def funnel_panel(leads, data: dict | None = None) -> dict:
    """The funnel panel's rows from the shared funnel selector (constant number of queries
    whatever the volume, the same numbers as /api/v1/metrics/funnel/), or from `data` in the
    same shape (the aggregate tables)."""
    data = data if data is not None else funnel_counts(leads)
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


def teams_for(user):
    return list(teams_visible_to(user))


def sla_panel(user, teams, f: reports.Filters, rollup: reports.RollupReport | None = None) -> dict | None:
    """SLA compliance from the routing app's clocks, when routing is installed (from the
    aggregate table for whole-base views)."""
    if not apps.is_installed("routing"):
        return None
    if rollup is not None:
        data = rollup.sla()
    else:
        from routing import selectors as routing_selectors

        scope = Team.objects.filter(pk__in=[t.pk for t in teams]) if not user.sees_all_leads else None
        if f.team:
            scope = Team.objects.filter(pk=f.team) if scope is None else scope.filter(pk=f.team)
        data = routing_selectors.sla_compliance(teams=scope, since=f.since)
    total = sum(r["total"] for r in data["teams"])
    met = sum(r["met"] for r in data["teams"])
    data["overall"] = _pct(met, total)
    data["total"], data["met"] = total, met
    for r in data["teams"]:
        r["pct"] = None if r["rate"] is None else r["rate"] * 100
    return data


def _export(name: str, panels: dict) -> HttpResponse | None:
    stages = [s.value for s in FUNNEL_STAGES]
    if name == "funnel":
        rows = [[r["stage"], r["now"], r["reached"], r["rate"]] for r in panels["funnel"]["rows"]]
        rows += [[r["stage"], r["now"], "", ""] for r in panels["funnel"]["exits"]]
        return csv_response("funnel.csv", ["stage", "in_stage_now", "reached", "conversion_pct"], rows)
    if name == "over_time":
        data = panels["over_time"]
        rows = [[s["source"], *s["counts"]] for s in data["series"]]
        return csv_response("leads-over-time.csv", ["source", *data["labels"]], rows)
    if name == "cpl":
        data = panels["cpl"]
        header = ["campaign", "utm_campaign", "source", "spend", *stages, *[f"cpl_{s}" for s in stages]]
        rows = [[c["name"], c["key"], c["source"], c["spend"], *c["counts"], *c["cpl"]] for c in data["campaigns"]]
        return csv_response("cpl.csv", header, rows)
    if name == "attribution":
        data = panels["attribution"]
        rows = [[r["source"], round(r["credit"], 4), r["share"]] for r in data["rows"]]
        return csv_response(f"attribution-{data['model']}.csv", ["source", "credit", "share"], rows)
    if name == "pipeline":
        p = panels["pipeline"]
        keys = ["open", "value", "won", "lost", "win_rate", "avg_deal", "cycle_days", "velocity"]
        return csv_response("pipeline.csv", ["metric", "value"], [[k, p[k]] for k in keys])
    if name == "sla" and panels.get("sla"):
        rows = [[r["team_name"], r["total"], r["met"], r["rate"]] for r in panels["sla"]["teams"]]
        return csv_response("sla.csv", ["team", "clocks", "met", "rate"], rows)
    return None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    f = reports.parse_filters(request.GET)
    visible = leads_visible_to(user)
    leads = reports.filtered(visible, f)
    model = request.GET.get("model", "first")
    model = model if model in reports.ATTRIBUTION_MODELS else "first"
    teams = teams_for(user)
    # Whole-base dashboards read the aggregate tables the workers keep fresh (a panel the
    # tables cannot cut by the view's filter reads the filtered leads); a user's own scope
    # (sellers, managers) and team views are a fraction of the base, read live.
    fresh = rollups.fresh_run() if user.sees_all_leads else None
    run = fresh if fresh is not None and reports.RollupReport.covers(f) else None
    if run is not None:
        rollup = reports.RollupReport(f, run)
        panels = {
            "funnel": funnel_panel(None, rollup.funnel()),
            "over_time": rollup.over_time() if rollup.has("over_time") else reports.leads_over_time(leads, f),
            "cpl": rollup.cpl() if rollup.has("cpl") else reports.cpl(leads),
            "pipeline": rollup.pipeline(),
            "attribution": (
                rollup.attribution(model) if rollup.has("attribution") else reports.attribution(leads, model)
            ),
            "sla": sla_panel(user, teams, f, rollup),
        }
    else:
        panels = {
            "funnel": funnel_panel(leads),
            "over_time": reports.leads_over_time(leads, f),
            "cpl": reports.cpl(leads),
            "pipeline": reports.pipeline(leads),
            "attribution": reports.attribution(leads, model),
            "sla": sla_panel(user, teams, f),
        }
    export = request.GET.get("export", "")
    if export:
        response = _export(export, panels)
        if response is not None:
            return response
    query = f.as_query()
    context = {
        **panels,
        "scope": scope_label(user),
        "filters": f,
        "query": query,
        "model": model,
        "models": [("first", _("First touch")), ("last", _("Last touch")), ("linear", _("Linear"))],
        "choices": reports.filter_choices(visible, reports.rollup_sources() if fresh is not None else None),
        "as_of": run.finished_at if run is not None else None,
        "teams": teams,
        "chart": {
            "funnel": {
                "labels": [r["stage"] for r in panels["funnel"]["rows"]],
                "reached": [r["reached"] for r in panels["funnel"]["rows"]],
                "now": [r["now"] for r in panels["funnel"]["rows"]],
            },
            "over_time": panels["over_time"],
            "attribution": {
                "labels": [r["source"] for r in panels["attribution"]["rows"]],
                "credit": [round(r["credit"], 2) for r in panels["attribution"]["rows"]],
            },
            "cpl": {
                "labels": [c["name"] for c in panels["cpl"]["campaigns"]],
                "values": [float(c["cpl"][0]) if c["cpl"][0] is not None else None for c in panels["cpl"]["campaigns"]],
            },
        },
    }
    return render(request, "leads/dashboard.html", context)

"""Dashboard reads: every panel is a few grouped SQL queries over the leads the user may see,
whatever their number. Filters: period (created between two dates), source, campaign
(utm_campaign), team."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Avg, Count, Exists, F, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, NullIf, TruncDay, TruncWeek
from django.utils import timezone

from accounts.models import Team
from leadcrm import inputs
from leads import funnel
from leads.models import (
    FUNNEL_STAGES,
    AttributionRollup,
    Campaign,
    Lead,
    LeadRollup,
    Opportunity,
    OpportunityStatus,
    SlaRollup,
    Stage,
    StageChange,
    Touchpoint,
)

ATTRIBUTION_MODELS = ("first", "last", "linear")


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date
    source: str = ""
    campaign: str = ""
    team: int | None = None

    @property
    def since(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.start, dt.time.min))

    @property
    def until(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time.min))

    def as_query(self) -> dict:
        q = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.source:
            q["source"] = self.source
        if self.campaign:
            q["campaign"] = self.campaign
        if self.team:
            q["team"] = self.team
        return q


def parse_filters(params) -> Filters:
    today = timezone.localdate()

    def date(name: str, default: dt.date) -> dt.date:
        try:
            return inputs.parse_date(params.get(name, ""))
        except ValueError:  # a year such as 9999 would overflow "+ 1 day"
            return default

    end = date("end", today)
    start = date("start", end - dt.timedelta(days=89))
    if start > end:
        start, end = end, start
    team = params.get("team", "")
    return Filters(
        start=start,
        end=end,
        source=params.get("source", "").strip()[:100],
        campaign=params.get("campaign", "").strip()[:200],
        team=inputs.int_or_none(team),
    )


def filtered(leads: QuerySet[Lead], f: Filters) -> QuerySet[Lead]:
    qs = leads.filter(created_at__gte=f.since, created_at__lt=f.until)
    if f.source:
        qs = qs.filter(source=f.source)
    if f.campaign:
        qs = qs.filter(utm_campaign=f.campaign)
    if f.team:
        qs = qs.filter(team_id=f.team)  # the pool's team or the owner's team (set on assignment)
    return qs


def filter_choices(leads: QuerySet[Lead], sources: list[str] | None = None) -> dict:
    """Sources and campaigns for the filter menus: the campaigns entered, the sources seen on
    them and the sources of the leads (`sources` when the caller knows them). Two queries."""
    campaigns = list(Campaign.objects.order_by("name").values("utm_campaign", "name", "source"))
    if sources is None:
        sources = list(leads.order_by("source").values_list("source", flat=True).distinct()[:200])
    return {"campaigns": campaigns, "sources": sorted(({c["source"] for c in campaigns} | set(sources)) - {""})}


def leads_over_time(leads: QuerySet[Lead], f: Filters) -> dict:
    """New leads per day (per week beyond 62 days) and source. One grouped query."""
    weekly = (f.end - f.start).days > 62
    trunc = TruncWeek if weekly else TruncDay
    rows = (
        leads.order_by()
        .annotate(bucket=trunc("created_at"), src=Coalesce(NullIf(F("source"), Value("")), Value("(none)")))
        .values("bucket", "src")
        .annotate(n=Count("id"))
    )
    return _over_time_result(f, rows)


def _over_time_result(f: Filters, rows) -> dict:
    weekly = (f.end - f.start).days > 62
    buckets: list[dt.date] = []
    day = f.start - dt.timedelta(days=f.start.weekday()) if weekly else f.start
    while day <= f.end:
        buckets.append(day)
        day += dt.timedelta(days=7 if weekly else 1)
    index = {b: i for i, b in enumerate(buckets)}
    series: dict[str, list[int]] = {}
    for row in rows:
        bucket = row["bucket"]
        bucket = bucket.date() if isinstance(bucket, dt.datetime) else bucket
        if bucket not in index:
            continue
        series.setdefault(row["src"], [0] * len(buckets))[index[bucket]] += row["n"]
    totals = sorted(((sum(v), k) for k, v in series.items()), reverse=True)
    return {
        "labels": [b.isoformat() for b in buckets],
        "unit": "week" if weekly else "day",
        "series": [{"source": k, "counts": series[k], "total": t} for t, k in totals],
    }


def _stage_counts_by(leads: QuerySet[Lead], key: str) -> dict[str, dict[str, int]]:
    """Leads per `key` that reached each funnel stage (the furthest funnel stage their history
    entered, like the funnel). One grouped query; each lead's history is read through the
    (lead, created_at) index, so a filtered view costs its own leads, not the whole history."""
    lead_sql, params = leads.order_by().values("id", key).query.sql_with_params()
    column = Lead._meta.get_field(key).column
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT k, top, COUNT(*) FROM (SELECT l.{column} AS k, (SELECT MAX({funnel.rank_sql('sc.to_stage')})"
            f" FROM {StageChange._meta.db_table} sc WHERE sc.lead_id = l.id) AS top FROM ({lead_sql}) l) x"
            f" WHERE top >= 0 GROUP BY k, top",
            params,
        )
        rows = cur.fetchall()
    return funnel.reached_by_key(rows)


def cpl(leads: QuerySet[Lead] | None, by_campaign: dict | None = None) -> dict:
    """Cost per lead per campaign and stage (spend ÷ leads of the campaign that reached the
    stage), and per source (the spend of its campaigns). Two queries."""
    campaigns = list(Campaign.objects.order_by("name"))
    if by_campaign is None:
        by_campaign = _stage_counts_by(leads.exclude(utm_campaign=""), "utm_campaign")
    rows = []
    for c in campaigns:
        counts = by_campaign.get(c.utm_campaign, {s: 0 for s in FUNNEL_STAGES})
        rows.append(
            {
                "name": c.name,
                "key": c.utm_campaign,
                "source": c.source,
                "spend": c.spend,
                "currency": c.currency,
                "counts": [counts[s] for s in FUNNEL_STAGES],
                "cpl": [(c.spend / counts[s]) if counts[s] else None for s in FUNNEL_STAGES],
            }
        )
    per_source: dict[str, dict] = {}
    for r in rows:
        s = per_source.setdefault(
            r["source"] or "(none)",
            {"source": r["source"] or "(none)", "spend": Decimal(0), "counts": [0] * len(FUNNEL_STAGES)},
        )
        s["spend"] += r["spend"]
        s["counts"] = [a + b for a, b in zip(s["counts"], r["counts"], strict=True)]
    sources = []
    for s in sorted(per_source.values(), key=lambda x: x["source"]):
        s["cpl"] = [(s["spend"] / n) if n else None for n in s["counts"]]
        sources.append(s)
    total_spend = sum((r["spend"] for r in rows), Decimal(0))
    totals = [sum(r["counts"][i] for r in rows) for i in range(len(FUNNEL_STAGES))]
    return {
        "stages": [s.value for s in FUNNEL_STAGES],
        "campaigns": rows,
        "sources": sources,
        "total": {
            "spend": total_spend,
            "counts": totals,
            "cpl": [(total_spend / n) if n else None for n in totals],
        },
    }


def pipeline(leads: QuerySet[Lead]) -> dict:
    """Pipeline value (open offers), win rate, average deal and cycle length, and velocity =
    opportunities × win rate × average deal ÷ cycle length (per day). Two queries."""
    opps = Opportunity.objects.filter(lead__in=leads.order_by().values("pk")).order_by()
    agg = opps.aggregate(
        open_n=Count("id", filter=Q(status=OpportunityStatus.OPEN)),
        open_value=Sum("amount", filter=Q(status=OpportunityStatus.OPEN)),
        won_n=Count("id", filter=Q(status=OpportunityStatus.WON)),
        lost_n=Count("id", filter=Q(status=OpportunityStatus.LOST)),
        won_avg=Avg("amount", filter=Q(status=OpportunityStatus.WON)),
    )
    # Cycle length from the stage history: from the lead's creation to its move to WO.
    cycle = (
        StageChange.objects.filter(lead__in=leads.order_by().values("pk"), to_stage=Stage.WO)
        .order_by()
        .aggregate(avg=Avg(F("created_at") - F("lead__created_at")))["avg"]
    )
    cycle_days = cycle.total_seconds() / 86400 if isinstance(cycle, dt.timedelta) else None
    if isinstance(cycle, (int, float)):  # SQLite answers microseconds
        cycle_days = cycle / 86_400_000_000
    return _pipeline_result(agg["open_n"], agg["open_value"], agg["won_n"], agg["lost_n"], agg["won_avg"], cycle_days)


def _pipeline_result(open_n, open_value, won_n, lost_n, avg_deal, cycle_days) -> dict:
    closed = won_n + lost_n
    win_rate = won_n / closed if closed else None
    velocity = None
    if win_rate is not None and avg_deal is not None and cycle_days:
        velocity = open_n * win_rate * float(avg_deal) / max(cycle_days, 1 / 24)
    return {
        "open": open_n,
        "value": open_value or Decimal(0),
        "won": won_n,
        "lost": lost_n,
        "win_rate": win_rate,
        "avg_deal": avg_deal,
        "cycle_days": cycle_days,
        "velocity": velocity,
    }


# Attribution models: first / last touch, linear, and position-based (U-shaped: 40 % to the
# first touch, 40 % to the last, 20 % shared by those between; 50/50 with two touches).
ATTRIBUTION_ALL_MODELS = (*ATTRIBUTION_MODELS, "position")
# The stages credited and what is credited (a touchpoint's utm_source or utm_campaign).
ATTRIBUTION_STAGES = (Stage.MQL, Stage.SQL, Stage.CO, Stage.WO)
ATTRIBUTION_KEYS = ("source", "campaign")

# Share of one touch (row `rn` of `n`, by time) under each model, in SQL.
_TOUCH_CREDIT_SQL = {
    "first": "CASE WHEN rn = 1 THEN 1.0 ELSE 0.0 END",
    "last": "CASE WHEN rn = n THEN 1.0 ELSE 0.0 END",
    "linear": "1.0 / n",
    "position": ("CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN rn = 1 OR rn = n THEN 0.4 ELSE 0.2 / (n - 2) END"),
}


def credited_stages(stage: str) -> tuple[Stage, ...]:
    """The leads a stage's credit goes to: those now at that funnel stage or further along,
    still open or won. For SQL these are the dashboard's qualified leads (SQL and beyond)."""
    return FUNNEL_STAGES[FUNNEL_STAGES.index(Stage(stage)) :]


def attribution(leads: QuerySet[Lead], model: str, *, stage: str = Stage.SQL, by: str = "source") -> dict:
    """Credit for the leads that reached `stage` (see `credited_stages`) per source or
    campaign, under one of ATTRIBUTION_ALL_MODELS, over each lead's touchpoints carrying a
    utm_source (utm_campaign), in time order; a lead with none is credited to its own
    utm_source / source (utm_campaign). Each credited lead gives 1 in all. The dashboard's
    panel and `/api/v1/metrics/attribution/` both read this. Two queries."""
    if model not in _TOUCH_CREDIT_SQL or by not in ATTRIBUTION_KEYS:
        raise ValueError(f"Unknown attribution model or key: {model!r}, {by!r}.")
    credited = leads.filter(stage__in=credited_stages(stage)).order_by()
    column = "utm_source" if by == "source" else "utm_campaign"
    if by == "source":
        own = Coalesce(NullIf(F("utm_source"), Value("")), NullIf(F("source"), Value("")), Value("(direct)"))
    else:
        own = Coalesce(NullIf(F("utm_campaign"), Value("")), Value("(none)"))
    credit: dict[str, float] = {}
    lead_sql, params = credited.values("pk").query.sql_with_params()
    table = Touchpoint._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT k, SUM({_TOUCH_CREDIT_SQL[model]}) FROM (SELECT t.{column} AS k, "
            f"ROW_NUMBER() OVER (PARTITION BY t.lead_id ORDER BY t.occurred_at, t.id) AS rn, "
            f"COUNT(*) OVER (PARTITION BY t.lead_id) AS n FROM {table} t "
            f"WHERE t.{column} <> '' AND t.lead_id IN ({lead_sql})) x GROUP BY k",
            params,
        )
        for key, value in cur.fetchall():
            if value:
                credit[key] = credit.get(key, 0) + float(value)
    touched = Touchpoint.objects.filter(lead=OuterRef("pk")).exclude(**{column: ""})
    untouched = credited.filter(~Exists(touched))
    for row in untouched.annotate(key=own).values("key").annotate(n=Count("id")):
        credit[row["key"]] = credit.get(row["key"], 0) + row["n"]
    return _attribution_result(model, credit, by)


def _attribution_result(model: str, credit: dict[str, float], by: str = "source") -> dict:
    total = sum(credit.values())
    rows = [
        {by: key, "credit": value, "share": value / total if total else None}
        for key, value in sorted(credit.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    return {"model": model, "rows": rows, "total": total}


# --- the same panels from the aggregate tables (leads.rollups) --------------------------------


class RollupReport:
    """Dashboard panels read from `LeadRollup` / `AttributionRollup` for whole-base dashboards
    (admins, marketing, no source / campaign / team filter): a few grouped queries over at
    most one row per day, source or campaign, stage and furthest stage, whatever the number
    of leads."""

    def __init__(self, f: Filters, run):
        self.f, self.run = f, run
        rows = LeadRollup.objects.filter(day__gte=f.start, day__lte=f.end).order_by()
        self.by_source, self.by_campaign = rows.filter(kind="source"), rows.filter(kind="campaign")
        if f.source:
            self.by_source = self.by_source.filter(key=f.source)
        if f.campaign:
            self.by_campaign = self.by_campaign.filter(key=f.campaign)
        # The leads of the view, once each: per source (no filter or a source), or per
        # campaign (a campaign filter).
        self.leads = self.by_campaign if f.campaign else self.by_source
        self.attributions = AttributionRollup.objects.filter(day__gte=f.start, day__lte=f.end).order_by()

    @staticmethod
    def covers(f: Filters) -> bool:
        """Whether the tables answer this view at all: not per team, not source × campaign."""
        return not (f.team or (f.source and f.campaign))

    def has(self, panel: str) -> bool:
        """Panels the tables answer under the view's filter (the others are read live)."""
        if panel == "over_time":
            return not self.f.campaign  # by source within a campaign: not in the tables
        if panel == "cpl":
            return not self.f.source  # by campaign within a source: not in the tables
        if panel == "attribution":
            return not (self.f.source or self.f.campaign)
        return True

    def funnel(self) -> dict:
        counts = {s: 0 for s in Stage.values}
        ranks: list[tuple[int, int]] = []
        for row in self.leads.values("stage", "top").annotate(n=Sum("n")):
            counts[row["stage"]] = counts.get(row["stage"], 0) + row["n"]
            ranks.append((row["top"], row["n"]))
        return funnel.funnel(counts, ranks)

    def over_time(self) -> dict:
        weekly = (self.f.end - self.f.start).days > 62
        bucket = TruncWeek("day") if weekly else F("day")
        rows = (
            self.by_source.annotate(bucket=bucket, src=Coalesce(NullIf(F("key"), Value("")), Value("(none)")))
            .values("bucket", "src")
            .annotate(n=Sum("n"))
        )
        return _over_time_result(self.f, rows)

    def cpl(self) -> dict:
        rows = self.by_campaign.exclude(key="").filter(top__gte=0).values_list("key", "top")
        return cpl(None, by_campaign=funnel.reached_by_key(rows.annotate(n=Sum("n"))))

    def pipeline(self) -> dict:
        agg = self.leads.aggregate(
            open_n=Sum("open_n"),
            open_value=Sum("open_value"),
            won_n=Sum("won_n"),
            won_value=Sum("won_value"),
            lost_n=Sum("lost_n"),
            cycle_n=Sum("cycle_n"),
            cycle_seconds=Sum("cycle_seconds"),
        )
        won_n = agg["won_n"] or 0
        avg_deal = (agg["won_value"] / won_n) if won_n else None
        cycle_days = agg["cycle_seconds"] / agg["cycle_n"] / 86400 if agg["cycle_n"] else None
        return _pipeline_result(agg["open_n"] or 0, agg["open_value"], won_n, agg["lost_n"] or 0, avg_deal, cycle_days)

    def attribution(self, model: str) -> dict:
        rows = self.attributions.filter(model=model).values("credited").annotate(c=Sum("credit"))
        return _attribution_result(model, {r["credited"]: float(r["c"]) for r in rows})

    def sla(self) -> dict:
        """The SLA panel's shape (routing.selectors.sla_compliance, per team) from SlaRollup."""
        rows = (
            SlaRollup.objects.filter(day__gte=self.f.start, day__lte=self.f.end)
            .order_by()
            .values("team_id")
            .annotate(total=Sum("total"), met=Sum("met"))
        )
        names = dict(Team.objects.values_list("pk", "name"))
        teams = [
            {
                "team": r["team_id"],
                "team_name": names.get(r["team_id"]),
                "total": r["total"],
                "met": r["met"],
                "rate": round(r["met"] / r["total"], 4) if r["total"] else None,
            }
            for r in rows
        ]
        return {"teams": sorted(teams, key=lambda r: r["team_name"] or ""), "sellers": []}


def rollup_sources() -> list[str]:
    """Every lead source, from the aggregate table (a distinct over the leads scans them all)."""
    rows = LeadRollup.objects.filter(kind="source").exclude(key="").order_by("key")
    return list(rows.values_list("key", flat=True).distinct())

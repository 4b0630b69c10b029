"""The dashboard's aggregate tables, rebuilt set-based by a worker (PostgreSQL).

`dashboard_rollup_refresh()` recomputes `LeadRollup` (leads per creation day and source, and
per creation day and campaign, current stage and furthest funnel stage reached, with their
offers) and `AttributionRollup` (first / last / linear credit of qualified leads per day) in
one transaction:
readers see the previous figures until it commits. Beat runs it every few minutes
(`leads.tasks.dashboard_rollup_refresh`); `leads.reports` reads it for whole-base
dashboards without a source, campaign or team filter while the last run is recent enough
(filtered views read the leads: they are a fraction of the base).
"""

from __future__ import annotations

import datetime as dt
import time

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from leads import funnel
from leads.models import RollupRun, Stage

LEAD_ROLLUP_SQL = f"""
WITH hist AS (
    SELECT lead_id, MAX({funnel.rank_sql("to_stage")}) AS top,
           MIN(created_at) FILTER (WHERE to_stage = '{Stage.WO.value}') AS won_at
    FROM leads_stagechange GROUP BY lead_id
), facts AS (
    SELECT (l.created_at AT TIME ZONE 'UTC')::date AS day, l.source, l.utm_campaign, l.stage,
           COALESCE(h.top, -1) AS top, o.status, o.amount,
           EXTRACT(EPOCH FROM (h.won_at - l.created_at)) AS cycle
    FROM leads_lead l
    LEFT JOIN hist h ON h.lead_id = l.id
    LEFT JOIN leads_opportunity o ON o.lead_id = l.id
)
INSERT INTO leads_leadrollup (day, kind, key, stage, top, n, open_n, open_value, won_n, won_value, lost_n,
                              cycle_n, cycle_seconds)
SELECT day, kind, key, stage, top, COUNT(*),
       COUNT(*) FILTER (WHERE status = 'open'), COALESCE(SUM(amount) FILTER (WHERE status = 'open'), 0),
       COUNT(*) FILTER (WHERE status = 'won'), COALESCE(SUM(amount) FILTER (WHERE status = 'won'), 0),
       COUNT(*) FILTER (WHERE status = 'lost'), COUNT(cycle), COALESCE(SUM(cycle), 0)
FROM (SELECT *, 'source' AS kind, source AS key FROM facts
      UNION ALL SELECT *, 'campaign' AS kind, utm_campaign AS key FROM facts) x
GROUP BY day, kind, key, stage, top
"""

_OWN_SOURCE = "COALESCE(NULLIF(l.utm_source, ''), NULLIF(l.source, ''), '(direct)')"
_QUALIFIED = ", ".join(f"'{s.value}'" for s in funnel.QUALIFIED_STAGES)
_DAY = "(l.created_at AT TIME ZONE 'UTC')::date"

ATTRIBUTION_SQL = [
    # first / last touch: the utm_source of the lead's earliest / latest touchpoint carrying one
    f"""
    INSERT INTO leads_attributionrollup (day, model, credited, credit)
    SELECT {_DAY}, %s, COALESCE(t.utm_source, {_OWN_SOURCE}), COUNT(*)
    FROM leads_lead l
    LEFT JOIN LATERAL (
        SELECT utm_source FROM leads_touchpoint
        WHERE lead_id = l.id AND utm_source <> '' ORDER BY occurred_at {direction}, id {direction} LIMIT 1
    ) t ON TRUE
    WHERE l.stage IN ({_QUALIFIED})
    GROUP BY 1, 3
    """
    for direction in ("ASC", "DESC")
]
LINEAR_SQL = f"""
INSERT INTO leads_attributionrollup (day, model, credited, credit)
SELECT {_DAY}, 'linear', COALESCE(t.utm_source, {_OWN_SOURCE}), SUM(COALESCE(1.0 / t.n, 1))
FROM leads_lead l
LEFT JOIN (
    SELECT lead_id, utm_source, COUNT(*) OVER (PARTITION BY lead_id) AS n
    FROM leads_touchpoint WHERE utm_source <> '' AND lead_id IN (
        SELECT id FROM leads_lead WHERE stage IN ({_QUALIFIED}))
) t ON t.lead_id = l.id
WHERE l.stage IN ({_QUALIFIED})
GROUP BY 1, 3
"""


SLA_SQL = """
INSERT INTO leads_slarollup (day, team_id, total, met)
SELECT (started_at AT TIME ZONE 'UTC')::date, team_id, COUNT(*),
       COUNT(*) FILTER (WHERE first_touch_at IS NOT NULL AND first_touch_at <= due_at)
FROM {table} WHERE first_touch_at IS NOT NULL OR due_at <= %s
GROUP BY 1, 2
"""


def dashboard_rollup_refresh() -> RollupRun | None:
    """Rebuild both aggregate tables (PostgreSQL only; elsewhere the dashboard reads live)."""
    if connection.vendor != "postgresql":
        return None
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        # One refresh at a time; readers keep the previous figures until commit.
        cur.execute("SELECT pg_advisory_xact_lock(4242001)")
        cur.execute("DELETE FROM leads_leadrollup")
        cur.execute("DELETE FROM leads_attributionrollup")
        cur.execute(LEAD_ROLLUP_SQL)
        for model, sql in zip(("first", "last"), ATTRIBUTION_SQL, strict=True):
            cur.execute(sql, [model])
        cur.execute(LINEAR_SQL)
        # SLA compliance, the routing app's clocks counted the way routing.selectors does.
        cur.execute("DELETE FROM leads_slarollup")
        if apps.is_installed("routing"):
            clocks = apps.get_model("routing", "SlaClock")._meta.db_table
            cur.execute(SLA_SQL.format(table=clocks), [timezone.now()])
        cur.execute("ANALYZE leads_leadrollup, leads_attributionrollup, leads_slarollup")
        cur.execute("SELECT COALESCE(SUM(n), 0) FROM leads_leadrollup WHERE kind = 'source'")
        leads = int(cur.fetchone()[0])
        run = RollupRun.objects.create(finished_at=timezone.now(), leads=leads, seconds=time.perf_counter() - t0)
        RollupRun.objects.filter(finished_at__lt=run.finished_at - dt.timedelta(days=1)).delete()
    return run


def fresh_run() -> RollupRun | None:
    """The last run when recent enough to stand for the live figures, else None."""
    if connection.vendor != "postgresql":
        return None
    max_age = dt.timedelta(seconds=getattr(settings, "LEADCRM_DASHBOARD_ROLLUP_MAX_AGE", 900))
    return RollupRun.objects.filter(finished_at__gte=timezone.now() - max_age).order_by("-finished_at").first()

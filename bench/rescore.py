"""Full rescore benchmark: N leads with M events, then `leads_rescore_all` (the path of a
rule-set activation, the nightly decay and `manage.py rescore`).

    python bench/rescore.py [--leads 1000000] [--events-per-lead 5] [--skip-setup]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_scoring;
created and migrated if needed). The data is generated with COPY (leads and touchpoints
tables emptied first), vacuumed and checkpointed as a production database would be after
the import, a typical rule set is made active, then every lead is rescored (every score
changes, from 0): prints leads/s and the peak memory (ru_maxrss) before and after.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_scoring")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")  # reactions (routing) go to a queue
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402

INDUSTRIES = ["Software", "Manufacturing", "Retail", "Finance", "Health", "Education", "Logistics"]
COUNTRIES = ["FR", "DE", "BE", "ES", "GB", "IT", "US", "CH"]
TITLES = ["CTO", "Head of Marketing", "Buyer", "CEO", "Engineer", "Student", "VP Sales"]
TYPES = ["page_view"] * 6 + ["email_open"] * 3 + ["email_click", "download", "webinar", "pricing_view", "demo_request"]
URLS = [
    "https://acme.example/",
    "https://acme.example/pricing",
    "https://acme.example/blog/x",
    "https://acme.example/docs",
]

RULESET = {
    "name": "Bench ICP",
    "mql_threshold": 60,
    "fit_rules": [
        {"name": "Software", "field": "industry", "operator": "equals", "value": "Software", "points": 20},
        {"name": "Target countries", "field": "country", "operator": "in", "value": ["FR", "BE", "CH"], "points": 10},
        {
            "name": "Mid-market",
            "field": "company_size",
            "operator": "range",
            "value": {"min": 50, "max": 5000},
            "points": 15,
        },
        {"name": "Decision maker", "field": "job_title", "operator": "contains", "value": "head", "points": 10},
        {"name": "Student", "field": "job_title", "operator": "equals", "value": "Student", "points": -30},
        {"name": "Pro plan", "field": "properties.plan", "operator": "equals", "value": "pro", "points": 10},
    ],
    "engagement_rules": [
        {
            "name": "Visits",
            "event_type": "page_view",
            "points": 2,
            "cap": 10,
            "cap_period_days": 7,
            "half_life_days": 30,
        },
        {
            "name": "Pricing page",
            "event_type": "page_view",
            "url_pattern": "/pricing",
            "points": 8,
            "cap": 16,
            "half_life_days": 30,
        },
        {"name": "E-mail click", "event_type": "email_click", "points": 5, "cap": 15, "half_life_days": 60},
        {"name": "Webinar", "event_type": "webinar", "points": 15, "half_life_days": 90},
        {"name": "Demo request", "event_type": "demo_request", "points": 30, "half_life_days": 60},
        {"name": "Download", "event_type": "download", "points": 6, "cap": 12, "half_life_days": 60},
    ],
}


def _copy(cur, table: str, cols: str, buf: io.StringIO) -> None:
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)", buf)


def generate(n_leads: int, events_per_lead: float, seed: int = 1) -> None:
    from django.db import connection

    rnd = random.Random(seed)
    now = time.time()
    lead_cols = (
        "email, first_name, last_name, phone, job_title, company_name, company_domain, industry, company_size,"
        " country, city, source, utm_source, utm_medium, utm_campaign, utm_term, utm_content, properties, stage,"
        " stage_changed_at, score, fit_score, engagement_score, grade, consent_status, consent_source,"
        " activity_count, created_at, updated_at"
    )
    ev_cols = (
        "lead_id, type, url, utm_source, utm_medium, utm_campaign, utm_term, utm_content, properties,"
        " occurred_at, created_at"
    )
    chunk = 100_000
    with connection.cursor() as c:
        cur = c.cursor
        cur.execute(
            "TRUNCATE leads_scorechange, leads_touchpoint, leads_stagechange, leads_assignment, leads_bant,"
            " leads_opportunity, leads_visitor, leads_lead, leads_company RESTART IDENTITY CASCADE"
        )
        ts = "2026-01-01T00:00:00+00:00"
        for start in range(0, n_leads, chunk):
            buf = io.StringIO()
            for i in range(start, min(n_leads, start + chunk)):
                plan = "pro" if rnd.random() < 0.3 else "free"
                buf.write(
                    f'lead{i}@c{i % 50000}.example,F{i},L{i},"",{rnd.choice(TITLES)}'
                    f",C{i % 50000},c{i % 50000}.example,"
                    f"{rnd.choice(INDUSTRIES)},{rnd.choice((5, 20, 80, 250, 1000, 9000))},{rnd.choice(COUNTRIES)},"
                    f'Lyon,seo,"","","","","","{{""plan"": ""{plan}"", ""seats"": {rnd.randint(1, 500)}}}",'
                    f'{"MCL" if rnd.random() < 0.85 else "SQL"},{ts},0,0,0,"",none,"",0,{ts},{ts}\n'
                )
            _copy(cur, "leads_lead", lead_cols, buf)
        total_events = int(n_leads * events_per_lead)
        for start in range(0, total_events, chunk):
            buf = io.StringIO()
            for _ in range(start, min(total_events, start + chunk)):
                # Events in lead order (as they accumulate per lead over time in practice).
                lead_id = 1 + int(start / events_per_lead) + rnd.randint(0, int(chunk / events_per_lead) - 1)
                lead_id = min(lead_id, n_leads)
                when = now - rnd.random() * 180 * 86400
                at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))
                buf.write(f'{lead_id},{rnd.choice(TYPES)},{rnd.choice(URLS)},"","","","","",{{}},{at},{at}\n')
            _copy(cur, "leads_touchpoint", ev_cols, buf)
    # As autovacuum leaves an imported table (this machine runs with it off): hint bits and
    # the visibility map set, statistics fresh; and no checkpoint pending from the load.
    with connection.cursor() as c:
        c.execute("VACUUM (ANALYZE) leads_lead, leads_touchpoint")
        c.execute("CHECKPOINT")


def server_settings() -> str:
    """The PostgreSQL settings the figure depends on most (printed with it)."""
    from django.db import connection

    names = ("server_version", "shared_buffers", "max_wal_size", "autovacuum")
    with connection.cursor() as cur:
        cur.execute("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", [list(names)])
        found = dict(cur.fetchall())
    return ", ".join(f"{name}={found.get(name, '?')}" for name in names)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events-per-lead", type=float, default=5.0)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--skip-setup", action="store_true", help="rescore the data already there")
    args = parser.parse_args()

    django_ready()

    from leadcrm.actors import Actor
    from leads.models import Lead
    from scoring import services
    from scoring.models import RuleSet

    if not args.skip_setup:
        t0 = time.perf_counter()
        generate(args.leads, args.events_per_lead)
        print(
            f"setup: {args.leads:,} leads, {int(args.leads * args.events_per_lead):,} events by COPY"
            f" in {time.perf_counter() - t0:.1f} s"
        )
        RuleSet.objects.all().delete()
        rs = services.ruleset_create(data=RULESET, actor=Actor.automation())
        RuleSet.objects.filter(pk=rs.pk).update(is_active=True)  # active without the background rescore
    n = Lead.objects.count()
    print(f"server: {server_settings()}")
    before = peak_mb()
    print(f"full rescore of {n:,} leads (chunks of {args.chunk_size:,}), peak RSS before: {before:,.0f} MB")
    done = [0]
    t0 = time.perf_counter()

    def progress(k: int) -> None:
        done[0] += k
        rate = done[0] / (time.perf_counter() - t0)
        sys.stdout.write(f"\r  {done[0]:>10,} / {n:,}  {rate:>9,.0f} leads/s")
        sys.stdout.flush()

    stats = services.leads_rescore_all(chunk_size=args.chunk_size, progress=progress)
    elapsed = time.perf_counter() - t0
    print()
    print(
        f"rescored {stats.leads:,} leads in {elapsed:.1f} s: {stats.leads / elapsed:,.0f} leads/s;"
        f" {stats.changed:,} changed, {stats.promoted:,} promoted to MQL"
    )
    print(f"peak RSS after: {peak_mb():,.0f} MB (before rescore {before:,.0f} MB)")
    t0 = time.perf_counter()
    again = services.leads_rescore_all(chunk_size=args.chunk_size)
    elapsed = time.perf_counter() - t0
    print(f"second pass (nothing to write but decay): {again.leads / elapsed:,.0f} leads/s, {again.changed:,} changed")


if __name__ == "__main__":
    main()

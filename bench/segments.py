"""Segment benchmark: what keeping segments current costs, full and incremental.

    python bench/segments.py [--leads 100000] [--segments 20] [--batch 1000]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_segments;
created and migrated if needed; its leads and segments emptied first). Builds `--leads`
leads with a spread of countries, sources, grades, scores and properties, plus page views
for a tenth of them, then `--segments` dynamic segments mixing the leads list's filters,
custom fields, an event window and one segment of segments. Prints:
- the full evaluation of every segment (leads checked/s; what creating or editing costs),
- the incremental refresh after a domain event about `--batch` leads (ms per event batch,
  SQL queries): the cost that follows the leads that changed, not the audience,
- the hourly time-window re-check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_segments")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402

COUNTRIES = ["FR", "DE", "ES", "IT", "BE", "NL", "GB", "US"]
SOURCES = ["seo", "google-ads", "linkedin-ads", "trade-fair", "webinar", "partner"]
PLANS = ["free", "pro", "enterprise"]


def build(n_leads: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from leads.models import Lead, Touchpoint

    with connection.cursor() as cur:
        cur.execute("TRUNCATE nurturing_segmentchange, nurturing_segmentmembership, nurturing_segment CASCADE")
        cur.execute("TRUNCATE leads_lead CASCADE")
    rnd = random.Random(7)
    now = timezone.now()
    rows = [
        Lead(
            email=f"seg{i}@bench.example",
            country=rnd.choice(COUNTRIES),
            source=rnd.choice(SOURCES),
            grade=rnd.choice("ABCD"),
            score=rnd.randint(0, 100),
            stage=rnd.choice(["MCL", "MQL", "SQL"]),
            properties={"plan": rnd.choice(PLANS), "seats": rnd.randint(1, 500)},
        )
        for i in range(n_leads)
    ]
    Lead.objects.bulk_create(rows, batch_size=5_000)
    ids = list(Lead.objects.values_list("pk", flat=True))
    views = [
        Touchpoint(lead_id=pk, type="page_view", occurred_at=now - dt.timedelta(days=rnd.randint(0, 30)))
        for pk in rnd.sample(ids, len(ids) // 10)
        for _ in range(2)
    ]
    Touchpoint.objects.bulk_create(views, batch_size=5_000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE leads_lead")
        cur.execute("ANALYZE leads_touchpoint")


def filters(n: int) -> list[dict]:
    rnd = random.Random(11)
    out = []
    for i in range(n - 1):
        f: dict = {"country": rnd.choice(COUNTRIES)}
        if i % 2:
            f["grade"] = rnd.sample("ABCD", 2)
        if i % 3 == 0:
            f["score_min"] = rnd.randint(20, 80)
        if i % 4 == 0:
            f["properties"] = {"plan": [rnd.choice(PLANS)]}
        if i % 5 == 0:
            f["events"] = [{"type": "page_view", "within_days": 7, "min_count": 1}]
        if i % 6 == 0:
            f["source"] = rnd.choice(SOURCES)
        out.append(f)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    django_ready()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from leadcrm.actors import Actor
    from leads.models import Lead
    from nurturing import services
    from nurturing.models import Segment, SegmentMembership

    build(args.leads)
    print(f"{args.leads:,} leads, {args.segments} dynamic segments")
    actor = Actor.automation()
    started = time.perf_counter()
    made = [services.segment_create(actor=actor, name=f"S{i}", filter=f) for i, f in enumerate(filters(args.segments))]
    made.append(services.segment_create(actor=actor, name="Nested", filter={"segments": [made[0].pk], "grade": ["A"]}))
    full = time.perf_counter() - started
    checked = args.leads * len(made)
    members = SegmentMembership.objects.count()
    rate = checked / full
    print(f"full evaluation: {full:.2f} s for {len(made)} segments, {rate:,.0f} lead checks/s, {members:,} members")

    ids = list(Lead.objects.order_by("?").values_list("pk", flat=True)[: args.batch])
    Lead.objects.filter(pk__in=ids[: len(ids) // 2]).update(grade="A", score=90)
    timings = []
    for _ in range(5):
        with CaptureQueriesContext(connection) as queries:
            t = time.perf_counter()
            services.segments_refresh(lead_ids=ids, cause="bench")
            timings.append((time.perf_counter() - t) * 1000)
    timings.sort()
    print(
        f"incremental refresh of {len(ids):,} leads x {len(made)} segments: "
        f"median {timings[2]:.0f} ms, worst {timings[-1]:.0f} ms, {len(queries)} SQL queries per event batch"
    )
    t = time.perf_counter()
    services.segments_windows_refresh()
    timed = sum(1 for s in Segment.objects.all() if s.filter.get("events") or s.name == "Nested")
    print(f"time-window re-check: {time.perf_counter() - t:.2f} s ({timed} segments with a window or naming one)")


if __name__ == "__main__":
    main()

"""Per-event path benchmark: events/s through `POST /api/v1/events/` with scoring on.

    python bench/events.py [--leads 10000] [--batches 20] [--batch-size 500]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_scoring;
its lead tables are emptied first). A typical rule set is active and tasks run eagerly, so
each request records its events, then (after commit) refreshes activity and rescores the
leads it touched, promoting those that cross the MQL threshold: the whole per-event path
in-process, without a network hop. Batched lists, as integrations send them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_scoring")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402
from bench.rescore import RULESET, URLS, generate  # noqa: E402

TYPES = ["page_view", "page_view", "email_open", "email_click", "download", "webinar", "pricing_view", "demo_request"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()

    django_ready()
    logging.disable(logging.INFO)
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from accounts.models import User
    from leadcrm.actors import Actor
    from leads.models import Lead, ScoreChange, Stage
    from scoring import services
    from scoring.models import RuleSet

    generate(args.leads, 2)
    RuleSet.objects.all().delete()
    rs = services.ruleset_create(data=RULESET, actor=Actor.automation())
    RuleSet.objects.filter(pk=rs.pk).update(is_active=True)
    services.leads_rescore_all()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": "admin", "is_superuser": True})
    token, _ = Token.objects.get_or_create(user=admin)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="localhost")

    rnd = random.Random(3)
    ids = list(Lead.objects.values_list("pk", flat=True))
    bodies = []
    for _ in range(args.batches):
        # A batch from one site: a few hundred events over ~100 visitors' leads.
        leads = rnd.sample(ids, min(100, len(ids)))
        bodies.append(
            json.dumps(
                [
                    {"lead_id": rnd.choice(leads), "type": rnd.choice(TYPES), "url": rnd.choice(URLS)}
                    for _ in range(args.batch_size)
                ]
            )
        )
    mql_before, changes_before = Lead.objects.filter(stage=Stage.MQL).count(), ScoreChange.objects.count()
    print(f"POST /api/v1/events/ — {args.batches} batches of {args.batch_size} events, scoring on (PostgreSQL)")
    total, elapsed = 0, 0.0
    for n, body in enumerate(bodies, 1):
        t0 = time.perf_counter()
        resp = client.post("/api/v1/events/", body, content_type="application/json")
        dt = time.perf_counter() - t0
        assert resp.status_code in (200, 201), (resp.status_code, resp.content[:300])
        total += args.batch_size
        elapsed += dt
        if n <= 3 or n == args.batches:
            print(f"  batch {n}: {args.batch_size / dt:8,.0f} events/s ({dt * 1000:,.0f} ms)")
    print(
        f"{total:,} events in {elapsed:.2f} s: {total / elapsed:,.0f} events/s;"
        f" {ScoreChange.objects.count() - changes_before:,} score changes,"
        f" {Lead.objects.filter(stage=Stage.MQL).count() - mql_before:,} leads promoted to MQL"
    )


if __name__ == "__main__":
    main()

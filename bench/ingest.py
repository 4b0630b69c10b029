"""Bulk ingest benchmark: `POST /api/v1/leads/bulk/` vs a raw COPY of the same rows.

    python bench/ingest.py [--batches 5] [--batch-size 10000]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench;
the database is created and migrated if needed, and its lead tables emptied first). The API
calls go through the whole Django stack in-process (JSON parsing, auth, validation,
set-based writes, history rows), without a network hop.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
# Reactions (scoring, routing) are queued for workers, not run inside the timed request.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402

COUNTRIES = ["France", "FR", "Germany", "DE", "Espagne", "GB", "Belgique", "CH", "US", "IT"]
INDUSTRIES = ["software", "manufacturing", "retail", "finance", "health", "education", "logistics"]
SOURCES = ["seo", "google-ads", "linkedin-ads", "trade-fair", "webinar", "partner", "emailing"]


def make_rows(start: int, n: int, rnd: random.Random) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        company = f"company{i % 5000}"
        rows.append(
            {
                "email": f"lead{i}@{company}.example.com",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "phone": "+33 6 " + " ".join(str(rnd.randint(10, 99)) for _ in range(4)),
                "job_title": rnd.choice(["CTO", "Head of Marketing", "Buyer", "CEO", "Engineer"]),
                "company": company.title(),
                "industry": rnd.choice(INDUSTRIES),
                "company_size": rnd.choice([5, 20, 80, 250, 1000, 5000]),
                "country": rnd.choice(COUNTRIES),
                "city": "Lyon",
                "source": rnd.choice(SOURCES),
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": f"camp{i % 20}",
                "properties": {"product_interest": rnd.choice(["crm", "analytics"]), "seats": rnd.randint(1, 500)},
            }
        )
    return rows


def _client_run(first: int, batches: int, size: int, token: str) -> tuple[int, float, float]:
    """One client in its own process: post `batches` batches of new leads; return how many
    and when its posting started and ended (wall clock, bodies built beforehand)."""
    from django.db import connection
    from django.test import Client

    connection.close()  # never share the parent's socket
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="localhost")
    rnd = random.Random(first)
    bodies = [json.dumps({"leads": make_rows(first + b * size, size, rnd)}) for b in range(batches)]
    done, started = 0, time.time()
    for body in bodies:
        resp = client.post("/api/v1/leads/bulk/", body, content_type="application/json")
        assert resp.status_code == 200 and resp.json()["failed"] == 0, resp.content[:300]
        done += size
    ended = time.time()
    connection.close()
    return done, started, ended


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument(
        "--clients", type=int, default=2, help="concurrent clients for the throughput phase (web workers)"
    )
    args = parser.parse_args()

    django_ready()
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from accounts.models import User

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE leads_touchpoint, leads_stagechange, leads_assignment, leads_bant, leads_opportunity,"
            " leads_visitor, leads_lead, leads_company RESTART IDENTITY CASCADE"
        )
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"role": "admin", "is_superuser": True})
    token, _ = Token.objects.get_or_create(user=admin)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="localhost")

    rnd = random.Random(42)
    batches = [make_rows(b * args.batch_size, args.batch_size, rnd) for b in range(args.batches)]
    bodies = [json.dumps({"leads": rows}) for rows in batches]

    total, elapsed = 0, 0.0
    print(f"POST /api/v1/leads/bulk/ — {args.batches} batches of {args.batch_size:,} new leads (PostgreSQL)")
    for n, body in enumerate(bodies, 1):
        t0 = time.perf_counter()
        resp = client.post("/api/v1/leads/bulk/", body, content_type="application/json")
        dt = time.perf_counter() - t0
        data = resp.json()
        assert resp.status_code == 200 and data["failed"] == 0, (resp.status_code, str(data)[:500])
        total += data["created"] + data["updated"]
        elapsed += dt
        print(f"  batch {n}: {args.batch_size / dt:8,.0f} leads/s  ({dt * 1000:,.0f} ms, created {data['created']:,})")
    api_rate = total / elapsed
    # A second pass of the first batch: every row is an existing lead (dedupe + touchpoint).
    t0 = time.perf_counter()
    resp = client.post("/api/v1/leads/bulk/", bodies[0], content_type="application/json")
    dt_upd = time.perf_counter() - t0
    assert resp.json()["updated"] == args.batch_size

    # Throughput with several clients at once, as several web workers would serve them:
    # one process each (own connection), fresh leads, wall-clock time for all of them.
    clients_rate = None
    if args.clients > 1:
        connection.close()
        start = 10_000_000
        jobs = [
            (start + c * args.batches * args.batch_size, args.batches, args.batch_size, token.key)
            for c in range(args.clients)
        ]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(args.clients) as pool:
            runs = pool.starmap(_client_run, jobs)
        window = max(end for _, _, end in runs) - min(start for _, start, _ in runs)
        clients_rate = sum(done for done, _, _ in runs) / window

    # Raw COPY of the same rows into a bare table, same run, same database.
    cols = [
        "email",
        "first_name",
        "last_name",
        "phone",
        "job_title",
        "company",
        "industry",
        "company_size",
        "country",
        "city",
        "source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "properties",
    ]
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_raw_leads")
        cur.execute(
            "CREATE TABLE bench_raw_leads (id bigserial primary key, email text, first_name text, last_name text,"
            " phone text, job_title text, company text, industry text, company_size int, country text, city text,"
            " source text, utm_source text, utm_medium text, utm_campaign text, properties jsonb)"
        )
    copy_elapsed = 0.0
    for rows in batches:
        buf = io.StringIO()
        for r in rows:
            values = [r[c] if c != "properties" else json.dumps(r[c]) for c in cols]
            buf.write("\t".join(str(v).replace("\t", " ") for v in values) + "\n")
        buf.seek(0)
        t0 = time.perf_counter()
        with connection.cursor() as cur:
            cur.cursor.copy_expert(f"COPY bench_raw_leads ({', '.join(cols)}) FROM STDIN", buf)
        copy_elapsed += time.perf_counter() - t0
    copy_rate = total / copy_elapsed
    with connection.cursor() as cur:
        cur.execute("DROP TABLE bench_raw_leads")

    print()
    print(f"bulk API, new leads       : {api_rate:10,.0f} leads/s")
    print(f"bulk API, existing leads  : {args.batch_size / dt_upd:10,.0f} leads/s (dedupe → update + touchpoint)")
    if clients_rate:
        print(f"bulk API, {args.clients} clients at once: {clients_rate:10,.0f} leads/s (one process each)")
    print(f"raw COPY, same rows       : {copy_rate:10,.0f} rows/s")
    best = max(api_rate, clients_rate or 0)
    print(f"API / COPY                : {best / copy_rate:10.1%}  (target: ≥ 5,000 leads/s)")


if __name__ == "__main__":
    main()

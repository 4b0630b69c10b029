"""Routing benchmark: route a batch of new MQLs against ordered rules and a team of sellers.

    python bench/route.py [--leads 100000] [--rules 50] [--sellers 200] [--teams 10] [--chunk 10000]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_routing;
created and migrated if needed, its lead, routing and seller rows emptied first). Routing
goes through `routing.services.leads_route_batch` in chunks (one transaction each): rule
matching, row-locked weighted round-robin under capacity, owners, Assignment rows with
their "why", SLA clocks, round-robin counters, notifications and the `lead.assigned`
reaction (run eagerly, so it is counted). Prints routings/s and the final per-seller load.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_routing")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("EMAIL_URL", "dummymail://")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

COUNTRIES = ["FR", "DE", "ES", "IT", "BE", "NL", "CH", "GB", "US", "PT", "AT", "PL"]
INDUSTRIES = ["software", "manufacturing", "retail", "finance", "health", "education", "logistics"]
SOURCES = ["seo", "google-ads", "linkedin-ads", "trade-fair", "webinar", "partner", "emailing"]
PRODUCTS = ["crm", "analytics", "erp", "support"]

from bench.common import django_ready  # noqa: E402


def make_rules(n: int, teams: list, rnd: random.Random) -> list[dict]:
    """n-1 specific rules (most leads fall through many of them) and a default rule last."""
    rules = []
    for i in range(n - 1):
        kind = i % 5
        if kind == 0:
            cond = {"country": rnd.sample(COUNTRIES, 2), "company_size_min": rnd.choice([500, 1000, 2000])}
        elif kind == 1:
            cond = {"industry": [rnd.choice(INDUSTRIES)], "grade": ["A"], "score_min": rnd.randint(70, 90)}
        elif kind == 2:
            cond = {"source": [rnd.choice(SOURCES)], "country": [rnd.choice(COUNTRIES)]}
        elif kind == 3:
            cond = {
                "properties": {"product_interest": [rnd.choice(PRODUCTS)]},
                "company_size_max": rnd.choice([20, 50]),
            }
        else:
            cond = {"country": [rnd.choice(COUNTRIES)], "industry": rnd.sample(INDUSTRIES, 2), "grade": ["A", "B"]}
        rules.append(
            {"name": f"rule {i + 1}", "position": (i + 1) * 10, "conditions": cond, "team": teams[i % len(teams)]}
        )
    rules.append({"name": "default", "position": 10_000, "conditions": {}, "team": teams[0]})
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--sellers", type=int, default=200)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--chunk", type=int, default=10_000)
    args = parser.parse_args()

    django_ready()
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Role, Team, User
    from leadcrm.actors import Actor
    from leadcrm.bulk import insert_rows
    from leads.models import Lead, Stage
    from routing import services
    from routing.models import RoutingRule, SlaPolicy

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE leads_touchpoint, leads_stagechange, leads_assignment, leads_bant, leads_opportunity,"
            " leads_visitor, leads_lead, leads_company, routing_slaclock, routing_partneroffer,"
            " routing_roundrobinstate, routing_routingrule, routing_slapolicy, accounts_notification"
            " RESTART IDENTITY CASCADE"
        )
        cur.execute("DELETE FROM accounts_user WHERE username LIKE 'bench-seller-%%'")
        cur.execute("DELETE FROM accounts_team WHERE name LIKE 'Bench team %%'")

    rnd = random.Random(7)
    teams = [Team.objects.create(name=f"Bench team {t}") for t in range(args.teams)]
    per_team = args.sellers // args.teams
    # Capacity proportional to weight and large enough that the rules' uneven split between
    # teams never fills a team: the spread below then shows the round-robin's fairness.
    room = 10 * args.leads // args.sellers
    sellers = User.objects.bulk_create(
        [
            User(
                username=f"bench-seller-{i}",
                role=Role.SDR,
                team=teams[i // per_team],
                weight=1 + i % 3,
                capacity=room * (1 + i % 3) // 2,
                routing_active=(i % 25 != 0),  # a few sellers are away
                email=f"bench-seller-{i}@example.com",
            )
            for i in range(per_team * args.teams)
        ]
    )
    for r in make_rules(args.rules, teams, rnd):
        RoutingRule.objects.create(**r)
    SlaPolicy.objects.create(name="A", grade="A", minutes_to_first_touch=60, reassign_after_minutes=120)
    SlaPolicy.objects.create(name="Others", minutes_to_first_touch=240)

    now = timezone.now()
    leads = (
        Lead(
            email=f"mql{i}@company{i % 20000}.example.com",
            first_name=f"F{i}",
            last_name=f"L{i}",
            company_name=f"Company {i % 20000}",
            industry=rnd.choice(INDUSTRIES),
            company_size=rnd.choice([5, 20, 80, 250, 1000, 5000]),
            country=rnd.choice(COUNTRIES),
            source=rnd.choice(SOURCES),
            properties={"product_interest": rnd.choice(PRODUCTS)},
            stage=Stage.MQL,
            stage_changed_at=now,
            score=rnd.randint(50, 100),
            grade=rnd.choice("ABCD"),
            created_at=now,
            updated_at=now,
        )
        for i in range(args.leads)
    )
    t0 = time.perf_counter()
    ids = sorted(pk for (pk,) in insert_rows(leads, model=Lead, returning=("id",)))
    print(
        f"set-up: {args.leads:,} MQLs inserted in {time.perf_counter() - t0:.1f} s; "
        f"{args.rules} rules, {len(sellers)} sellers in {args.teams} teams"
    )

    actor = Actor.automation()
    totals: dict[str, int] = {}
    t0 = time.perf_counter()
    for start in range(0, len(ids), args.chunk):
        chunk = ids[start : start + args.chunk]
        counts = services.leads_route_batch(lead_ids=chunk, actor=actor)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    elapsed = time.perf_counter() - t0
    rate = len(ids) / elapsed

    from django.db.models import Count

    loads = dict(Lead.objects.filter(owner__isnull=False).values_list("owner_id").annotate(n=Count("id")))
    rows = [(u, loads.get(u.pk, 0)) for u in User.objects.filter(username__startswith="bench-seller-")]
    active = [(u, n) for u, n in rows if u.routing_active]
    per_weight = [n / u.weight for u, n in active]
    fill = [100 * n / u.capacity for u, n in active]
    over = sum(1 for u, n in rows if n > u.capacity)
    print()
    print(f"routed {len(ids):,} MQLs in {elapsed:.1f} s  ({args.chunk:,} per transaction)")
    print(f"outcomes: {totals}")
    print(f"routings/s                  : {rate:10,.0f}   (target: ≥ 2,000/s)")
    print(f"sellers over capacity       : {over}")
    print(f"away sellers given leads    : {sum(n for u, n in rows if not u.routing_active)}")
    print(
        f"leads per seller (available): min {min(n for _, n in active)}, max {max(n for _, n in active)}, "
        f"mean {statistics.mean(n for _, n in active):.1f}"
    )
    print(
        f"leads per unit of weight    : min {min(per_weight):.1f}, max {max(per_weight):.1f}, "
        f"stdev {statistics.pstdev(per_weight):.1f} (mean {statistics.mean(per_weight):.1f})"
    )
    print(
        f"load / capacity             : min {min(fill):.1f} %, max {max(fill):.1f} %, "
        f"stdev {statistics.pstdev(fill):.1f} pts"
    )
    by_team: dict[int, list[tuple]] = {}
    for u, n in active:
        by_team.setdefault(u.team_id, []).append((u, n))
    spread = ", ".join(f"{sum(n for _, n in v):,}" for _, v in sorted(by_team.items()))
    print(f"leads per team (rules split): {spread}")
    worst = 0.0
    for members in by_team.values():
        total, weights = sum(n for _, n in members), sum(u.weight for u, _ in members)
        for u, n in members:
            expected = total * u.weight / weights
            worst = max(worst, abs(n - expected))
    print(f"within a team, worst gap to the weighted share: {worst:.1f} lead(s)")


if __name__ == "__main__":
    main()

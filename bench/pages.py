"""Page benchmark: server time of the SDR queue, a lead page and the dashboard on a big base.

    python bench/pages.py [--leads 1000000] [--events 5000000] [--requests 40] [--refill]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_pages;
created and migrated if needed). The data is generated with COPY once and kept: a run with
the same --leads/--events reuses it (--refill forces a new fill). Leads spread over two
years; 200 sellers in 20 teams; stages with a realistic funnel and their history, offers,
SLA clocks, 20 campaigns with spend, and --events touchpoints. Each page is requested
in-process through the whole Django stack (middleware, session, templates) with the test
client; the time printed is the server time per request, p50 and p95.
Targets: queue and lead page p95 ≤ 100 ms; dashboard p95 ≤ 500 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_pages")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402
from leadcrm.actors import Actor  # noqa: E402

STAGES = [  # (stage, share, funnel path taken)
    ("MCL", 0.45, ["MCL"]),
    ("MQL", 0.20, ["MCL", "MQL"]),
    ("SQL", 0.08, ["MCL", "MQL", "SQL"]),
    ("SAL", 0.04, ["MCL", "MQL", "SQL", "SAL"]),
    ("CO", 0.03, ["MCL", "MQL", "SQL", "SAL", "CO"]),
    ("WO", 0.02, ["MCL", "MQL", "SQL", "SAL", "CO", "WO"]),
    ("DISQUALIFIED", 0.10, ["MCL", "DISQUALIFIED"]),
    ("LOST", 0.02, ["MCL", "MQL", "SQL", "SAL", "CO", "LOST"]),
    ("RECYCLED", 0.06, ["MCL", "MQL", "SQL", "RECYCLED"]),
]
OPEN = {"MCL", "MQL", "SQL", "SAL", "CO", "RECYCLED"}
SOURCES = ["seo", "google-ads", "linkedin-ads", "trade-fair", "webinar", "partner", "emailing", "referral"]
UTM = ["", "", "google", "linkedin", "newsletter", "facebook", "partner-site"]
EVENT_TYPES = ["page_view"] * 3 + ["email_open", "email_click", "download", "pricing_view", "webinar"]
GRADES = ["A", "B", "C", "D", ""]
DAY = 86400.0


class Copier:
    """Stream generated rows into COPY in chunks (tab-separated text format)."""

    def __init__(self, cursor, table: str, columns: list[str], chunk: int | None = 100_000):
        self.cur, self.table, self.columns, self.chunk = cursor, table, columns, chunk
        self.buf, self.n = io.StringIO(), 0

    def add(self, values) -> None:
        self.buf.write("\t".join("\\N" if v is None else str(v) for v in values))
        self.buf.write("\n")
        self.n += 1
        if self.chunk and self.n % self.chunk == 0:
            self.flush()

    def flush(self) -> None:
        self.buf.seek(0)
        self.cur.copy_expert(f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN", self.buf)
        self.buf = io.StringIO()


def ts(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(epoch))


def fill(n_leads: int, n_events: int) -> None:
    from django.db import connection

    from accounts.models import Team, User
    from leads.models import Campaign

    rnd = random.Random(7)
    now = time.time()
    start = now - 730 * DAY
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE leads_touchpoint, leads_stagechange, leads_assignment, leads_bant, leads_opportunity,"
            " leads_scorechange, routing_slaclock, leads_visitor, leads_lead, leads_company, leads_campaign,"
            " leads_savedfilter RESTART IDENTITY CASCADE"
        )
    User.objects.filter(username__startswith="bench-").delete()
    Team.objects.filter(name__startswith="Bench ").delete()
    teams = [Team.objects.create(name=f"Bench team {t:02d}") for t in range(20)]
    sellers = []
    for t, team in enumerate(teams):
        for s in range(10):
            sellers.append(User(username=f"bench-sdr-{t:02d}-{s}", role="sdr", team=team, capacity=5000))
    User.objects.bulk_create(sellers)
    sellers = list(User.objects.filter(username__startswith="bench-sdr-").order_by("pk").values_list("pk", "team_id"))
    User.objects.create(username="bench-marketing", role="marketing")
    for c in range(20):
        Campaign.objects.create(
            name=f"Campaign {c:02d}", utm_campaign=f"camp{c:02d}", source=SOURCES[c % len(SOURCES)],
            spend=rnd.randint(2, 90) * 1000,
        )  # fmt: skip

    lead_cols = [
        "email", "first_name", "last_name", "phone", "job_title", "company_name", "company_domain", "industry",
        "company_size", "country", "city", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
        "utm_content", "properties", "stage", "stage_changed_at", "closed_at", "owner_id", "team_id", "score",
        "fit_score", "engagement_score", "grade", "conversion_probability", "consent_status", "consent_source",
        "activity_count", "created_at", "updated_at",
    ]  # fmt: skip
    sc_cols = ["lead_id", "from_stage", "to_stage", "actor_type", "reason", "created_at"]
    opp_cols = ["lead_id", "amount", "currency", "expected_close", "status", "lost_reason", "closed_at",
                "created_at", "updated_at"]  # fmt: skip
    sla_cols = ["lead_id", "owner_id", "team_id", "started_at", "due_at", "first_touch_at", "closed_at"]
    cum, acc = [], 0.0
    for stage, share, path in STAGES:
        acc += share
        cum.append((acc, stage, path))
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        # Rows referring to leads are flushed right after the leads they refer to.
        leads = Copier(cur.cursor, "leads_lead", lead_cols, chunk=None)
        changes = Copier(cur.cursor, "leads_stagechange", sc_cols, chunk=None)
        opps = Copier(cur.cursor, "leads_opportunity", opp_cols, chunk=None)
        clocks = Copier(cur.cursor, "routing_slaclock", sla_cols, chunk=None)
        for i in range(1, n_leads + 1):
            r = rnd.random()
            stage, path = next((s, p) for c, s, p in cum if r <= c) if r < cum[-1][0] else (cum[-1][1], cum[-1][2])
            created = start + (730 * DAY) * (i / n_leads) + rnd.random() * 3600
            owner = team = None
            seller = sellers[rnd.randrange(len(sellers))]
            if stage in ("SQL", "SAL", "CO", "WO", "LOST", "RECYCLED") or (stage == "MQL" and rnd.random() < 0.5):
                owner, team = seller
            elif stage == "MQL" or (stage == "DISQUALIFIED" and rnd.random() < 0.3):
                team = seller[1]
            camp = rnd.randrange(30)
            score = rnd.randint(0, 100)
            t = created
            for k, st in enumerate(path):
                changes.add([i, path[k - 1] if k else "", st, "automation" if k < 2 else "user", "", ts(t)])
                if k + 1 < len(path):
                    t += rnd.uniform(0.5, 12) * DAY
            t = min(t, now)
            closed = ts(t) if stage in ("WO", "LOST", "DISQUALIFIED") else None
            leads.add([
                f"lead{i}@company{i % 40000}.example", f"First{i}", f"Last{i}", "", "Head of Marketing",
                f"Company {i % 40000}", f"company{i % 40000}.example", "software", 250, "FR", "Lyon",
                SOURCES[i % len(SOURCES)], rnd.choice(UTM), "cpc", f"camp{camp:02d}" if camp < 20 else "", "", "",
                "{}", stage, ts(t), closed, owner, team, score, score // 2, score - score // 2, rnd.choice(GRADES),
                None, "opt_in" if i % 3 else "none", "", 5, ts(created), ts(t),
            ])  # fmt: skip
            if stage in ("CO", "WO", "LOST"):
                status = {"CO": "open", "WO": "won", "LOST": "lost"}[stage]
                opps.add([i, rnd.randint(5, 120) * 500, "EUR", time.strftime("%Y-%m-%d", time.gmtime(t + 30 * DAY)),
                          status, "", closed, ts(t), ts(t)])  # fmt: skip
            if owner is not None:
                started = created + DAY
                due = started + 4 * 3600
                if stage in OPEN and rnd.random() < 0.1:
                    clocks.add([i, owner, team, ts(started), ts(now + rnd.uniform(-8, 8) * 3600), None, None])
                else:
                    touch = started + rnd.uniform(0.2, 6) * 3600
                    clocks.add([i, owner, team, ts(started), ts(due), ts(touch), ts(touch)])
            if i % 50_000 == 0:
                for c in (leads, changes, opps, clocks):
                    c.flush()
            if i % 200_000 == 0:
                print(f"  leads {i:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        for c in (leads, changes, opps, clocks):
            c.flush()
        tp_cols = ["lead_id", "type", "url", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
                   "properties", "occurred_at", "created_at"]  # fmt: skip
        tps = Copier(cur.cursor, "leads_touchpoint", tp_cols)
        for e in range(n_events):
            lead = rnd.randint(1, n_leads)
            when = start + (730 * DAY) * (lead / n_leads) + rnd.uniform(0, 60) * DAY
            utm = UTM[e % len(UTM)]
            tps.add([lead, EVENT_TYPES[e % len(EVENT_TYPES)], "https://www.example.com/pricing", utm,
                     "cpc" if utm else "", "", "", "", "{}", ts(min(when, now)), ts(min(when, now))])  # fmt: skip
            if (e + 1) % 1_000_000 == 0:
                print(f"  events {e + 1:,} ({time.perf_counter() - t0:.0f} s)", flush=True)
        tps.flush()
        cur.execute("SELECT setval(pg_get_serial_sequence('leads_lead', 'id'), %s)", [n_leads])
        print(f"  filled in {time.perf_counter() - t0:.0f} s; analyzing", flush=True)
        cur.execute("ANALYZE")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure(client, url: str, n: int) -> tuple[float, float]:
    for _ in range(3):  # warm caches and connections
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, url
    return statistics.median(times), percentile(times, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=None, help="default: 5 per lead")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--refill", action="store_true")
    args = parser.parse_args()
    events = args.events if args.events is not None else 5 * args.leads

    django_ready()
    from django.conf import settings
    from django.test import Client
    from django.utils import timezone

    from accounts.models import User
    from leads import services
    from leads.models import Lead, ScoreChange

    settings.ALLOWED_HOSTS = ["*"]
    have = Lead.objects.order_by().count() if not args.refill else -1
    from leads.models import Touchpoint

    if have != args.leads or Touchpoint.objects.order_by().count() < events:
        print(f"Filling {args.leads:,} leads and {events:,} events with COPY …", flush=True)
        fill(args.leads, events)
    else:
        print(f"Reusing {have:,} leads and {events:,} events in {settings.DATABASES['default']['NAME']}")

    # What the worker does every few minutes (beat): rebuild the dashboard's aggregate tables.
    from leads import rollups

    run = rollups.dashboard_rollup_refresh()
    print(f"Dashboard aggregate tables rebuilt in {run.seconds:.1f} s ({run.leads:,} leads) — the beat job's cost")

    # The lead page's lead: an owned lead with a long history.
    sdr = User.objects.filter(username__startswith="bench-sdr-").order_by("pk").first()
    lead = Lead.objects.filter(owner=sdr, stage="MQL").order_by("-pk").first()
    if not ScoreChange.objects.filter(lead=lead).exists():
        ScoreChange.objects.bulk_create(
            [
                ScoreChange(lead=lead, old_score=i, new_score=i + 1, reasons=[{"name": "Pricing page", "points": 5}])
                for i in range(60)
            ]  # fmt: skip
        )
        for k in range(30):
            actor = Actor(sdr, "user")
            services.lead_log_activity(lead_id=lead.pk, type="call", note=f"Call {k}", actor=actor)
    marketing = User.objects.get(username="bench-marketing")
    queue_size = Lead.objects.filter(owner=sdr, stage__in=["MCL", "MQL", "SQL", "SAL", "CO", "RECYCLED"]).count()
    pool_size = Lead.objects.filter(owner__isnull=True, team_id=sdr.team_id).count()

    seller = Client(HTTP_HOST="localhost")
    seller.force_login(sdr)
    market = Client(HTTP_HOST="localhost")
    market.force_login(marketing)
    today = timezone.localdate()
    year = f"/?start={(today.replace(year=today.year - 1)).isoformat()}&end={today.isoformat()}"
    pages = [
        ("queue", seller, "/queue/", 100),
        ("lead page", seller, f"/leads/{lead.pk}/", 100),
        ("dashboard (90 days)", market, "/", 500),
        ("dashboard (1 year, linear)", market, year + "&model=linear", 500),
        ("dashboard (90 days, 1 source)", market, "/?source=seo", 500),
        ("dashboard (90 days, 1 team)", market, f"/?team={sdr.team_id}", 500),
    ]
    print(f"\nSDR queue: {queue_size:,} open leads of theirs + {pool_size:,} in their team's pool")
    print(f"{'page':<30}{'p50 ms':>10}{'p95 ms':>10}{'target':>10}")
    for name, client, url, target in pages:
        p50, p95 = measure(client, url, args.requests)
        flag = "ok" if p95 <= target else "OVER"
        print(f"{name:<30}{p50:>10.1f}{p95:>10.1f}{'≤ ' + str(target):>10}  {flag}", flush=True)


if __name__ == "__main__":
    main()

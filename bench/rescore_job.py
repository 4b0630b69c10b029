"""Full rescore as the resumable job (`scoring.rescore`, the path of a rule-set activation,
the nightly decay and `manage.py rescore`): N leads with M events (bench/rescore.py's data and
rule set), then the job run in this process, one transaction per chunk with its cursor.

    python bench/rescore_job.py [--leads 200000] [--events-per-lead 5] [--chunk-size 1000]
                                [--skip-setup [--reset-scores]]

Prints the job's leads/s (every score changes, from 0), then a second pass (nothing to write
but decay). Own database: postgres://postgres@127.0.0.1:5432/leadcrm_bench_jobs by default.
Compare with bench/rescore.py (the one-shot `leads_rescore_all`, threads, no cursor).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_jobs")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402
from bench.rescore import RULESET, generate, server_settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--events-per-lead", type=float, default=5.0)
    parser.add_argument("--chunk-size", type=int, default=None, help="leads per chunk (default: the job's)")
    parser.add_argument("--skip-setup", action="store_true", help="rescore the data already there")
    parser.add_argument(
        "--reset-scores", action="store_true", help="with --skip-setup: scores back to 0 first (every one changes)"
    )
    args = parser.parse_args()

    django_ready()

    from leadcrm import jobs
    from leadcrm.actors import Actor
    from leads.models import Lead
    from scoring import services
    from scoring.models import RuleSet

    if not args.skip_setup:
        t0 = time.perf_counter()
        generate(args.leads, args.events_per_lead)
        events = int(args.leads * args.events_per_lead)
        print(f"setup: {args.leads:,} leads, {events:,} events in {time.perf_counter() - t0:.1f} s")
        RuleSet.objects.all().delete()
        rs = services.ruleset_create(data=RULESET, actor=Actor.automation())
        RuleSet.objects.filter(pk=rs.pk).update(is_active=True)  # active without the job it would start
    if args.skip_setup and args.reset_scores:
        Lead.objects.update(score=0, fit_score=0, engagement_score=0, grade="", conversion_probability=None)
        from django.db import connection

        with connection.cursor() as c:
            c.execute("TRUNCATE leads_scorechange")
            c.execute("VACUUM (ANALYZE) leads_lead")
    n = Lead.objects.count()
    chunk = args.chunk_size or services.JOB_CHUNK
    print(f"server: {server_settings()}")
    print(f"rescore job over {n:,} leads, chunks of {chunk:,} (one transaction each, with the cursor)")

    def run(label: str) -> dict:
        request = services.rescore_start(actor=Actor.automation(), chunk_size=chunk, reason="bench", enqueue=False)
        t0 = time.perf_counter()

        def progress(cursor: dict, counts: dict) -> None:
            done = counts["leads"]
            sys.stdout.write(f"\r  {done:>10,} / {n:,}  {done / (time.perf_counter() - t0):>9,.0f} leads/s")
            sys.stdout.flush()

        job = jobs.job_run(request.job.pk, on_chunk=progress)
        elapsed = time.perf_counter() - t0
        print()
        c = job.counts
        print(
            f"{label}: job {job.pk} {job.status}, {c['leads']:,} leads in {elapsed:.1f} s:"
            f" {c['leads'] / elapsed:,.0f} leads/s; {c['changed']:,} changed, {c['promoted']:,} promoted"
        )
        return c

    run("first pass (every score changes)" if not args.skip_setup or args.reset_scores else "first pass")
    run("second pass (nothing to write but decay)")


if __name__ == "__main__":
    main()

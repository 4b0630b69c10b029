"""`python manage.py rescore [--wait]`: ask for a full rescore (the resumable job
`scoring.rescore`); with `--wait`, run it here and print its progress."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from leadcrm import jobs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import Job, JobStatus
from scoring import selectors, services


def _positive(value: str) -> int:
    import argparse

    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 100000, not {n}")
    return n


class Command(BaseCommand):
    help = (
        "Rescore every lead with the active rule sets, as a resumable background job "
        "(--wait: run it here, with a progress bar)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--wait", action="store_true", help="run the job in this process and print its progress")
        parser.add_argument("--group", default=None, help="only this score group's scores (default: every group)")
        parser.add_argument("--engaged-only", action="store_true", help="only leads with engagement points (decay)")
        parser.add_argument(
            "--chunk-size", type=_positive, default=None, help=f"leads per chunk (default {services.JOB_CHUNK:,})"
        )

    def handle(self, *args, wait: bool, group: str | None, engaged_only: bool, chunk_size: int | None, **options):
        if not selectors.active_rulesets():
            self.stdout.write("No active rule set: nothing to do.")
            return
        try:
            request = services.rescore_start(
                actor=Actor.automation(),
                group=group,
                engaged_only=engaged_only,
                chunk_size=chunk_size,
                reason="manage.py rescore",
                enqueue=not wait,
            )
        except ServiceError as exc:
            raise CommandError(" ".join(m for ms in exc.errors.values() for m in ms)) from exc
        job = request.job
        if not request.created:
            note = "it will run again after the current run" if request.follow_up else "your request joined it"
            self.stdout.write(f"A rescore is already under way (job {job.pk}): {note}.")
        else:
            self.stdout.write(f"Rescore queued as job {job.pk}.")
        if not wait:
            return
        total = services.leads_to_rescore(engaged_only=engaged_only)
        started = time.perf_counter()

        def progress(cursor: dict, counts: dict) -> None:
            done = counts.get("leads", 0)
            width = 40
            filled = min(width, int(width * done / total) if total else width)
            rate = done / max(time.perf_counter() - started, 1e-9)
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} ({rate:,.0f} leads/s)", ending=""
            )
            self.stdout.flush()

        job = self._run_or_follow(job.pk, progress)
        if request.follow_up:  # ours is the run after that one
            then = Job.objects.filter(kind=services.RESCORE_KIND, pk__gt=job.pk).order_by("pk").first()
            if then is not None:
                started = time.perf_counter()
                job = self._run_or_follow(then.pk, progress)
        self.stdout.write("")
        seconds = time.perf_counter() - started
        counts = job.counts
        if job.status == JobStatus.FAILED:
            raise CommandError(f"Rescore job {job.pk} failed: {job.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{counts.get('leads', 0):,} leads rescored in {seconds:.1f} s: {counts.get('changed', 0):,} changed,"
                f" {counts.get('promoted', 0):,} promoted to MQL (job {job.pk})"
            )
        )

    @staticmethod
    def _run_or_follow(job_id: int, progress) -> Job:
        """Run the job here (again after a failed attempt's backoff, as the beat would); held
        by a live worker, follow it until it ends."""
        from django.utils import timezone

        jobs.job_run(job_id, on_chunk=progress)
        while True:
            job = Job.objects.get(pk=job_id)
            if job.status in (JobStatus.DONE, JobStatus.FAILED):
                return job
            if job.status == JobStatus.QUEUED and (job.retry_at is None or job.retry_at <= timezone.now()):
                jobs.job_run(job_id, on_chunk=progress)
                continue
            progress(job.cursor, job.counts)
            time.sleep(1)

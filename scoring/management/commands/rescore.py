"""`python manage.py rescore`: rescore every lead with the active rule set (streamed,
set-based), printing a progress bar."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from scoring import selectors, services


class Command(BaseCommand):
    help = "Rescore every lead with the active rule set (streamed, set-based), with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=services.CHUNK)
        parser.add_argument("--engaged-only", action="store_true", help="only leads with engagement points (decay)")

    def handle(self, *args, chunk_size: int, engaged_only: bool, **options):
        ruleset = selectors.active_ruleset()
        if ruleset is None:
            self.stdout.write("No active rule set: nothing to do.")
            return
        total = services.leads_to_rescore(engaged_only=engaged_only)
        self.stdout.write(f"Rescoring {total:,} leads with {ruleset}")
        done, started = [0], time.perf_counter()

        def progress(n: int) -> None:
            done[0] += n
            width = 40
            filled = int(width * done[0] / total) if total else width
            rate = done[0] / max(time.perf_counter() - started, 1e-9)
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done[0]:,}/{total:,} ({rate:,.0f} leads/s)", ending=""
            )
            self.stdout.flush()

        stats = services.leads_rescore_all(chunk_size=chunk_size, progress=progress, engaged_only=engaged_only)
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"{stats.leads:,} leads rescored in {stats.seconds:.1f} s: {stats.changed:,} changed,"
                f" {stats.promoted:,} promoted to MQL"
            )
        )

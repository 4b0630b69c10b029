"""`manage.py outbox_relay [--loop]`: send the outbox's pending reactions to the broker
(once, or for ever every `--interval` seconds): the relay without beat."""

import time

from django.core.management.base import BaseCommand

from leadcrm import outbox


class Command(BaseCommand):
    help = "Relay pending outbox rows (domain event reactions) to the Celery broker."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep relaying until stopped.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between runs with --loop.")

    def handle(self, *args, loop: bool = False, interval: float = 2.0, **options):
        while True:
            result = outbox.relay()
            if result.sent or result.failed or not loop:
                self.stdout.write(
                    f"sent {result.sent} rows in {result.published} messages, {result.failed} kept for retry, "
                    f"{outbox.pending_count()} pending"
                )
            if not loop:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return

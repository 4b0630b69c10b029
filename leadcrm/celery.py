"""The Celery app `leadcrm`: `celery -A leadcrm worker -B` runs a worker with beat."""

import os

from celery import Celery, states
from celery.signals import task_postrun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

app = Celery("leadcrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect
def _outbox_confirm(task=None, state=None, **_: object) -> None:
    """A task sent by the outbox ran to its end (success, or failure after its own retries):
    its rows are done, the relay will not send them again (leadcrm.outbox)."""
    if task is None or state not in (states.SUCCESS, states.FAILURE):
        return
    request = task.request
    ids = getattr(request, "outbox_ids", None) or (getattr(request, "headers", None) or {}).get("outbox_ids")
    if ids:
        from leadcrm import outbox

        outbox.confirm(list(ids))

"""The Celery app `leadcrm`: `celery -A leadcrm worker -B` runs a worker with beat."""

import os

from celery import Celery, states
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

app = Celery("leadcrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _outbox_ids(task) -> list[int]:
    request = task.request
    ids = getattr(request, "outbox_ids", None) or (getattr(request, "headers", None) or {}).get("outbox_ids")
    return list(ids or ())


@task_postrun.connect
def _outbox_confirm(task=None, state=None, **_: object) -> None:
    """A task sent by the outbox ran to its end (success, or failure after its own retries):
    its rows are done, the relay will not send them again (leadcrm.outbox)."""
    if task is None or state not in (states.SUCCESS, states.FAILURE) or getattr(task, "outbox_confirm", "") == "start":
        return
    ids = _outbox_ids(task)
    if ids:
        from leadcrm import outbox

        outbox.confirm(ids)


@task_prerun.connect
def _outbox_confirm_at_start(task=None, **_: object) -> None:
    """A task marked `outbox_confirm="start"` is done for the outbox once a worker took it:
    sent again while it runs, it would run twice side by side. Surviving a killed worker is
    then the job runner's business (leadcrm.jobs)."""
    if task is None or getattr(task, "outbox_confirm", "") != "start":
        return
    ids = _outbox_ids(task)
    if ids:
        from leadcrm import outbox

        outbox.confirm(ids)

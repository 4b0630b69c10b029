"""The Celery app `leadcrm`: `celery -A leadcrm worker -B` runs a worker with beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

app = Celery("leadcrm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The outbox's confirmation of the tasks it sent (task_prerun / task_postrun) is connected by
# the kernel's AppConfig.ready() (leadcrm/apps.py): a worker sets Django up before it runs a
# task, and this module, imported with the settings, cannot import the outbox's models.

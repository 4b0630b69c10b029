from django.apps import AppConfig


class LeadcrmConfig(AppConfig):
    """The shared kernel: the outbox, background jobs and the audit log every app writes to."""

    name = "leadcrm"
    verbose_name = "LeadCRM kernel"

    def ready(self) -> None:
        """The outbox's confirmations on Celery's task signals, in every process that runs
        tasks (a worker, or the web process under eager tasks)."""
        from celery.signals import task_postrun, task_prerun

        from leadcrm import outbox

        task_postrun.connect(outbox.confirm_after_run, weak=False, dispatch_uid="leadcrm.outbox.confirm_after_run")
        task_prerun.connect(outbox.confirm_at_start, weak=False, dispatch_uid="leadcrm.outbox.confirm_at_start")

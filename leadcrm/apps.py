from django.apps import AppConfig


class LeadcrmConfig(AppConfig):
    """The shared kernel: the outbox, background jobs and the audit log every app writes to."""

    name = "leadcrm"
    verbose_name = "LeadCRM kernel"

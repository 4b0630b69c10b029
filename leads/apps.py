from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"

    def ready(self) -> None:
        from leadcrm import selectors as kernel_selectors
        from leads import selectors
        from leads.models import Lead

        kernel_selectors.readable_targets(Lead._meta.label_lower, selectors.leads_whose_history_is_readable_by)

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


def check_rate_limits(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A mistyped LEADCRM_EMAIL_RATE_LIMITS is said at start-up, not at the first send."""
    from nurturing.sending_rate import parse_limits

    try:
        parse_limits(settings.LEADCRM_EMAIL_RATE_LIMITS)
    except ValueError as exc:
        return [checks.Error(str(exc), id="nurturing.E001")]
    return []


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        checks.register(check_rate_limits)
        # A provider's webhooks (anymail) report bounces, complaints and replies.
        from anymail import signals

        from nurturing import receivers

        signals.tracking.connect(receivers.tracking_received, dispatch_uid="nurturing.tracking")
        signals.inbound.connect(receivers.inbound_received, dispatch_uid="nurturing.inbound")

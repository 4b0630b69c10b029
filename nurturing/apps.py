from django.apps import AppConfig


class NurturingConfig(AppConfig):
    name = "nurturing"

    def ready(self) -> None:
        # A provider's webhooks (anymail) report bounces, complaints and replies.
        from anymail import signals

        from nurturing import receivers

        signals.tracking.connect(receivers.tracking_received, dispatch_uid="nurturing.tracking")
        signals.inbound.connect(receivers.inbound_received, dispatch_uid="nurturing.inbound")

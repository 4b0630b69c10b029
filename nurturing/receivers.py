"""Anymail's signals (a provider's tracking and inbound webhooks) turned into plain data
for the services: bounces and complaints suppress, replies stop sequences."""

from __future__ import annotations

from leadcrm import inputs
from nurturing import services

# Anymail's normalised event types → ours; a rejection names why the provider refused.
KINDS = {"bounced": "bounced", "complained": "complained", "unsubscribed": "unsubscribed"}
REJECTED = {"bounced": "bounced", "invalid": "bounced", "spam": "complained", "unsubscribed": "unsubscribed"}


def tracking_received(sender, event, esp_name: str = "", **_: object) -> None:
    kind = KINDS.get(event.event_type) or (
        REJECTED.get(event.reject_reason or "") if event.event_type == "rejected" else None
    )
    if kind is None:
        return  # deliveries, opens and clicks: ours are counted by our own pixel and links
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    ours = str(metadata.get("leadcrm_message") or "")
    services.provider_events_record(
        items=[
            services.ProviderEvent(
                kind=kind,
                recipient=event.recipient or "",
                message_id=str(event.message_id or ""),
                leadcrm_message=inputs.int_or_none(ours, minimum=1),
                at=event.timestamp,
                description=event.description or event.mta_response or "",
            )
        ]
    )


def inbound_received(sender, event, esp_name: str = "", **_: object) -> None:
    message = event.message
    if message is None:
        return
    from_address = message.from_email.addr_spec if message.from_email else ""
    services.reply_record(
        reply=services.InboundReply(
            from_email=from_address or "",
            message_id=str(message.get("Message-ID") or ""),
            in_reply_to=str(message.get("In-Reply-To") or ""),
            references=str(message.get("References") or ""),
            subject=str(message.subject or ""),
            at=event.timestamp,
        )
    )

"""Every write of nurturing, by area; import the names from here."""

from nurturing.services.mail import (
    MessageOutcome,
    MessageRequest,
    email_template_create,
    email_template_update,
    message_clicked,
    message_opened,
    message_render,
    message_retry,
    messages_due,
    messages_queue,
    messages_send,
    unsubscribe,
)
from nurturing.services.segments import (
    segment_create,
    segment_delete,
    segment_evaluate,
    segment_members_change,
    segment_members_import,
    segment_update,
    segments_refresh,
    segments_windows_refresh,
)

__all__ = [
    "MessageOutcome",
    "MessageRequest",
    "email_template_create",
    "email_template_update",
    "message_clicked",
    "message_opened",
    "message_render",
    "message_retry",
    "messages_due",
    "messages_queue",
    "messages_send",
    "unsubscribe",
    "segment_create",
    "segment_delete",
    "segment_evaluate",
    "segment_members_change",
    "segment_members_import",
    "segment_update",
    "segments_refresh",
    "segments_windows_refresh",
]

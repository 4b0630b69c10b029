"""Nurturing: segments (saved filters and static lists) and who is in them.

Membership is a table kept up to date by the domain events (a lead scored, moved or
assigned is re-checked against each dynamic segment), never rebuilt whole on a read; every
entry and exit is a row of `SegmentChange`, which workflows trigger on."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (a saved filter)"
    STATIC = "static", "Static list"


class Segment(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    # The filter, as `nurturing.segment_rules.clean_filter` normalised it (dynamic segments).
    filter = models.JSONField(default=dict, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    # When a full evaluation last ran (creation, an edit of the filter, the nightly check of
    # time windows such as "visited in the last 7 days").
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == SegmentKind.DYNAMIC


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "lead"], name="segment_member_once")]
        indexes = [models.Index(fields=["lead"], name="segment_member_lead_idx")]


class SegmentChangeKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    LEFT = "left", "Left"


class SegmentChange(models.Model):
    """A lead entered or left a segment, and why (the event that re-checked it, a hand edit)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_changes")
    kind = models.CharField(max_length=8, choices=SegmentChangeKind.choices)
    cause = models.CharField(max_length=60, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["segment", "-at"]), models.Index(fields=["lead", "-at"])]


# --- e-mail ------------------------------------------------------------------------------


class TemplateKind(models.TextChoices):
    MARKETING = "marketing", "Marketing (needs consent, carries the unsubscribe)"
    TRANSACTIONAL = "transactional", "Transactional (a confirmation, a notification)"


class EmailTemplate(models.Model):
    """Subject, HTML and text parts with merge fields (`{{ lead.first_name|default:"there" }}`),
    checked by `nurturing.mail_render.template_errors` before they are saved."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=15, choices=TemplateKind.choices, default=TemplateKind.MARKETING)
    subject = models.CharField(max_length=300)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_marketing(self) -> bool:
        return self.kind == TemplateKind.MARKETING


class MessageStatus(models.TextChoices):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"


class Message(models.Model):
    """One e-mail to one lead: queued, then claimed and sent once (its idempotency key is
    unique, its claim takes the row lock), then what the person did with it."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="messages")
    template = models.ForeignKey(EmailTemplate, null=True, on_delete=models.SET_NULL, related_name="messages")
    kind = models.CharField(max_length=15, choices=TemplateKind.choices)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=15, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    to_email = models.EmailField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="message_due"),
            models.Index(fields=["lead", "-queued_at"], name="message_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.idempotency_key} → {self.to_email or self.lead_id}"


class SuppressionReason(models.TextChoices):
    OPT_OUT = "opt_out", "Opted out"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    ERASED = "erased", "Erased person"


class Suppression(models.Model):
    """Addresses no marketing e-mail goes to, whatever the lead's consent says; bounces,
    complaints and erasures stop transactional ones too."""

    email = models.CharField(max_length=254, unique=True)  # lower case
    reason = models.CharField(max_length=12, choices=SuppressionReason.choices)
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"

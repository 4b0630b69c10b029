"""Integrations: API keys with scopes, webhook subscriptions, their deliveries and attempts.

A key is shown once: only its prefix (to find it) and a SHA-256 of the whole key (to check
it) are kept; the key itself is 32 random bytes, so a fast hash is enough (no password to
stretch). A webhook's secret is kept as given: signing needs it (Standard Webhooks signs
with a symmetric key), and rotation keeps the previous one valid for a while.

A delivery is one event about one lead for one subscription: its body (the exact bytes
signed, so a retry sends the same message), its message id (`webhook-id`, the same on every
attempt and replay, so a receiver can drop duplicates) and, in the database, its due time
(`next_attempt_at`). `ordered_at` is the event's time: a delivery waits while an earlier one
of the same subscription and lead is still pending (per-lead order)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    CAPTURE = "capture", _("Capture (send leads and events in)")
    READ = "read", _("Read leads")
    WRITE = "write", _("Write leads")
    ADMIN = "admin", _("Admin (the whole API)")


class ApiKey(models.Model):
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    hashed_key = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    # The admin who created it: the key acts as that person, narrowed to its scopes.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Webhook(models.Model):
    """A subscription: the events it listens to, where they go, the secret they are signed with."""

    description = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=2000)
    events = models.JSONField(default=list)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="webhooks")
    # Health: failed attempts since the last success, and since when it fails.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.description or self.url[:80]


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class Delivery(models.Model):
    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    lead = models.ForeignKey("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event = models.CharField(max_length=40)
    # Idempotency of the reaction that wrote it: webhook, event occurrence (outbox row), lead.
    key = models.CharField(max_length=200, unique=True)
    msg_id = models.CharField(max_length=40)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    ordered_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    # Retries run for RETRY_WINDOW from here (creation, or the last replay).
    window_start = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="integ_delivery_due"),
            models.Index(fields=["webhook", "lead", "status", "ordered_at"], name="integ_delivery_order"),
            models.Index(fields=["webhook", "-created_at"], name="integ_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.webhook_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP try: what was sent (headers; the body is the delivery's), what came back."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    url = models.URLField(max_length=2000)
    request_headers = models.JSONField(default=dict)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"#{self.number} {self.status_code or self.error[:40]}"

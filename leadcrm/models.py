"""The kernel's tables, shared by every app: the outbox of domain events, resumable
background jobs and the audit log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class OutboxMessage(models.Model):
    """One reaction (a Celery task and its arguments) owed to a domain event, written in the
    same transaction as the change. A relay sends it to the broker, and keeps trying until the
    broker takes it (`sent_at`); the worker that ran the task confirms it (`done_at`). A row
    sent but not confirmed by `available_at` (its message lost with a broker restarted without
    persistence, or with a worker killed mid-task) is sent again."""

    event = models.CharField(max_length=64)
    task = models.CharField(max_length=200, help_text="Dotted path of the Celery task.")
    payload = models.JSONField(default=dict, help_text="Keyword arguments of the task.")
    created_at = models.DateTimeField(db_index=True)
    available_at = models.DateTimeField(
        help_text="Not relayed before this time (retry backoff, or the deadline for the worker's confirmation)."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True, help_text="When a worker finished the task.")
    attempts = models.PositiveIntegerField(default=0, help_text="Failed publishes.")
    deliveries = models.PositiveIntegerField(default=0, help_text="Messages the broker took.")
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at", "id"], name="outbox_pending", condition=models.Q(done_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        state = "done" if self.done_at else "sent" if self.sent_at else "pending"
        return f"{self.event} -> {self.task} ({state})"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """Long work (full rescore, bulk routing, ...) run in chunks: `cursor` says where the last
    committed chunk ended, `heartbeat_at` that a worker still holds it. A job whose heartbeat
    went stale is taken over and continues from its cursor."""

    kind = models.CharField(max_length=64)
    key = models.CharField(max_length=100, blank=True, help_text="Makes a scheduled job once per key (e.g. a night).")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    cursor = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    holder = models.CharField(max_length=32, blank=True, help_text="Token of the run holding the job.")
    enqueued_at = models.DateTimeField(null=True, blank=True, help_text="Last time its task was sent.")
    retry_at = models.DateTimeField(null=True, blank=True, help_text="A failed attempt is retried from then.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_status_heartbeat")]
        constraints = [models.UniqueConstraint(fields=["key"], condition=~models.Q(key=""), name="job_key_unique")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class AuditEntry(models.Model):
    """Who changed what, from which value to which: written by the services, never by save()."""

    at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_kind = models.CharField(max_length=16, help_text="user, api, automation or import.")
    action = models.CharField(max_length=100, help_text="Service name in the domain's words, e.g. lead.update.")
    target_type = models.CharField(max_length=50, help_text="app_label.model of what changed.")
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="{field: [old, new]}")
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["target_type", "target_id", "at"], name="audit_target")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.target_type}#{self.target_id}"

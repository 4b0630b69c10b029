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

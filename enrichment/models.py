"""What enrichment set: one row per field a provider filled on a lead."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from leads.models import Lead


class EnrichmentChange(models.Model):
    """A field a provider filled: it was blank (`old`), it became `new`, with the provider's
    confidence. Written with the change itself, so the record and the lead never disagree."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="enrichment_changes", db_index=False)
    provider = models.CharField(_("provider"), max_length=50)
    field = models.CharField(
        _("field"), max_length=120, help_text=_("A lead field, or properties.<key> for a custom field.")
    )
    old = models.TextField(_("old value"), blank=True)
    new = models.TextField(_("new value"))
    confidence = models.FloatField(_("confidence"))
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"], name="enrichment_lead_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0) & models.Q(confidence__lte=1), name="enrichment_confidence_0_1"
            )
        ]
        verbose_name = _("enrichment change")
        verbose_name_plural = _("enrichment changes")

    def __str__(self) -> str:
        return f"{self.field} ← {self.new} ({self.provider})"

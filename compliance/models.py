"""GDPR: who was erased (as a hash, so a re-import never re-subscribes them) and the erasure
receipts. The consent log itself is the leads app's (`leads.models.ConsentRecord`): it is
written where consent is recorded."""

from __future__ import annotations

from django.db import models

from leadcrm.actors import ActorType


class ErasedIdentity(models.Model):
    """The hash of an erased person's normalised e-mail (`compliance.selectors.email_hash`):
    the suppression that outlives the erasure. `leads.services.lead_consent_set` refuses an
    opt-in for it; nothing here can be turned back into the address."""

    email_hash = models.CharField(max_length=64, unique=True)
    first_erased_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.email_hash[:12]


class Erasure(models.Model):
    """The receipt of one person's erasure: who, when, why and how many rows of each table
    were anonymised. No personal data: the reason is scrubbed of the person's identifiers.
    The lead stays (anonymised, so reports still add up); `lead_ref` keeps its id."""

    lead = models.OneToOneField("leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="erasure")
    lead_ref = models.BigIntegerField(db_index=True)
    reason = models.TextField()
    counts = models.JSONField(default=dict, blank=True, help_text="Rows anonymised per table.")
    actor_kind = models.CharField(max_length=12, choices=ActorType.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    erased_at = models.DateTimeField()

    class Meta:
        ordering = ["-erased_at", "-id"]

    def __str__(self) -> str:
        return f"Erasure of lead #{self.lead_ref}"

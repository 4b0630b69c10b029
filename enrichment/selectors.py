"""Enrichment's reads."""

from __future__ import annotations

from enrichment.models import EnrichmentChange


def lead_enrichment_changes(*, lead_id: int, limit: int = 500) -> list[EnrichmentChange]:
    """What providers set on one lead, newest first (the caller has checked it may see the lead)."""
    return list(EnrichmentChange.objects.filter(lead_id=lead_id).order_by("-created_at", "-id")[:limit])

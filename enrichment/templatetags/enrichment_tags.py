"""The lead page's Enrichment panel, as a template tag so the leads app's page names it in its
template without importing enrichment."""

from __future__ import annotations

from django import template

from enrichment import selectors

register = template.Library()

PANEL_ROWS = 20


@register.inclusion_tag("enrichment/_lead_enrichment.html")
def lead_enrichment(lead):
    """One query: the latest fields providers set on the lead (the page has checked it may
    be seen)."""
    changes = selectors.lead_enrichment_changes(lead_id=lead.pk, limit=PANEL_ROWS + 1)
    return {"changes": changes[:PANEL_ROWS], "more": len(changes) > PANEL_ROWS, "lead": lead}

"""The lead page's Privacy panel (consent log, export and erase buttons): a template tag, so
the leads page names it in its template without importing compliance."""

from __future__ import annotations

from django import template

from compliance import selectors

register = template.Library()


@register.inclusion_tag("compliance/_lead_privacy.html", takes_context=True)
def lead_privacy(context, lead):
    """Two queries: the lead's consent log (latest 20) and its erasure receipt."""
    request = context["request"]
    return {
        "lead": lead,
        "records": selectors.consent_log(lead_id=lead.pk, limit=20),
        "erasure": selectors.erasure_of(lead_id=lead.pk),
        "may_handle": selectors.may_handle_privacy(request.user),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }

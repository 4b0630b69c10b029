"""The sequence pieces other apps' pages show: a lead's Sequences panel (its enrollments,
their path, the "Enroll in sequence" form) and the leads list's bulk enroll form. Template
tags, so that those pages name them in their templates without importing nurturing."""

from __future__ import annotations

from django import template

from nurturing import selectors
from nurturing.views_sequences import enrollment_row, may_enroll

register = template.Library()


@register.inclusion_tag("nurturing/_lead_sequences.html", takes_context=True)
def lead_sequences(context, lead):
    """Three queries: the lead's enrollments, their step runs, the sequences to enroll in."""
    request = context["request"]
    allowed = may_enroll(request.user)
    enrollments = selectors.lead_enrollments(lead_id=lead.pk, user=request.user)
    return {
        "rows": [enrollment_row(e) for e in enrollments],
        "lead": lead,
        "may_enroll": allowed,
        "sequences": selectors.enrollable_sequences() if allowed else [],
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }


@register.inclusion_tag("nurturing/_bulk_enroll.html", takes_context=True)
def bulk_enroll_form(context):
    request = context["request"]
    allowed = may_enroll(request.user)
    return {
        "may_enroll": allowed,
        "sequences": selectors.enrollable_sequences() if allowed else [],
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
        "request": request,
    }

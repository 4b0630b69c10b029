"""Capture: web forms marketing builds, and every submission they receive.

A submission is kept before anything else happens (its row and the outbox reaction that
turns it into a lead are one transaction), so a capture is never lost; bot-like ones are
held for review and never become leads unless a marketer releases them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

# The hidden field a person never sees (a bot fills it): `fields[HONEYPOT]` non-empty.
HONEYPOT = "homepage"
# Lead inputs a form field may map to (leads.validation.clean_lead_row names), besides
# `properties.<key>`.
LEAD_TARGETS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "city",
)
# The model attribute a target fills (to know whether a lead already has the value).
TARGET_ATTRS = {"company": "company_name"}


class Form(models.Model):
    name = models.CharField(max_length=200, unique=True)
    # Public (it is in the page's HTML) but random: a form is found by it, never by its id.
    site_key = models.CharField(max_length=64, unique=True)
    # Origins (scheme://host[:port]) whose pages may post to the capture API.
    allowed_origins = models.JSONField(default=list, blank=True)
    # [{"name", "maps_to", "required", "label": {"en", "fr"}, "help"}] (capture.rules.clean_fields)
    fields = models.JSONField(default=list, blank=True)
    # Questions asked instead of those already answered, in order (progressive profiling).
    progressive = models.JSONField(default=list, blank=True)
    consent_text = models.TextField(blank=True)
    double_opt_in = models.BooleanField(default=False)
    redirect_url = models.URLField(max_length=2000, blank=True)
    thank_you = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SubmissionStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted (to be processed)"
    PROCESSED = "processed", "Processed (lead captured)"
    HELD = "held", "Held for review (looks like a bot)"
    DISCARDED = "discarded", "Discarded"
    FAILED = "failed", "Failed"


class Submission(models.Model):
    form = models.ForeignKey(Form, on_delete=models.CASCADE, related_name="submissions")
    status = models.CharField(max_length=12, choices=SubmissionStatus.choices, default=SubmissionStatus.ACCEPTED)
    # Why a submission was held: "honeypot", "too_fast", "no_render_token".
    reason = models.CharField(max_length=40, blank=True)
    # The lead input the form's fields map to (clean_lead_row's public names).
    data = models.JSONField(default=dict, blank=True)
    consent = models.BooleanField(default=False)
    visitor_key = models.CharField(max_length=100, blank=True)
    utm = models.JSONField(default=dict, blank=True)
    referrer = models.CharField(max_length=2000, blank=True)
    page_url = models.CharField(max_length=2000, blank=True)
    # {"utm": {...}, "referrer", "page_url", "at"}: where the visitor first came from.
    first_touch = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    lead = models.ForeignKey(
        "leads.Lead", null=True, blank=True, on_delete=models.SET_NULL, related_name="form_submissions"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"]), models.Index(fields=["form", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.form_id}:{self.pk} {self.status}"

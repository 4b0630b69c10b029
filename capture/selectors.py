"""Reads of the capture: forms, submissions, and what a form asks a given visitor."""

from __future__ import annotations

import time

from django.db.models import QuerySet

from accounts.models import Role, User
from capture import rules, tokens
from capture.models import Form, Submission, SubmissionStatus
from leadcrm.permissions import has_role
from leads.models import Lead, Visitor

ORIGINS_TTL = 10.0  # seconds a process trusts its copy of every form's allowed origins
_origins: tuple[float, frozenset[str]] = (0.0, frozenset())


def forms_visible_to(user: User) -> QuerySet[Form]:
    """Forms are marketing's configuration: marketing and admins see them."""
    if not has_role(user, (Role.MARKETING,)):
        return Form.objects.none()
    return Form.objects.all()


def submissions_visible_to(user: User) -> QuerySet[Submission]:
    """Submissions hold what visitors typed: marketing and admins read them."""
    if not has_role(user, (Role.MARKETING,)):
        return Submission.objects.none()
    return Submission.objects.select_related("form", "lead")


def submissions_filtered(
    qs: QuerySet[Submission], *, status: str | None = None, form_id: int | None = None
) -> QuerySet[Submission]:
    if status:
        qs = qs.filter(status=status)
    if form_id:
        qs = qs.filter(form_id=form_id)
    return qs


def held_count(user: User) -> int:
    return submissions_visible_to(user).filter(status=SubmissionStatus.HELD).count()


def form_by_site_key(site_key: object) -> Form | None:
    if not isinstance(site_key, str) or not site_key or len(site_key) > 64:
        return None
    return Form.objects.filter(site_key=site_key).first()


def forget_origins() -> None:
    """A form's origins changed: this process reads them again."""
    global _origins
    _origins = (0.0, frozenset())


def origins_allowed_anywhere() -> frozenset[str]:
    """Every origin some form allows: a CORS preflight names no form, so it is answered for
    these (the POST itself is then checked against its own form's list)."""
    global _origins
    at, origins = _origins
    if time.monotonic() - at > ORIGINS_TTL:
        origins = frozenset(o for lst in Form.objects.values_list("allowed_origins", flat=True) for o in lst or ())
        _origins = (time.monotonic(), origins)
    return origins


def known_lead(*, visitor_id: object = None, link_token: object = None) -> Lead | None:
    """The lead a visitor turned out to be: by the signed link of an e-mail, or by the
    visitor id its browser keeps (identified by an earlier submission or event)."""
    lead_id = tokens.read_link_token(link_token)
    if lead_id is not None:
        lead = Lead.objects.filter(pk=lead_id).first()
        if lead is not None:
            return lead
    if isinstance(visitor_id, str) and 0 < len(visitor_id) <= 100:
        visitor = Visitor.objects.filter(key=visitor_id, lead__isnull=False).select_related("lead").first()
        if visitor is not None:
            return visitor.lead
    return None


def form_questions(form: Form, lead: Lead | None) -> list[dict]:
    """What the form asks this visitor (progressive profiling for a known lead)."""
    return rules.questions(form.fields, form.progressive, lead)


def rendering(form: Form, *, lead: Lead | None, language: str) -> dict:
    """Everything a renderer (the hosted page, the embed script) needs: the questions with
    labels in the visitor's language, and the signed render token issued now."""
    lang = "fr" if (language or "").startswith("fr") else "en"
    asked = form_questions(form, lead)
    return {
        "site_key": form.site_key,
        "fields": [
            {
                "name": f["name"],
                "label": f["label"].get(lang) or f["label"].get("en") or f["name"],
                "help": f.get("help", ""),
                "required": f["required"],
                "type": input_type(f["maps_to"]),
            }
            for f in asked
        ],
        "consent_text": form.consent_text,
        "thank_you": form.thank_you,
        "redirect_url": form.redirect_url,
        "honeypot": rules.HONEYPOT,
        "token": tokens.render_token(form_id=form.pk, asked=[f["name"] for f in asked]),
    }


def input_type(maps_to: str) -> str:
    return {"email": "email", "phone": "tel", "company_size": "number"}.get(maps_to, "text")

"""Every write of the capture: forms (marketing's configuration, audited), submissions
received from the public (kept first, processed after commit), and their review.

A submission is one row written in its own transaction with the outbox row that owes its
processing (`capture.tasks.submissions_process`): a dead broker delays the lead, never
loses the submission. Processing is idempotent (the row is locked and done once)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from capture import rules, selectors, tokens
from capture.models import Form, Submission, SubmissionStatus
from leadcrm import audit, events
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import TouchpointType

FORM_FIELDS = (
    "name",
    "site_key",
    "allowed_origins",
    "fields",
    "progressive",
    "consent_text",
    "double_opt_in",
    "redirect_url",
    "thank_you",
)
# Who writes the leads of a public form: an API client with no user (it sees every lead, so
# a known e-mail updates its lead and records the touchpoint).
CAPTURE_ACTOR = Actor(None, ActorType.API)
PROCESS_TASK = "capture.tasks.submissions_process"
LEAD_SOURCE = "web-form"


def _clean_config(form: Form, data: dict) -> None:
    """Apply the given configuration to `form` (unsaved), by the rules of capture.rules."""
    if "name" in data:
        form.name = rules.clean_text(data["name"], "name", 200)
        if not form.name:
            raise ServiceError({"name": ["This field is required."]})
        if Form.objects.filter(name__iexact=form.name).exclude(pk=form.pk).exists():
            raise ServiceError({"name": ["Another form has this name."]})
    if "allowed_origins" in data:
        form.allowed_origins = rules.clean_origins(data["allowed_origins"])
    if "fields" in data:
        form.fields = rules.clean_fields(data["fields"], key="fields")
    if "progressive" in data:
        form.progressive = rules.clean_fields(data["progressive"], key="progressive", progressive=True)
    rules.check_distinct(form.fields, form.progressive)
    if "consent_text" in data:
        form.consent_text = rules.clean_text(data["consent_text"], "consent_text")
    if "double_opt_in" in data:
        if not isinstance(data["double_opt_in"], bool):
            raise ServiceError({"double_opt_in": ["true or false."]})
        form.double_opt_in = data["double_opt_in"]
    if form.double_opt_in and not form.consent_text:
        raise ServiceError({"double_opt_in": ["A double opt-in needs the consent text the person ticks."]})
    if "redirect_url" in data:
        form.redirect_url = rules.clean_url(data["redirect_url"], "redirect_url")
    if "thank_you" in data:
        form.thank_you = rules.clean_text(data["thank_you"], "thank_you")


def form_create(*, actor: Actor, data: dict) -> Form:
    """A new form with its own random, unguessable site key."""
    if "fields" not in data:
        raise ServiceError({"fields": ["This field is required."]})
    form = Form(site_key=secrets.token_urlsafe(24), created_by=actor.user)
    _clean_config(form, {"name": data.get("name"), **data})
    with transaction.atomic():
        form.save()
        audit.record(actor=actor, action="capture.form.create", target=form, changes=audit.created(form, FORM_FIELDS))
    selectors.forget_origins()
    return form


def form_update(*, actor: Actor, form_id: int, data: dict) -> Form:
    """Change the given settings of a form (the site key never changes)."""
    with transaction.atomic():
        form = Form.objects.select_for_update().get(pk=form_id)
        before = audit.snapshot(form, FORM_FIELDS)
        _clean_config(form, data)
        form.save()
        audit.record(
            actor=actor, action="capture.form.update", target=form, changes=audit.diff(before, form), skip_empty=True
        )
    selectors.forget_origins()
    return form


# --- receiving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What a visitor's browser sent with its answers (the API's body, or the plain form)."""

    fields: object
    consent: bool = False
    token: object = None
    visitor_id: str = ""
    utm: dict | None = None
    referrer: str = ""
    page_url: str = ""
    first_touch: object = None


def submission_receive(*, form: Form, received: Received, ip: str | None = None, user_agent: str = "") -> Submission:
    """Keep a submission, first and in its own transaction with the outbox row that will turn
    it into a lead. Bad answers are a ServiceError (400, nothing kept); a honeypot filled, a
    form sent too soon after it was shown, or without its render token, is kept aside
    (`held`) for review and never becomes a lead unless released."""
    render = tokens.read_render_token(received.token, form_id=form.pk)
    all_fields = [*form.fields, *form.progressive]
    asked = render.asked if render is not None else [f["name"] for f in form.fields]
    values = received.fields
    honeypot = values.get(rules.HONEYPOT) if isinstance(values, dict) else None
    row = rules.lead_row(all_fields, asked, values)
    clean, errors = lead_services.clean_lead_row({**row, "source": LEAD_SOURCE, **(received.utm or {})})
    if errors:
        raise ServiceError(rules.field_errors(all_fields, errors))
    now = timezone.now()
    reason = ""
    if honeypot not in (None, "", False):
        reason = "honeypot"
    elif render is None:
        reason = "no_render_token"
    elif render.shown_at is not None and now.timestamp() - render.shown_at < settings.LEADCRM_CAPTURE_MIN_FILL_SECONDS:
        reason = "too_fast"
    consent = bool(received.consent) and bool(form.consent_text)
    submission = Submission(
        form=form,
        status=SubmissionStatus.HELD if reason else SubmissionStatus.ACCEPTED,
        reason=reason,
        data=row,
        consent=consent,
        visitor_key=received.visitor_id[:100],
        utm=received.utm or {},
        referrer=received.referrer[:2000],
        page_url=received.page_url[:2000],
        first_touch=rules.clean_touch(received.first_touch),
        ip=ip,
        user_agent=user_agent[:500],
        created_at=now,
    )
    with transaction.atomic():
        submission.save()
        if not reason:
            events.enqueue(PROCESS_TASK, submission_ids=[submission.pk])
    return submission


# --- processing -----------------------------------------------------------------------------


def _lead_input(submission: Submission) -> dict:
    form = submission.form
    data = {**submission.data, "source": LEAD_SOURCE, **submission.utm}
    if submission.consent:
        data["consent"] = {
            "status": "opt_in",
            "double_opt_in": form.double_opt_in,
            "source": f"form:{form.name}"[:200],
            "text": form.consent_text,
        }
    return data


def _touch(submission: Submission, lead_id: int) -> dict:
    """The FORM_SUBMIT event of the submission: its UTM, referrer, landing URL, first and
    last touch (events_record also identifies the visitor as this lead)."""
    last = {
        k: v
        for k, v in {**submission.utm, "referrer": submission.referrer, "page_url": submission.page_url}.items()
        if v
    }
    page_url = submission.page_url if submission.page_url.startswith(("http://", "https://")) else ""
    return {
        "type": TouchpointType.FORM_SUBMIT,
        "lead_id": lead_id,
        "visitor_id": submission.visitor_key or None,
        "url": page_url,
        "occurred_at": submission.created_at,
        "properties": {
            "form": submission.form_id,
            "form_name": submission.form.name,
            "submission": submission.pk,
            "referrer": submission.referrer,
            "first_touch": submission.first_touch or last,
            "last_touch": last,
        },
        **submission.utm,
    }


def submissions_process(*, submission_ids: list[int]) -> int:
    """Turn accepted submissions into leads (lead_capture: a known e-mail updates its lead)
    with a form-submit touchpoint, each once: the row is locked and only an `accepted` one is
    processed, in the same transaction as its effects (a re-delivered task does nothing)."""
    done = 0
    for submission_id in submission_ids:
        with transaction.atomic():
            submission = (
                Submission.objects.select_for_update(of=("self",))
                .select_related("form")
                .filter(pk=submission_id, status=SubmissionStatus.ACCEPTED)
                .first()
            )
            if submission is None:
                continue
            clean, errors = lead_services.clean_lead_row(_lead_input(submission))
            if errors:  # the rules changed since it was received: kept, with why
                submission.status, submission.error = SubmissionStatus.FAILED, str(errors)[:2000]
                submission.processed_at = timezone.now()
                submission.save(update_fields=["status", "error", "processed_at"])
                continue
            lead, _created = lead_services.lead_capture(data=clean, actor=CAPTURE_ACTOR)
            lead_services.events_record(items=[_touch(submission, lead.pk)], actor=CAPTURE_ACTOR)
            submission.status, submission.lead, submission.processed_at = (
                SubmissionStatus.PROCESSED,
                lead,
                timezone.now(),
            )
            submission.save(update_fields=["status", "lead", "processed_at"])
            done += 1
    return done


REVIEW_ACTIONS = ("release", "discard")


def submissions_review(*, submission_ids: list[int], action: str, actor: Actor) -> int:
    """Marketing's word on held submissions: `release` processes them as any other (a
    person, not a bot), `discard` drops them for good. Only held ones change; audited."""
    if action not in REVIEW_ACTIONS:
        raise ServiceError({"action": [f"One of: {', '.join(REVIEW_ACTIONS)}."]})
    with transaction.atomic():
        held = list(
            Submission.objects.select_for_update()
            .filter(pk__in=submission_ids, status=SubmissionStatus.HELD)
            .order_by("pk")
        )
        status = SubmissionStatus.ACCEPTED if action == "release" else SubmissionStatus.DISCARDED
        for submission in held:
            audit.record(
                actor=actor,
                action=f"capture.submission.{action}",
                target=submission,
                changes={"status": [submission.status, status]},
                details={"reason": submission.reason},
            )
        Submission.objects.filter(pk__in=[s.pk for s in held]).update(status=status)
        if held and action == "release":
            events.enqueue(PROCESS_TASK, submission_ids=[s.pk for s in held])
    return len(held)

"""Double opt-in: a capture that needs it leaves the lead PENDING and sends a confirmation
e-mail at once (a transactional message queued through the outbox: the worker sends it as
soon as the capture commits, not at the next beat); one click on its signed link (a button
on the page: link scanners follow GETs) opts the lead in, the confirmation recorded in the
consent log (the audited `lead.consent` change, its source naming the message).

Capture forms call `consent_confirmation_request(lead_ids=...)` after they create or find
the leads whose form asked for double opt-in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.core import signing
from django.db import transaction
from django.utils import timezone

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import ConsentStatus, Lead
from nurturing.models import EmailTemplate, Message, Suppression, SuppressionReason, TemplateKind
from nurturing.services import mail

# The confirmation's template (mail.CONFIRMATION_TEMPLATE): created on first use, then
# marketing's to edit (its link is added after the text, whatever the template says).
CONFIRMATION_TEMPLATE = mail.CONFIRMATION_TEMPLATE
CONFIRMATION_TEXT = (
    'Hello {{ lead.first_name|default:"there" }},\n\n'
    "Please confirm that you want to receive our e-mails: open the link below and press the button.\n"
    "If you did not ask for them, ignore this message: you will not hear from us."
)
# How long a confirmation link works.
CONFIRMATION_MAX_AGE = dt.timedelta(days=30)


def confirmation_template() -> EmailTemplate:
    template = EmailTemplate.objects.filter(name=CONFIRMATION_TEMPLATE).first()
    if template is None:
        template = mail.email_template_create(
            actor=Actor.automation(),
            name=CONFIRMATION_TEMPLATE,
            kind=TemplateKind.TRANSACTIONAL,
            subject="Please confirm your subscription",
            text=CONFIRMATION_TEXT,
        )
    return template


def consent_confirmation_request(
    *, lead_ids: Sequence[int], source: str = "", actor: Actor | None = None, now: dt.datetime | None = None
) -> dict[int, str]:
    """Ask these leads to confirm their consent: each not yet opted in becomes PENDING and
    gets one confirmation e-mail, queued at once. Outcome per lead: "sent" (queued),
    "already_opted_in", "suppressed" (a hard bounce, a complaint, an erasure), "no_email",
    "not_found". Asking again for a pending lead sends a new confirmation."""
    actor = actor or Actor.automation()
    now = now or timezone.now()
    outcomes: dict[int, str] = {}
    with transaction.atomic():
        template = confirmation_template()
        leads = Lead.objects.in_bulk(list(lead_ids))
        requests = []
        for lead_id in lead_ids:
            lead = leads.get(lead_id)
            if lead is None:
                outcomes[lead_id] = "not_found"
                continue
            if lead.consent_status == ConsentStatus.OPT_IN:
                outcomes[lead_id] = "already_opted_in"
                continue
            why = mail.refusal(lead=lead, kind=TemplateKind.TRANSACTIONAL, now=now)
            if why:
                outcomes[lead_id] = why
                continue
            if lead.consent_status != ConsentStatus.PENDING:
                lead_services.lead_consent_set(
                    lead_id=lead.pk, status=ConsentStatus.PENDING, source=source or "double_opt_in", actor=actor
                )
            # One confirmation per lead and second: a form re-submitted sends again, a retried task does not.
            key = f"{mail.CONFIRM_KEY_PREFIX}{lead.pk}:{now.strftime('%Y%m%d%H%M%S')}"
            requests.append(mail.MessageRequest(lead.pk, template.pk, key))
        for outcome in mail.messages_queue(actor=actor, requests=requests):
            outcomes[outcome.lead_id] = "sent" if outcome.message_id else outcome.refused
    return outcomes


def confirmation_facts(*, token: str) -> Message:
    """The message a confirmation link names (refused when tampered with or too old)."""
    try:
        data = signing.loads(token, salt=mail.SALT_CONFIRM, max_age=CONFIRMATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ServiceError({"token": ["This link has expired: subscribe again to get a new one."]}) from exc
    except signing.BadSignature as exc:
        raise ServiceError({"token": ["This link is not valid."]}) from exc
    message = None
    if isinstance(data, dict):
        message = Message.objects.filter(pk=data.get("m"), lead_id=data.get("l")).select_related("lead").first()
    if message is None or not mail.is_confirmation(message):
        raise ServiceError({"token": ["This link is not valid."]})
    return message


def consent_confirm(*, token: str) -> Lead:
    """The person's click on the confirmation button: opted in, with the confirming message
    as the consent's source (audited: the consent log). A second click changes nothing; an
    opt-out given after the confirmation mail was sent is not overridden by an old link."""
    message = confirmation_facts(token=token)
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=message.lead_id)
        if lead.consent_status == ConsentStatus.OPT_IN:
            return lead
        if lead.consent_status == ConsentStatus.OPT_OUT and lead.consent_at and lead.consent_at > message.queued_at:
            raise ServiceError({"token": ["You unsubscribed after this e-mail: subscribe again to confirm."]})
        lead = lead_services.lead_consent_set(
            lead_id=lead.pk,
            status=ConsentStatus.OPT_IN,
            source=f"double_opt_in:confirmed:message:{message.pk}",
            actor=Actor.automation(),
        )
        # The person asked again: an old opt-out of theirs no longer stands (hard bounces,
        # complaints and erasures do).
        Suppression.objects.filter(email=lead.email.lower(), reason=SuppressionReason.OPT_OUT).delete()
    return lead

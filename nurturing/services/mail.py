"""E-mail: templates, the queue, sending once, consent at send time, unsubscribe, tracking.

A message is a row before it is anything else. `messages_queue` writes the rows (one per
idempotency key: asking twice returns the first) and owes their sending through the outbox;
`messages_send` claims each row under its lock (`FOR UPDATE SKIP LOCKED`, so a task
delivered twice, or two workers, send it once), checks consent and the suppression list
again at that moment, renders and sends it, and records the outcome in the same
transaction. A failure is retried with backoff (`next_attempt_at`, swept by beat) and then
parked as failed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core import mail as django_mail
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import ConsentStatus, Lead
from nurturing import mail_render
from nurturing.models import (
    EmailTemplate,
    Message,
    MessageStatus,
    Suppression,
    SuppressionReason,
    TemplateKind,
)

logger = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("name", "kind", "subject", "html", "text")
MAX_ATTEMPTS = 5
BACKOFF = (60, 300, 1800, 7200)  # seconds before attempts 2, 3, 4, 5
# Reasons that stop every message, transactional ones included (an opt-out stops marketing).
HARD_SUPPRESSIONS = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT, SuppressionReason.ERASED)
SALT_UNSUBSCRIBE, SALT_OPEN, SALT_CLICK = "nurturing.unsubscribe", "nurturing.open", "nurturing.click"


@dataclass(frozen=True)
class MessageRequest:
    lead_id: int
    template_id: int
    idempotency_key: str  # a second request with the same key returns the existing message


@dataclass(frozen=True)
class MessageOutcome:
    lead_id: int
    message_id: int | None  # None when refused
    refused: str = ""  # "" | "no_consent" | "suppressed" | "frequency_cap" | "no_email" | "unknown_lead"


# --- templates ---------------------------------------------------------------------------


def email_template_create(
    *, actor: Actor, name: str, subject: str, html: str = "", text: str = "", kind: str = TemplateKind.MARKETING
) -> EmailTemplate:
    errors = mail_render.template_errors(subject=subject, html=html, text=text)
    if kind not in TemplateKind.values:
        errors["kind"] = [f"One of: {', '.join(TemplateKind.values)}."]
    if not name or EmailTemplate.objects.filter(name=name).exists():
        errors["name"] = ["A unique name is required."]
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        template = EmailTemplate.objects.create(
            name=name, kind=kind, subject=subject, html=html, text=text, created_by=actor.user
        )
        audit.record(
            actor=actor,
            action="nurturing.template.create",
            target=template,
            changes=audit.created(template, TEMPLATE_FIELDS),
        )
    return template


def email_template_update(*, actor: Actor, template_id: int, **fields: object) -> EmailTemplate:
    unknown = set(fields) - set(TEMPLATE_FIELDS)
    if unknown:
        raise ServiceError({k: ["Unknown field."] for k in sorted(unknown)})
    with transaction.atomic():
        template = EmailTemplate.objects.select_for_update().get(pk=template_id)
        before = audit.snapshot(template, TEMPLATE_FIELDS)
        merged = {**before, **fields}
        errors = mail_render.template_errors(subject=merged["subject"], html=merged["html"], text=merged["text"])
        if merged["kind"] not in TemplateKind.values:
            errors["kind"] = [f"One of: {', '.join(TemplateKind.values)}."]
        if "name" in fields and EmailTemplate.objects.filter(name=fields["name"]).exclude(pk=template_id).exists():
            errors["name"] = ["A unique name is required."]
        if errors:
            raise ServiceError(errors)
        for key, value in fields.items():
            setattr(template, key, value)
        changes = audit.diff(before, template)
        if changes:
            template.save(update_fields=[*fields, "updated_at"])
            audit.record(actor=actor, action="nurturing.template.update", target=template, changes=changes)
    return template


# --- rendering ---------------------------------------------------------------------------


def _base_url() -> str:
    return settings.LEADCRM_BASE_URL.rstrip("/")


def unsubscribe_token(message: Message) -> str:
    return signing.dumps({"m": message.pk, "l": message.lead_id}, salt=SALT_UNSUBSCRIBE, compress=True)


def _context(lead: Lead) -> dict:
    owner = lead.owner
    company = lead.company
    return mail_render.merge_context(
        lead={
            **{f: getattr(lead, f, "") for f in mail_render.MERGE_FIELDS["lead"] if f != "full_name"},
            "full_name": lead.full_name,
        },
        owner=(
            {
                "first_name": owner.first_name,
                "last_name": owner.last_name,
                "email": owner.email,
                "full_name": owner.get_full_name(),
            }
            if owner
            else None
        ),
        company={"name": company.name, "domain": company.domain or "", "industry": company.industry}
        if company
        else None,
    )


def message_render(*, template: EmailTemplate, lead: Lead, message: Message | None = None) -> tuple[str, str, str]:
    """(subject, html, text) of the template for this lead: with tracking and the footer when
    it is a real message, without them for a preview."""
    footer_html = footer_text = ""
    track = None
    pixel = ""
    if message is not None:
        if template.is_marketing:
            url = _base_url() + reverse("unsubscribe", args=[unsubscribe_token(message)])
            address = settings.LEADCRM_POSTAL_ADDRESS
            footer_text = f"{address}\nUnsubscribe: {url}"
            footer_html = (
                f'<p style="font-size:12px;color:#667">{escape(address)}<br><a href="{escape(url)}">Unsubscribe</a></p>'
            )

        def track(link: str) -> str:
            token = signing.dumps({"m": message.pk, "u": link}, salt=SALT_CLICK, compress=True)
            return _base_url() + reverse("track-click", args=[token])

        pixel = _base_url() + reverse("track-open", args=[signing.dumps({"m": message.pk}, salt=SALT_OPEN)])
    return mail_render.render(
        subject=template.subject,
        html=template.html,
        text=template.text,
        context=_context(lead),
        footer_html=footer_html,
        footer_text=footer_text,
        track_link=track,
        pixel_url=pixel,
    )


# --- who may receive what ----------------------------------------------------------------


def _cap() -> tuple[int, int]:
    """LEADCRM_EMAIL_FREQUENCY_CAP "3/7": at most 3 marketing e-mails per lead in 7 days."""
    count, _, days = str(settings.LEADCRM_EMAIL_FREQUENCY_CAP).partition("/")
    return int(count), int(days or 7)


def refusal(*, lead: Lead, kind: str, now: dt.datetime, exclude_message: int | None = None) -> str:
    """Why this lead may not get a message of this kind now ("" when it may): the one rule
    of the queue and of the send."""
    if not lead.email:
        return "no_email"
    reasons = Suppression.objects.filter(email=lead.email.lower()).values_list("reason", flat=True)
    if kind == TemplateKind.MARKETING:
        if lead.consent_status != ConsentStatus.OPT_IN:
            return "no_consent"
        if reasons.exists():
            return "suppressed"
        count, days = _cap()
        recent = Message.objects.filter(
            lead=lead, kind=TemplateKind.MARKETING, sent_at__gte=now - dt.timedelta(days=days)
        ).exclude(pk=exclude_message)
        if recent.count() >= count:
            return "frequency_cap"
        return ""
    return "suppressed" if reasons.filter(reason__in=HARD_SUPPRESSIONS).exists() else ""


# --- queue and send ----------------------------------------------------------------------


def messages_queue(*, actor: Actor, requests: Sequence[MessageRequest]) -> list[MessageOutcome]:
    """Queue one message per request (refused ones say why) and owe their sending."""
    now = timezone.now()
    keys = [r.idempotency_key for r in requests]
    existing = {m.idempotency_key: m for m in Message.objects.filter(idempotency_key__in=keys)}
    leads = Lead.objects.in_bulk({r.lead_id for r in requests})
    templates = EmailTemplate.objects.in_bulk({r.template_id for r in requests})
    outcomes, queued = [], []
    with transaction.atomic():
        for r in requests:
            if r.idempotency_key in existing:
                outcomes.append(MessageOutcome(r.lead_id, existing[r.idempotency_key].pk))
                continue
            lead, template = leads.get(r.lead_id), templates.get(r.template_id)
            if lead is None or template is None:
                outcomes.append(MessageOutcome(r.lead_id, None, "unknown_lead" if lead is None else "unknown_template"))
                continue
            why = refusal(lead=lead, kind=template.kind, now=now)
            if why:
                outcomes.append(MessageOutcome(r.lead_id, None, why))
                continue
            message = Message.objects.create(
                lead=lead,
                template=template,
                kind=template.kind,
                idempotency_key=r.idempotency_key,
                to_email=lead.email,
                subject=template.subject[:300],
                queued_at=now,
                next_attempt_at=now,
            )
            existing[r.idempotency_key] = message
            queued.append(message.pk)
            outcomes.append(MessageOutcome(r.lead_id, message.pk))
        if queued:
            events.enqueue("nurturing.tasks.messages_send", message_ids=queued)
    return outcomes


def messages_send(*, message_ids: Sequence[int], now: dt.datetime | None = None) -> dict[str, int]:
    """Send each due queued message once: claimed under its row lock, consent and
    suppression checked at this moment, sent, recorded, in one transaction per message."""
    counts = {"sent": 0, "refused": 0, "retry": 0, "failed": 0, "skipped": 0}
    connection = django_mail.get_connection()
    for message_id in message_ids:
        now_ = now or timezone.now()
        with transaction.atomic():
            message = (
                Message.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("lead", "lead__owner", "lead__company", "template")
                .filter(pk=message_id, status=MessageStatus.QUEUED)
                .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now_))
                .first()
            )
            if message is None:  # sent already, being sent by another worker, or not due
                counts["skipped"] += 1
                continue
            message.attempts += 1
            why = (
                "unknown_template"
                if message.template is None
                else refusal(lead=message.lead, kind=message.kind, now=now_, exclude_message=message.pk)
            )
            if why:
                message.status, message.last_error = MessageStatus.FAILED, f"Not sent: {why} at send time"
                message.save(update_fields=["status", "last_error", "attempts"])
                counts["refused"] += 1
                continue
            try:
                _deliver(connection, message)
            except Exception as exc:  # the provider's error: retry later, then park
                logger.warning("sending message %s failed: %s", message.pk, exc)
                message.last_error = str(exc)[:500]
                if message.attempts >= MAX_ATTEMPTS:
                    message.status = MessageStatus.FAILED
                    counts["failed"] += 1
                else:
                    delay = BACKOFF[min(message.attempts - 1, len(BACKOFF) - 1)]
                    message.next_attempt_at = now_ + dt.timedelta(seconds=delay)
                    counts["retry"] += 1
                message.save(update_fields=["status", "last_error", "attempts", "next_attempt_at"])
                continue
            message.status, message.sent_at, message.last_error = MessageStatus.SENT, now_, ""
            message.save(update_fields=["status", "sent_at", "last_error", "attempts", "to_email", "subject"])
            events.emit(events.EMAIL_SENT, lead_ids=[message.lead_id], message_ids=[message.pk])
            counts["sent"] += 1
    return counts


def _deliver(connection, message: Message) -> None:
    subject, html, text = message_render(template=message.template, lead=message.lead, message=message)
    headers = {}
    if message.kind == TemplateKind.MARKETING:
        token = unsubscribe_token(message)
        url = _base_url() + reverse("unsubscribe", args=[token])
        mailto = f"mailto:{settings.LEADCRM_UNSUBSCRIBE_MAILTO}?subject=unsubscribe"
        headers["List-Unsubscribe"] = f"<{url}>, <{mailto}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = django_mail.EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.lead.email],
        headers={**headers, "X-LeadCRM-Message": str(message.pk)},
        connection=connection,
    )
    if html:
        email.attach_alternative(html, "text/html")
    email.send()
    message.to_email, message.subject = message.lead.email, subject[:300]


def messages_due(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Queued messages whose retry time has come (beat sends them again)."""
    now = now or timezone.now()
    return list(
        Message.objects.filter(status=MessageStatus.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def message_retry(*, actor: Actor, message_id: int) -> Message:
    """Put a failed message back in the queue (from the pages or the API)."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.status != MessageStatus.FAILED:
            raise ServiceError({"status": ["Only a failed message can be retried."]})
        message.status, message.attempts, message.next_attempt_at = MessageStatus.QUEUED, 0, timezone.now()
        message.save(update_fields=["status", "attempts", "next_attempt_at"])
        audit.record(actor=actor, action="nurturing.message.retry", target=message)
        events.enqueue("nurturing.tasks.messages_send", message_ids=[message.pk])
    return message


# --- what people do with a message ------------------------------------------------------


def _message_of(token: str, salt: str) -> tuple[Message, dict]:
    try:
        data = signing.loads(token, salt=salt)
    except signing.BadSignature as exc:
        raise ServiceError({"token": ["This link is not valid."]}) from exc
    message = (
        Message.objects.filter(pk=data.get("m")).select_related("lead").first() if isinstance(data, dict) else None
    )
    if message is None:
        raise ServiceError({"token": ["This link is not valid."]})
    return message, data


def unsubscribe(*, token: str) -> Message:
    """The person's one click (RFC 8058 POST, or the confirm button): opted out at once,
    suppressed for marketing, the message marked, `lead.unsubscribed` announced."""
    message, data = _message_of(token, SALT_UNSUBSCRIBE)
    if data.get("l") != message.lead_id:
        raise ServiceError({"token": ["This link is not valid."]})
    now = timezone.now()
    with transaction.atomic():
        lead_services.lead_consent_set(
            lead_id=message.lead_id,
            status=ConsentStatus.OPT_OUT,
            source=f"unsubscribe:message:{message.pk}",
            actor=Actor.automation(),
        )
        Suppression.objects.get_or_create(
            email=message.lead.email.lower(),
            defaults={"reason": SuppressionReason.OPT_OUT, "source": f"message:{message.pk}"},
        )
        if message.unsubscribed_at is None:
            Message.objects.filter(pk=message.pk).update(status=MessageStatus.UNSUBSCRIBED, unsubscribed_at=now)
            events.emit(events.LEAD_UNSUBSCRIBED, lead_ids=[message.lead_id], message_ids=[message.pk])
    return message


def message_opened(*, token: str) -> Message:
    message, _ = _message_of(token, SALT_OPEN)
    return _engaged(message, "open")


def message_clicked(*, token: str) -> tuple[Message, str]:
    """The signed target of a tracked link (only links the message holds: no open redirect)."""
    message, data = _message_of(token, SALT_CLICK)
    url = data.get("u")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ServiceError({"token": ["This link is not valid."]})
    return _engaged(message, "click", url=url), url


def _engaged(message: Message, what: str, url: str = "") -> Message:
    now = timezone.now()
    field, status, event, touch = {
        "open": ("opened_at", MessageStatus.OPENED, events.EMAIL_OPENED, "email_open"),
        "click": ("clicked_at", MessageStatus.CLICKED, events.EMAIL_CLICKED, "email_click"),
    }[what]
    with transaction.atomic():
        first = Message.objects.filter(pk=message.pk, **{f"{field}__isnull": True}).update(**{field: now})
        if first:
            rank = [MessageStatus.SENT, MessageStatus.OPENED, MessageStatus.CLICKED]
            if message.status in rank[: rank.index(status)]:
                Message.objects.filter(pk=message.pk).update(status=status)
            events.emit(event, lead_ids=[message.lead_id], message_ids=[message.pk])
        # Every open and click is engagement scoring reads (the first one changes the status).
        lead_services.events_record(
            items=[{"lead_id": message.lead_id, "type": touch, "url": url, "properties": {"message": message.pk}}],
            actor=Actor.automation(),
        )
    return message

"""E-mail: templates, the queue, sending once, consent at send time, unsubscribe, tracking.

A message is a row before it is anything else. `messages_queue` writes the rows of a whole
batch at once (one per idempotency key: asking twice returns the first) and owes their
sending through the outbox; `messages_send` claims them by chunks (`FOR UPDATE SKIP
LOCKED`, then "sending" under a lease, so a task delivered twice, or two workers, send each
once), checks consent, the suppression list, topics and the frequency cap again at that
moment with the same rule as the queue (`refusal_of`, over facts read for the chunk at
once), renders and sends them over one connection, and records each send before the next.
A failure is retried with backoff (`next_attempt_at`, swept by beat) and then parked as
failed; a message whose worker died is due again when its lease ends.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import secrets
import smtplib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import NamedTuple

from django.conf import settings
from django.core import mail as django_mail
from django.core import signing
from django.core.mail.backends import smtp as smtp_backend
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, F, Q
from django.urls import get_script_prefix, reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.html import escape

from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import ConsentStatus, Lead, Touchpoint, TouchpointType
from nurturing import mail_render, mime, sending_rate
from nurturing.models import (
    EmailTemplate,
    Message,
    MessageStatus,
    SenderIdentity,
    Suppression,
    SuppressionReason,
    TemplateKind,
    Topic,
    TopicPreference,
)

logger = logging.getLogger(__name__)

TEMPLATE_FIELDS = ("name", "kind", "subject", "html", "text", "sender", "topic")
SENDER_FIELDS = ("name", "from_email", "reply_to", "is_default")
MAX_ATTEMPTS = 5
BACKOFF = (60, 300, 1800, 7200)  # seconds before attempts 2, 3, 4, 5
# A reply is an `email_reply` touchpoint naming the message ({"message": id}); recording it
# announces `email.replied` (leads.services.events_record).
REPLY_TOUCHPOINT = TouchpointType.EMAIL_REPLY
# Reasons that stop every message, transactional ones included (an opt-out stops marketing).
HARD_SUPPRESSIONS = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT, SuppressionReason.ERASED)
SALT_UNSUBSCRIBE, SALT_OPEN, SALT_CLICK = "nurturing.unsubscribe", "nurturing.open", "nurturing.click"
SALT_CONFIRM = "nurturing.confirm"
# The idempotency keys of double opt-in confirmations (`services.consent`): their message
# carries the signed confirmation link.
CONFIRM_KEY_PREFIX = "consent-confirm:"
# The double opt-in confirmation's template (services.consent creates it on first use);
# marketing edits its words, never its kind: it must go to people who have no consent yet.
CONFIRMATION_TEMPLATE = "Double opt-in confirmation"


@dataclass(frozen=True)
class MessageRequest:
    lead_id: int
    template_id: int
    idempotency_key: str  # a second request with the same key returns the existing message
    # What sent it (the per-step and per-variant reports); empty for a one-off message.
    enrollment_id: int | None = None
    step: str = ""
    variant: str = ""


@dataclass(frozen=True)
class MessageOutcome:
    lead_id: int
    message_id: int | None  # None when refused
    # "" | "no_consent" | "suppressed" | "topic_opt_out" | "frequency_cap" | "no_email" | "unknown_lead"
    refused: str = ""


# --- templates ---------------------------------------------------------------------------


def _relation_errors(fields: dict) -> dict[str, list[str]]:
    """A template's sender and topic name existing rows (or nothing)."""
    errors = {}
    for name, model in (("sender", SenderIdentity), ("topic", Topic)):
        value = fields.get(name)
        if value is not None and not (isinstance(value, int) and model.objects.filter(pk=value).exists()):
            errors[name] = [f"Unknown {name}."]
    return errors


def email_template_create(
    *,
    actor: Actor,
    name: str,
    subject: str,
    html: str = "",
    text: str = "",
    kind: str = TemplateKind.MARKETING,
    sender: int | None = None,
    topic: int | None = None,
) -> EmailTemplate:
    errors = mail_render.template_errors(subject=subject, html=html, text=text)
    if kind not in TemplateKind.values:
        errors["kind"] = [f"One of: {', '.join(TemplateKind.values)}."]
    if not name or EmailTemplate.objects.filter(name=name).exists():
        errors["name"] = ["A unique name is required."]
    errors |= _relation_errors({"sender": sender, "topic": topic})
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        template = EmailTemplate.objects.create(
            name=name,
            kind=kind,
            subject=subject,
            html=html,
            text=text,
            sender_id=sender,
            topic_id=topic,
            created_by=actor.user,
        )
        audit.record(
            actor=actor,
            action="nurturing.template.create",
            target=template,
            changes=audit.created(template, TEMPLATE_FIELDS),
        )
    return template


def email_template_update(*, actor: Actor, template_id: int, **fields: object) -> EmailTemplate:
    """Change given fields; `sender` and `topic` are ids (None clears them)."""
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
        elif template.name == CONFIRMATION_TEMPLATE and merged["kind"] != TemplateKind.TRANSACTIONAL:
            errors["kind"] = ["The double opt-in confirmation stays transactional."]
        if "name" in fields and EmailTemplate.objects.filter(name=fields["name"]).exclude(pk=template_id).exists():
            errors["name"] = ["A unique name is required."]
        errors |= _relation_errors({k: v for k, v in fields.items() if k in ("sender", "topic")})
        if errors:
            raise ServiceError(errors)
        for key, value in fields.items():
            setattr(template, f"{key}_id" if key in ("sender", "topic") else key, value)
        changes = audit.diff(before, template)
        if changes:
            template.save(update_fields=[*fields, "updated_at"])
            audit.record(actor=actor, action="nurturing.template.update", target=template, changes=changes)
    return template


# --- sender identities and topics ----------------------------------------------------------


def _sender_errors(fields: dict, *, sender_id: int | None = None) -> dict[str, list[str]]:
    errors = {}
    if "name" in fields and (not isinstance(fields["name"], str) or not fields["name"].strip()):
        errors["name"] = ["A name is required."]
    for key in ("from_email", "reply_to"):
        value = fields.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or (value and not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+\.[^@\s<>,]+", value)):
            errors[key] = ["An e-mail address."]
        elif key == "from_email" and not value:
            errors[key] = ["An e-mail address."]
    email = fields.get("from_email")
    if isinstance(email, str) and email and "from_email" not in errors:
        taken = SenderIdentity.objects.filter(from_email__iexact=email).exclude(pk=sender_id)
        if taken.exists():
            errors["from_email"] = ["Another sender identity has this address."]
    return errors


def sender_identity_create(
    *, actor: Actor, name: str, from_email: str, reply_to: str = "", is_default: bool = False
) -> SenderIdentity:
    """A verified address messages may come from; the default one signs templates that name none."""
    fields = {"name": name, "from_email": from_email, "reply_to": reply_to}
    errors = _sender_errors(fields)
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        if is_default:
            SenderIdentity.objects.select_for_update().filter(is_default=True).update(is_default=False)
        sender = SenderIdentity.objects.create(
            name=name.strip(), from_email=from_email.lower(), reply_to=reply_to.lower(), is_default=is_default
        )
        audit.record(
            actor=actor,
            action="nurturing.sender.create",
            target=sender,
            changes=audit.created(sender, SENDER_FIELDS),
        )
    return sender


def sender_identity_update(*, actor: Actor, sender_id: int, **fields: object) -> SenderIdentity:
    unknown = set(fields) - set(SENDER_FIELDS)
    if unknown:
        raise ServiceError({k: ["Unknown field."] for k in sorted(unknown)})
    errors = _sender_errors(fields, sender_id=sender_id)
    if "is_default" in fields and not isinstance(fields["is_default"], bool):
        errors["is_default"] = ["true or false."]
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        sender = SenderIdentity.objects.select_for_update().get(pk=sender_id)
        before = audit.snapshot(sender, SENDER_FIELDS)
        if fields.get("is_default"):
            SenderIdentity.objects.filter(is_default=True).exclude(pk=sender_id).update(is_default=False)
        for key, value in fields.items():
            setattr(sender, key, value.strip().lower() if key in ("from_email", "reply_to") else value)
        changes = audit.diff(before, sender)
        if changes:
            sender.save(update_fields=list(fields))
            audit.record(actor=actor, action="nurturing.sender.update", target=sender, changes=changes)
    return sender


def topic_create(*, actor: Actor, key: str, name: str, name_fr: str = "") -> Topic:
    """A subscription topic a person may leave without leaving every e-mail."""
    errors = {}
    if not isinstance(key, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", key):
        errors["key"] = ["Lower-case letters, digits, - and _ (at most 60)."]
    elif Topic.objects.filter(key=key).exists():
        errors["key"] = ["Another topic has this key."]
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["A name is required."]
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        topic = Topic.objects.create(key=key, name=name.strip(), name_fr=(name_fr or "").strip())
        audit.record(
            actor=actor, action="nurturing.topic.create", target=topic, changes=audit.created(topic, ("key", "name"))
        )
    return topic


def topic_preferences_set(
    *, lead_id: int, choices: dict[int, bool], source: str, actor: Actor, now: dt.datetime | None = None
) -> int:
    """A person's choice per topic (from the preferences page): one row per topic, kept as
    the latest word; returns how many changed."""
    now = now or timezone.now()
    known = set(Topic.objects.filter(pk__in=list(choices)).values_list("pk", flat=True))
    changes: dict[str, list] = {}
    with transaction.atomic():
        current = {
            p.topic_id: p
            for p in TopicPreference.objects.select_for_update().filter(lead_id=lead_id, topic_id__in=known)
        }
        for topic_id in sorted(known):
            wanted = bool(choices[topic_id])
            row = current.get(topic_id)
            if row is None and wanted:
                continue  # no row already means subscribed
            if row is not None and row.subscribed == wanted:
                continue
            if row is None:
                TopicPreference.objects.create(lead_id=lead_id, topic_id=topic_id, subscribed=wanted, at=now)
            else:
                row.subscribed, row.at = wanted, now
                row.save(update_fields=["subscribed", "at"])
            changes[f"topic:{topic_id}"] = [not wanted, wanted]  # subscribed: old → new
        if changes:
            audit.record(
                actor=actor,
                action="lead.topics",
                target=("leads.lead", lead_id, str(lead_id)),
                changes=changes,
                details={"source": source[:200]},
            )
    return len(changes)


# --- rendering ---------------------------------------------------------------------------


def _base_url() -> str:
    return settings.LEADCRM_BASE_URL.rstrip("/")


@functools.lru_cache(maxsize=32)
def _public_path(name: str, prefix: str) -> tuple[str, str]:
    head, _, tail = reverse(name, args=["TOKEN"]).partition("TOKEN")
    return head, tail


def public_url(name: str, token: str) -> str:
    """The absolute URL of a public e-mail page (unsubscribe, confirm, tracking) for a
    signed token: its path reversed once per process (a send writes three or four; the
    tokens' characters are all safe in a path, so nothing needs quoting)."""
    head, tail = _public_path(name, get_script_prefix())
    return f"{_base_url()}{head}{token}{tail}"


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


def confirmation_token(message: Message) -> str:
    """The signed link of a double opt-in confirmation (its lead and its message)."""
    return signing.dumps({"m": message.pk, "l": message.lead_id}, salt=SALT_CONFIRM, compress=True)


def is_confirmation(message: Message) -> bool:
    return message.idempotency_key.startswith(CONFIRM_KEY_PREFIX)


def message_render(
    *,
    template: EmailTemplate,
    lead: Lead,
    message: Message | None = None,
    test: bool = False,
    unsubscribe_url: str = "",
) -> tuple[str, str, str]:
    """(subject, html, text) of the template for this lead: with tracking and the footer when
    it is a real message, without them for a preview; a test send shows the footer with no
    working link (nothing a tester clicks may unsubscribe the lead or count as its click)."""
    footer_html = footer_text = ""
    track = None
    pixel = ""
    address = settings.LEADCRM_POSTAL_ADDRESS
    if message is not None:
        if template.is_marketing:
            url = unsubscribe_url or public_url("unsubscribe", unsubscribe_token(message))
            footer_text = f"{address}\nUnsubscribe: {url}"
            footer_html = (
                f'<p style="font-size:12px;color:#667">{escape(address)}<br><a href="{escape(url)}">Unsubscribe</a></p>'
            )
        if is_confirmation(message):
            url = public_url("consent-confirm", confirmation_token(message))
            footer_text = f"Confirm your subscription: {url}\n\n{address}"
            footer_html = f'<p><a href="{escape(url)}">Confirm your subscription</a></p><p>{escape(address)}</p>'

        def track(link: str) -> str:
            token = signing.dumps({"m": message.pk, "u": link}, salt=SALT_CLICK, compress=True)
            return public_url("track-click", token)

        pixel = public_url("track-open", signing.dumps({"m": message.pk}, salt=SALT_OPEN))
    elif test and template.is_marketing:
        footer_text = f"{address}\nUnsubscribe: (the link of the real message)"
        footer_html = f"<p>{escape(address)}<br>Unsubscribe: (the link of the real message)</p>"
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


@dataclass(frozen=True)
class RecipientFacts:
    """What the rule reads about one lead at one moment (`recipient_facts` fetches them for
    a whole batch at once): its address, its consent, its address's suppression, the topics
    it left, and how many marketing e-mails it was sent within the frequency cap's period."""

    email: str
    consent_status: str
    suppression: str = ""  # the reason its address is suppressed ("" when it is not)
    topics_left: frozenset[int] = frozenset()
    recent_marketing: int = 0


def refusal_of(facts: RecipientFacts, *, kind: str, topic_id: int | None = None, cap: int | None = None) -> str:
    """Why a lead with these facts may not get a message of this kind (of this topic) ("" when
    it may): the one rule of the queue and of the send, pure (the queue and the send fetch
    the facts of their batch; `refusal` fetches one lead's)."""
    if not facts.email:
        return "no_email"
    if kind == TemplateKind.MARKETING:
        if facts.consent_status != ConsentStatus.OPT_IN:
            return "no_consent"
        if facts.suppression:
            return "suppressed"
        if topic_id is not None and topic_id in facts.topics_left:
            return "topic_opt_out"
        if facts.recent_marketing >= (_cap()[0] if cap is None else cap):
            return "frequency_cap"
        return ""
    return "suppressed" if facts.suppression in HARD_SUPPRESSIONS else ""


class Recipient(NamedTuple):
    """The lead fields the rule reads (a lead row without the cost of a model instance)."""

    pk: int
    email: str
    consent_status: str


def recipient_facts(
    *,
    leads: Iterable[Lead | Recipient],
    now: dt.datetime,
    topic_ids: Iterable[int | None] = (),
    marketing: bool = True,
    exclude_messages: Iterable[int] = (),
) -> dict[int, RecipientFacts]:
    """The facts of these leads (by id) in at most three queries, whatever their number: the
    suppressions of their addresses; with `marketing`, the topics of `topic_ids` they left
    and one grouped count of the marketing e-mails sent to each within the cap's period
    (`exclude_messages` not counted: the ones being sent)."""
    by_id = {lead.pk: lead for lead in leads}
    emails = {lead.email.lower() for lead in by_id.values() if lead.email}
    suppressed = dict(Suppression.objects.filter(email__in=emails).values_list("email", "reason")) if emails else {}
    left: dict[int, set[int]] = {}
    recent: dict[int, int] = {}
    topics = {pk for pk in topic_ids if pk is not None}
    if marketing and by_id:
        if topics:
            preferences = TopicPreference.objects.filter(lead_id__in=by_id, topic_id__in=topics, subscribed=False)
            for lead_id, topic_id in preferences.values_list("lead_id", "topic_id"):
                left.setdefault(lead_id, set()).add(topic_id)
        sent = Message.objects.filter(
            lead_id__in=by_id, kind=TemplateKind.MARKETING, sent_at__gte=now - dt.timedelta(days=_cap()[1])
        )
        excluded = [pk for pk in exclude_messages if pk is not None]
        if excluded:
            sent = sent.exclude(pk__in=excluded)
        recent = dict(sent.order_by().values("lead_id").annotate(n=Count("id")).values_list("lead_id", "n"))
    return {
        pk: RecipientFacts(
            email=lead.email or "",
            consent_status=lead.consent_status,
            suppression=suppressed.get((lead.email or "").lower(), ""),
            topics_left=frozenset(left.get(pk, ())),
            recent_marketing=recent.get(pk, 0),
        )
        for pk, lead in by_id.items()
    }


def refusal(
    *, lead: Lead, kind: str, now: dt.datetime, exclude_message: int | None = None, topic_id: int | None = None
) -> str:
    """Why this lead may not get a message of this kind (of this topic) now ("" when it
    may): `refusal_of` over this one lead's facts."""
    facts = recipient_facts(
        leads=[lead],
        now=now,
        topic_ids=[topic_id],
        marketing=kind == TemplateKind.MARKETING,
        exclude_messages=[exclude_message],
    )
    return refusal_of(facts[lead.pk], kind=kind, topic_id=topic_id)


def _counted(facts: dict[int, RecipientFacts], lead_id: int) -> None:
    """One more marketing e-mail for this lead (the cap holds inside a batch)."""
    facts[lead_id] = replace(facts[lead_id], recent_marketing=facts[lead_id].recent_marketing + 1)


# --- queue and send ----------------------------------------------------------------------

SEND_CHUNK = 100  # messages claimed together: one claim, one read of their facts, one write of failures
# A claimed message is its sender's (status "sending") until this lease ends; then it is due
# again: its worker died. A chunk that has spent half of it gives back what it did not send.
LEASE = dt.timedelta(seconds=60)


def messages_queue(*, actor: Actor, requests: Sequence[MessageRequest]) -> list[MessageOutcome]:
    """Queue one message per request (refused ones say why) and owe their sending. A batch
    costs the same few queries as one request: the keys already queued, the leads, the
    templates, their facts (`recipient_facts`), one insert, one outbox row. A key asked
    again (before, or earlier in the batch) answers its first message; the frequency cap
    counts the messages this batch queued before for the same lead."""
    if not requests:
        return []
    now = timezone.now()
    existing = dict(
        Message.objects.filter(idempotency_key__in={r.idempotency_key for r in requests}).values_list(
            "idempotency_key", "pk"
        )
    )
    fresh = [r for r in requests if r.idempotency_key not in existing]
    leads, templates = {}, {}
    if fresh:
        rows = Lead.objects.filter(pk__in={r.lead_id for r in fresh}).values_list("pk", "email", "consent_status")
        leads = {row[0]: Recipient(*row) for row in rows}
        templates = EmailTemplate.objects.only("kind", "subject", "topic").in_bulk({r.template_id for r in fresh})
    facts = recipient_facts(
        leads=leads.values(),
        now=now,
        topic_ids={t.topic_id for t in templates.values()},
        marketing=any(t.is_marketing for t in templates.values()),
    )
    cap, _ = _cap()
    pending: dict[str, _NewMessage] = {}
    answers: list[MessageOutcome | tuple[int, str]] = []  # an outcome, or (lead, key) of a row to insert
    for r in requests:
        key = r.idempotency_key
        if key in existing:
            answers.append(MessageOutcome(r.lead_id, existing[key]))
            continue
        if key in pending:
            answers.append((r.lead_id, key))
            continue
        lead, template = leads.get(r.lead_id), templates.get(r.template_id)
        if lead is None or template is None:
            answers.append(MessageOutcome(r.lead_id, None, "unknown_lead" if lead is None else "unknown_template"))
            continue
        why = refusal_of(facts[lead.pk], kind=template.kind, topic_id=template.topic_id, cap=cap)
        if why:
            answers.append(MessageOutcome(r.lead_id, None, why))
            continue
        if template.is_marketing:
            _counted(facts, lead.pk)
        pending[key] = _NewMessage(
            lead.pk,
            template.pk,
            template.kind,
            key,
            lead.email,
            template.subject[:300],
            r.enrollment_id,
            r.step,
            r.variant,
        )
        answers.append((r.lead_id, key))
    ids: dict[str, int] = {}
    with transaction.atomic():
        if pending:
            ids = _insert_messages(list(pending.values()), now=now)
            events.enqueue("nurturing.tasks.messages_send", message_ids=[ids[key] for key in pending])
    return [
        answer if isinstance(answer, MessageOutcome) else MessageOutcome(answer[0], ids[answer[1]])
        for answer in answers
    ]


class _NewMessage(NamedTuple):
    """A message row to insert (plain data: a model instance per row costs more than its insert)."""

    lead_id: int
    template_id: int
    kind: str
    idempotency_key: str
    to_email: str
    subject: str
    enrollment_id: int | None
    step: str
    variant: str


def _insert_messages(messages: list[_NewMessage], *, now: dt.datetime) -> dict[str, int]:
    """Insert new queued message rows; their ids by idempotency key. On PostgreSQL one
    INSERT ... SELECT FROM unnest(arrays) per thousand rows (Django's bulk_create prepares
    every field of every row in Python: most of the cost of a batch); elsewhere bulk_create."""
    if db_connection.vendor != "postgresql":
        rows = Message.objects.bulk_create(
            [Message(**m._asdict(), queued_at=now, next_attempt_at=now) for m in messages], batch_size=1000
        )
        return {row.idempotency_key: row.pk for row in rows}
    table = Message._meta.db_table
    ids: dict[str, int] = {}
    for start in range(0, len(messages), 1000):
        chunk = messages[start : start + 1000]
        with db_connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (lead_id, template_id, kind, idempotency_key, status, to_email, subject,"  # noqa: S608
                " attempts, next_attempt_at, last_error, queued_at, smtp_id, provider_id, enrollment_id, step, variant)"
                " SELECT r.lead, r.template, r.kind, r.key, %s, r.email, r.subject, 0, r.at, '', r.at, '', '',"
                " r.enrollment, r.step, r.variant FROM unnest(%s::bigint[], %s::bigint[], %s::varchar[],"
                " %s::varchar[], %s::varchar[], %s::varchar[], %s::timestamptz[], %s::bigint[], %s::varchar[],"
                " %s::varchar[]) AS r(lead, template, kind, key, email, subject, at, enrollment, step, variant)"
                " RETURNING id, idempotency_key",
                [
                    MessageStatus.QUEUED,
                    [m.lead_id for m in chunk],
                    [m.template_id for m in chunk],
                    [m.kind for m in chunk],
                    [m.idempotency_key for m in chunk],
                    [m.to_email for m in chunk],
                    [m.subject for m in chunk],
                    [now] * len(chunk),
                    [m.enrollment_id for m in chunk],
                    [m.step for m in chunk],
                    [m.variant for m in chunk],
                ],
            )
            ids.update({key: pk for pk, key in cur.fetchall()})
    return ids


def messages_send(*, message_ids: Sequence[int], now: dt.datetime | None = None) -> dict[str, int]:
    """Send each due queued message once, chunk by chunk over one e-mail connection: a chunk
    is claimed in one `SELECT ... FOR UPDATE SKIP LOCKED` and marked "sending" under a lease
    (two workers, or a task delivered twice, never hold the same message), its leads'
    consent, suppressions, topics and cap are read at once and checked per message with the
    one rule (`refusal_of`), then each message is rendered and sent, and its "sent" is
    written before the next one goes (a killed worker sends again at most the one in
    flight); refusals and failures are written together at the end of the chunk. A failure
    is retried with backoff, then parked as failed; a message whose worker died is due
    again when its lease ends."""
    counts = dict.fromkeys(("sent", "refused", "retry", "failed", "skipped"), 0)
    ids = list(dict.fromkeys(int(pk) for pk in message_ids))
    if not ids:
        return counts
    default_sender = SenderIdentity.objects.filter(is_default=True).first()
    connection = _Connection()
    try:
        for start in range(0, len(ids), SEND_CHUNK):
            _send_chunk(ids[start : start + SEND_CHUNK], connection, default_sender, now=now, counts=counts)
    finally:
        connection.close()
    return counts


class _Connection:
    """One e-mail connection for a whole `messages_send` (Django's SMTP back end connects
    and quits per message unless it is opened first), opened when the first message goes
    and again after a failure (a broken session must not fail the messages after it)."""

    def __init__(self):
        self.backend = django_mail.get_connection(fail_silently=False)
        self.opened = False

    def ready(self):
        if not self.opened:
            self.opened = True
            try:
                self.backend.open()
            except Exception as exc:  # each message then tries on its own and records why
                logger.warning("opening the e-mail connection failed: %s", exc)
        return self.backend

    def close(self) -> None:
        if self.opened:
            self.opened = False
            try:
                self.backend.close()
            except Exception as exc:
                logger.warning("closing the e-mail connection failed: %s", exc)


def _send_chunk(
    ids: list[int],
    connection: _Connection,
    default_sender: SenderIdentity | None,
    *,
    now: dt.datetime | None,
    counts: dict[str, int],
) -> None:
    now_ = now or timezone.now()
    due = Q(status=MessageStatus.QUEUED) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now_))
    lapsed = Q(status=MessageStatus.SENDING, next_attempt_at__lte=now_)  # its worker died while it held it
    with transaction.atomic():
        claimed = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("lead", "lead__owner", "lead__company", "template", "template__sender")
            .filter(due | lapsed, pk__in=ids)
            .order_by("pk")
        )
        if claimed:
            Message.objects.filter(pk__in=[m.pk for m in claimed]).update(
                status=MessageStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now_ + LEASE
            )
    counts["skipped"] += len(ids) - len(claimed)
    if not claimed:
        return
    facts = recipient_facts(
        leads=[m.lead for m in claimed],
        now=now_,
        topic_ids={m.template.topic_id for m in claimed if m.template is not None},
        marketing=any(m.kind == TemplateKind.MARKETING for m in claimed),
        exclude_messages=[m.pk for m in claimed],
    )
    cap, _ = _cap()
    refused: dict[str, list[int]] = {}
    failed: list[Message] = []
    done = 0
    deadline = time.monotonic() + LEASE.total_seconds() / 2
    provider = sending_rate.provider_of(settings.EMAIL_BACKEND)
    limited = sending_rate.limit_of(provider) is not None
    try:
        for message in claimed:
            if time.monotonic() > deadline:
                break
            message.attempts += 1
            done += 1
            why = (
                "unknown_template"
                if message.template is None
                else refusal_of(facts[message.lead_id], kind=message.kind, topic_id=message.template.topic_id, cap=cap)
            )
            if why:
                refused.setdefault(why, []).append(message.pk)
                continue
            if limited:  # the provider's messages per second, shared by every worker
                sending_rate.paced(provider=provider, wanted=1)
            try:
                _deliver(connection.ready(), message, default_sender)
            except Exception as exc:  # the provider's error: retry later, then park
                logger.warning("sending message %s failed: %s", message.pk, exc)
                message.last_error = str(exc)[:500]
                failed.append(message)
                connection.close()
                continue
            _record_sent(message, now_)
            counts["sent"] += 1
            if message.kind == TemplateKind.MARKETING:
                _counted(facts, message.lead_id)
    finally:
        _record_outcomes(claimed[done:], refused, failed, now=now_, counts=counts)


def _record_sent(message: Message, now: dt.datetime) -> None:
    """The send written at once, before the next message goes: a worker killed after the
    server took this one and before this line is the only way it goes twice.

    On PostgreSQL, when nothing reacts to `email.sent`, it is one statement string sent in
    autocommit mode: PostgreSQL runs it as one transaction, so it costs one round trip
    (a BEGIN, the update and a COMMIT were three); its commit does not wait for the disk
    (`synchronous_commit` off for this transaction only): a killed worker loses nothing
    (the server has it), a crashed database server may forget the last fraction of a
    second of sends, which go again when their lease ends, with the same Message-ID."""
    message.status, message.sent_at, message.last_error = MessageStatus.SENT, now, ""
    values = {
        "status": MessageStatus.SENT,
        "sent_at": now,
        "last_error": "",
        "to_email": message.to_email,
        "subject": message.subject,
        "smtp_id": message.smtp_id,
        "provider_id": message.provider_id,
    }
    if (
        db_connection.vendor == "postgresql"
        and db_connection.get_autocommit()
        and not db_connection.in_atomic_block
        and not events.has_reactions(events.EMAIL_SENT)
    ):
        with db_connection.cursor() as cur:
            cur.execute(
                "SET LOCAL synchronous_commit TO OFF;"
                f" UPDATE {Message._meta.db_table} SET {', '.join(f'{k} = %s' for k in values)}"  # noqa: S608
                " WHERE id = %s AND status = %s",
                [*values.values(), message.pk, MessageStatus.SENDING],
            )
        return
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=MessageStatus.SENDING).update(**values)
        events.emit(events.EMAIL_SENT, lead_ids=[message.lead_id], message_ids=[message.pk])


def _record_outcomes(
    left: list[Message],
    refused: dict[str, list[int]],
    failed: list[Message],
    *,
    now: dt.datetime,
    counts: dict[str, int],
) -> None:
    """A chunk's refusals, failures and what it did not reach, in one transaction: refused
    messages are parked as failed (why, at send time), failed ones wait for their retry
    (with backoff) or are parked after MAX_ATTEMPTS, the ones left go back to the queue
    (their claim not counted as an attempt) and are owed again at once."""
    if not (left or refused or failed):
        return
    with transaction.atomic():
        for why, pks in refused.items():
            Message.objects.filter(pk__in=pks, status=MessageStatus.SENDING).update(
                status=MessageStatus.FAILED, last_error=f"Not sent: {why} at send time"
            )
            counts["refused"] += len(pks)
        for message in failed:
            if message.attempts >= MAX_ATTEMPTS:
                message.status = MessageStatus.FAILED
                counts["failed"] += 1
            else:
                message.status = MessageStatus.QUEUED
                delay = BACKOFF[min(message.attempts - 1, len(BACKOFF) - 1)]
                message.next_attempt_at = now + dt.timedelta(seconds=delay)
                counts["retry"] += 1
        if failed:
            Message.objects.bulk_update(failed, ["status", "last_error", "next_attempt_at"])
        if left:
            pks = [m.pk for m in left]
            Message.objects.filter(pk__in=pks, status=MessageStatus.SENDING).update(
                status=MessageStatus.QUEUED, attempts=F("attempts") - 1, next_attempt_at=now
            )
            events.enqueue("nurturing.tasks.messages_send", message_ids=pks)
            counts["skipped"] += len(pks)


def sender_of(template: EmailTemplate | None, default: SenderIdentity | None) -> tuple[str, list[str]]:
    """(From, Reply-To) of a template's messages: its sender identity, else the default
    identity, else DEFAULT_FROM_EMAIL."""
    sender = (template.sender if template is not None else None) or default
    if sender is None:
        return settings.DEFAULT_FROM_EMAIL, []
    return formataddr((sender.name, sender.from_email)), [sender.reply_to] if sender.reply_to else []


@functools.lru_cache(maxsize=256)
def _domain(from_email: str) -> str:
    return parseaddr(from_email)[1].rpartition("@")[2] or "leadcrm.invalid"


def _message_id(from_email: str) -> str:
    """A fresh Message-ID on the sender's domain (a test send: no message row)."""
    return make_msgid(domain=_domain(from_email))


def message_id_of(message: Message, from_email: str) -> str:
    """The Message-ID of a message, on its sender's domain (replies name it in In-Reply-To):
    the same at every attempt, so a message sent again after a crash carries the same one
    (a receiver can tell the copy); its id, and a tag keyed by SECRET_KEY and the time it
    was queued that keeps two installations (or a reset database) apart."""
    tag = salted_hmac("nurturing.message-id", f"{message.pk}:{message.queued_at.timestamp():.6f}").hexdigest()[:16]
    return f"<{message.pk}.{tag}@{_domain(from_email)}>"


_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def smtp_send(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> None:
    """`smtplib.SMTP.sendmail` for an ASCII message, with the envelope pipelined when the
    server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA in one write and their replies
    read together, then the message: two round trips instead of four per message."""
    if not smtp.has_extn("pipelining"):
        smtp.sendmail(sender, recipients, data)
        return
    smtp.send("".join([f"MAIL FROM:<{sender}>\r\n", *(f"RCPT TO:<{to}>\r\n" for to in recipients), "DATA\r\n"]))
    mail = smtp.getreply()
    rcpts = [smtp.getreply() for _ in recipients]
    code, reply = smtp.getreply()
    refused = {to: answer for to, answer in zip(recipients, rcpts, strict=True) if answer[0] not in (250, 251)}
    if code == 354 and (mail[0] != 250 or len(refused) == len(recipients)):
        smtp.send(b".\r\n")  # the server waits for a message it will refuse: end it empty
        smtp.getreply()
    if mail[0] != 250:
        smtp.rset()
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
    if len(refused) == len(recipients):
        smtp.rset()
        raise smtplib.SMTPRecipientsRefused(refused)
    if code != 354:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    body = _LEADING_DOT.sub(b"..", data)
    smtp.send(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    code, reply = smtp.getreply()
    if code != 250:
        smtp.rset()
        raise smtplib.SMTPDataError(code, reply)
    if refused:
        raise smtplib.SMTPRecipientsRefused(refused)


class _Email(django_mail.EmailMultiAlternatives):
    """The e-mails of this module: one recipient, a text part and at most one HTML
    alternative. `message()` (what Django's SMTP, console and file back ends write out)
    hands out `_Wire`, which writes those bytes directly (`nurturing.mime`); an API back end
    (anymail) reads the attributes and never calls it."""

    def message(self):
        return _Wire(self)

    def send(self, fail_silently: bool = False) -> int:
        """Over an open connection of Django's SMTP back end, the bytes go to smtplib as
        they are (the back end would parse both addresses again for each message); any
        other back end, or an address that needs more than ASCII, takes Django's way."""
        connection = self.get_connection(fail_silently)
        sender = mime.envelope_address(str(self.from_email))
        recipients = [mime.envelope_address(str(to)) for to in self.recipients()]
        wire = self.message()
        if (
            type(connection) is smtp_backend.EmailBackend
            and connection.connection is not None
            and wire.simple
            and sender
            and recipients
            and all(recipients)
        ):
            smtp_send(connection.connection, sender, recipients, wire.as_bytes(linesep="\r\n"))
            return 1
        return super().send(fail_silently)

    def standard_message(self):
        """Django's own MIME tree, with its boundaries drawn at random before it is written
        (the standard library otherwise compiles a regular expression per message to check
        the one it makes against the body; 128 random bits never occur in a body)."""
        msg = super().message()
        for part in msg.walk():
            if part.is_multipart() and part.get_boundary() is None:
                part.set_boundary(f"lc-{secrets.token_hex(16)}")
        return msg


class _Wire:
    """What `_Email.message()` returns: `as_bytes()` written by `nurturing.mime` when the
    e-mail has the shape written there; anything else asked of it (reading or changing a
    header, another shape of e-mail) is answered by the standard message, built on first
    use, which then also writes the bytes."""

    def __init__(self, email: _Email):
        self._email = email
        self._standard = None
        html = [content for content, mimetype in email.alternatives if mimetype == "text/html"]
        simple = not (email.cc or email.bcc or email.attachments) and len(email.alternatives) == len(html) <= 1
        self._html = html[0] if html else ""
        self.simple = simple
        if not simple:
            self._full()

    def _full(self):
        if self._standard is None:
            self._standard = self._email.standard_message()
        return self._standard

    def _headers(self) -> list[tuple[str, str]]:
        email = self._email
        extra = {name.lower(): (name, value) for name, value in email.extra_headers.items()}
        headers = [
            ("Subject", str(email.subject)),
            ("From", mime.address_header(str(extra.pop("from", ("", email.from_email))[1]))),
            ("To", mime.address_header(", ".join(map(str, email.to)))),
        ]
        if email.reply_to:
            headers.append(("Reply-To", mime.address_header(", ".join(map(str, email.reply_to)))))
        date = extra.pop("date", ("", ""))[1] or formatdate(localtime=settings.EMAIL_USE_LOCALTIME)
        message_id = extra.pop("message-id", ("", ""))[1] or make_msgid(domain=django_mail.DNS_NAME)
        headers += [("Date", str(date)), ("Message-ID", str(message_id))]
        headers += [(name, str(value)) for lowered, (name, value) in extra.items() if lowered not in ("to", "reply-to")]
        return headers

    def as_bytes(self, unixfrom: bool = False, policy=None, linesep: str = "\n") -> bytes:
        if self._standard is not None:
            return self._standard.as_bytes(unixfrom, policy=policy, linesep=linesep)
        wire = mime.email_bytes(headers=self._headers(), text=str(self._email.body), html=self._html)
        return wire if linesep == "\r\n" else wire.replace(b"\r\n", linesep.encode("ascii"))

    def as_string(self, unixfrom: bool = False, linesep: str = "\n") -> str:
        return self.as_bytes(unixfrom, linesep=linesep).decode("utf-8")

    def __getattr__(self, name: str):
        return getattr(self._full(), name)

    def __getitem__(self, name: str):
        return self._full()[name]

    def __setitem__(self, name: str, value) -> None:
        self._full()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._full()[name]

    def __contains__(self, name: str) -> bool:
        return name in self._full()


def _deliver(connection, message: Message, default_sender: SenderIdentity | None = None) -> None:
    url = public_url("unsubscribe", unsubscribe_token(message)) if message.kind == TemplateKind.MARKETING else ""
    subject, html, text = message_render(
        template=message.template, lead=message.lead, message=message, unsubscribe_url=url
    )
    from_email, reply_to = sender_of(message.template, default_sender)
    message_id = message_id_of(message, from_email)
    headers = {"Message-ID": message_id}
    if url:
        mailto = f"mailto:{settings.LEADCRM_UNSUBSCRIBE_MAILTO}?subject=unsubscribe"
        headers["List-Unsubscribe"] = f"<{url}>, <{mailto}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = _Email(
        subject=subject,
        body=text,
        from_email=from_email,
        to=[message.lead.email],
        reply_to=reply_to,
        headers={**headers, "X-LeadCRM-Message": str(message.pk)},
        connection=connection,
    )
    # Anymail passes metadata to the provider, which gives it back in its tracking events.
    email.metadata = {"leadcrm_message": str(message.pk)}
    if html:
        email.attach_alternative(html, "text/html")
    email.send()
    message.to_email, message.subject = message.lead.email, subject[:300]
    message.smtp_id = message_id
    status = getattr(email, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    if isinstance(provider_id, (set, frozenset, list, tuple)):  # one recipient: one id
        provider_id = next(iter(provider_id), None)
    message.provider_id = "" if provider_id is None else str(provider_id)[:255]


def messages_due(*, now: dt.datetime | None = None, limit: int = 1000) -> list[int]:
    """Queued messages whose retry time has come, and messages whose sender died while it
    held them (their lease is over): beat sends them again."""
    now = now or timezone.now()
    return list(
        Message.objects.filter(status__in=(MessageStatus.QUEUED, MessageStatus.SENDING), next_attempt_at__lte=now)
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


def unsubscribe_page_facts(*, token: str) -> tuple[Message, list[tuple[Topic, bool]]]:
    """What the preferences page shows: the message of the link, every topic and whether
    its lead still gets it."""
    message, data = _message_of(token, SALT_UNSUBSCRIBE)
    if data.get("l") != message.lead_id:
        raise ServiceError({"token": ["This link is not valid."]})
    left = set(
        TopicPreference.objects.filter(lead_id=message.lead_id, subscribed=False).values_list("topic_id", flat=True)
    )
    return message, [(topic, topic.pk not in left) for topic in Topic.objects.all()]


def preferences_save(*, token: str, subscribed: Iterable[int]) -> Message:
    """The preferences form: the topics ticked stay, the others are left (the lead keeps
    its consent for the rest)."""
    message, topics = unsubscribe_page_facts(token=token)
    wanted = set(subscribed)
    topic_preferences_set(
        lead_id=message.lead_id,
        choices={topic.pk: topic.pk in wanted for topic, _ in topics},
        source=f"preferences:message:{message.pk}",
        actor=Actor.automation(),
    )
    return message


# --- test sends ------------------------------------------------------------------------------


def template_test_send(*, actor: Actor, template_id: int, lead: Lead, to: str = "") -> str:
    """The template rendered for a real lead and sent to the caller (or the address it
    gives), marked [TEST]: no message row, no consent check, nothing on the lead's record;
    audited. Returns the address it went to."""
    template = EmailTemplate.objects.select_related("sender").get(pk=template_id)
    to = (to or (actor.user.email if actor.user else "")).strip()
    if not to:
        raise ServiceError({"to": ["Give an address: your account has no e-mail."]})
    subject, html, text = message_render(template=template, lead=lead, test=True)
    from_email, reply_to = sender_of(template, SenderIdentity.objects.filter(is_default=True).first())
    email = django_mail.EmailMultiAlternatives(
        subject=f"[TEST] {subject}",
        body=text,
        from_email=from_email,
        to=[to],
        reply_to=reply_to,
        headers={"Message-ID": _message_id(from_email), "X-LeadCRM-Test": str(template.pk)},
    )
    if html:
        email.attach_alternative(html, "text/html")
    try:
        email.send()
    except Exception as exc:  # the provider's refusal is the tester's answer, not a 500
        logger.warning("test send of template %s failed: %s", template.pk, exc)
        raise ServiceError({"to": [f"Could not send: {str(exc)[:200]}"]}) from exc
    audit.record(
        actor=actor,
        action="nurturing.template.test_send",
        target=template,
        details={"lead": lead.pk, "to": to},
    )
    return to


# --- provider events: bounces, complaints, replies -------------------------------------------

BOUNCE, COMPLAINT, UNSUBSCRIBED = "bounced", "complained", "unsubscribed"
_ANGLE = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's tracking event, as anymail normalised it (plain data)."""

    kind: str  # "bounced" | "complained" | "unsubscribed" (others are ignored)
    recipient: str = ""
    message_id: str = ""  # the provider's id (or the Message-ID header)
    leadcrm_message: int | None = None  # from the metadata sent with the message
    at: dt.datetime | None = None
    description: str = ""


def _find_message(event: ProviderEvent) -> Message | None:
    if event.leadcrm_message:
        found = Message.objects.filter(pk=event.leadcrm_message).first()
        if found is not None:
            return found
    if event.message_id:
        ids = {event.message_id, f"<{event.message_id.strip('<>')}>"}
        return Message.objects.filter(Q(provider_id=event.message_id) | Q(smtp_id__in=ids)).first()
    return None


def provider_events_record(*, items: Sequence[ProviderEvent], now: dt.datetime | None = None) -> dict[str, int]:
    """Bounces and complaints from the provider's webhook: the message marked, the address
    suppressed (a hard bounce or a complaint stops every message to it), `email.bounced` /
    `email.complained` announced. A re-delivered event changes nothing the second time."""
    now = now or timezone.now()
    counts = {"recorded": 0, "unchanged": 0, "ignored": 0}
    for event in items:
        if event.kind not in (BOUNCE, COMPLAINT, UNSUBSCRIBED):
            counts["ignored"] += 1
            continue
        with transaction.atomic():
            message = _find_message(event)
            email = (event.recipient or (message.to_email if message else "") or "").strip().lower()
            if message is None and not email:
                counts["ignored"] += 1
                continue
            changed = _provider_event_apply(event, message, email, event.at or now)
            counts["recorded" if changed else "unchanged"] += 1
    return counts


def _provider_event_apply(event: ProviderEvent, message: Message | None, email: str, at: dt.datetime) -> bool:
    changed = False
    if event.kind == UNSUBSCRIBED:
        if message is not None and message.unsubscribed_at is None:
            unsubscribe(token=unsubscribe_token(message))
            return True
        if email:
            _, created = Suppression.objects.get_or_create(
                email=email, defaults={"reason": SuppressionReason.OPT_OUT, "source": "provider"}
            )
            return created
        return False
    reason = SuppressionReason.HARD_BOUNCE if event.kind == BOUNCE else SuppressionReason.COMPLAINT
    if email:
        row, created = Suppression.objects.select_for_update().get_or_create(
            email=email,
            defaults={"reason": reason, "source": f"message:{message.pk}" if message else "provider"},
        )
        if not created and row.reason == SuppressionReason.OPT_OUT:  # a stronger reason replaces an opt-out
            row.reason = reason
            row.save(update_fields=["reason"])
            created = True
        changed |= created
    if message is not None:
        field, status, name = {
            BOUNCE: ("bounced_at", MessageStatus.BOUNCED, events.EMAIL_BOUNCED),
            COMPLAINT: ("complained_at", MessageStatus.COMPLAINED, events.EMAIL_COMPLAINED),
        }[event.kind]
        first = Message.objects.filter(pk=message.pk, **{f"{field}__isnull": True}).update(
            **{field: at, "status": status, "last_error": (event.description or "")[:500]}
        )
        if first:
            changed = True
            events.emit(name, lead_ids=[message.lead_id], message_ids=[message.pk])
            if event.kind == COMPLAINT:  # "this is spam": no more marketing, whatever the consent said
                lead_services.lead_consent_set(
                    lead_id=message.lead_id,
                    status=ConsentStatus.OPT_OUT,
                    source=f"complaint:message:{message.pk}",
                    actor=Actor.automation(),
                )
    return changed


@dataclass(frozen=True)
class InboundReply:
    """An inbound e-mail (anymail's inbound webhook), as plain data."""

    from_email: str
    message_id: str = ""  # the reply's own Message-ID (re-deliveries carry the same)
    in_reply_to: str = ""
    references: str = ""
    subject: str = ""
    at: dt.datetime | None = None


def reply_record(*, reply: InboundReply, now: dt.datetime | None = None) -> Message | None:
    """A reply to one of our messages: matched by In-Reply-To / References against the
    Message-ID we sent, else by its sender's address to that lead's last message. Marks the
    message replied, announces `email.replied` (sequences exit on it) and puts an e-mail
    reply on the lead's timeline. A re-delivered reply (same Message-ID) changes nothing."""
    now = reply.at or now or timezone.now()
    named = _ANGLE.findall(f"{reply.in_reply_to} {reply.references}")
    message = None
    if named:
        message = Message.objects.filter(smtp_id__in=named).order_by("-sent_at", "-id").first()
    if message is None:
        sender = parseaddr(reply.from_email)[1].strip().lower()
        if sender:
            message = (
                Message.objects.filter(lead__email=sender, sent_at__isnull=False).order_by("-sent_at", "-id").first()
            )
    if message is None:
        return None
    reply_id = reply.message_id.strip()[:255]
    with transaction.atomic():
        # One lock per message: two deliveries of the same reply record it once.
        message = Message.objects.select_for_update().get(pk=message.pk)
        seen = Touchpoint.objects.filter(lead_id=message.lead_id, type=REPLY_TOUCHPOINT, properties__message=message.pk)
        if reply_id and seen.filter(properties__reply_id=reply_id).exists():
            return message
        if message.replied_at is None:
            message.replied_at = now
            if message.status not in (MessageStatus.BOUNCED, MessageStatus.COMPLAINED, MessageStatus.UNSUBSCRIBED):
                message.status = MessageStatus.REPLIED
            message.save(update_fields=["replied_at", "status"])
        lead_services.events_record(
            items=[
                {
                    "lead_id": message.lead_id,
                    "type": REPLY_TOUCHPOINT,
                    "occurred_at": now,
                    "properties": {
                        "event": "email_reply",
                        "message": message.pk,
                        "reply_id": reply_id,
                        "subject": reply.subject[:300],
                    },
                }
            ],
            actor=Actor.automation(),
        )
    return message

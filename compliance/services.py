"""GDPR writes: the export's receipt, the erasure of people and the retention purge.

The erasure anonymises rows of every app's tables (`compliance.registry`): it is the one
writer allowed to touch other apps' rows, by one rule for all of them (replace the person's
identifiers in every text and JSON column, blank the free-text columns listed per table),
so that a new table is erased the day it is created. Rows are kept (anonymised), so stage
histories, scores and message counts still add up; only nurturing's clear-text suppression
of the address is deleted, replaced by the hash in `ErasedIdentity`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import GenericIPAddressField, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from compliance import registry, selectors
from compliance.models import ErasedIdentity, Erasure
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import ConsentRecord, ConsentStatus, Lead

logger = logging.getLogger(__name__)

REASON_MAX_LENGTH = 1000
# The lead's columns that identify or describe the person: blanked. What reports count
# (stage, source, campaign, country, industry, size, scores, dates) stays.
LEAD_BLANK = {
    "first_name": "",
    "last_name": "",
    "phone": "",
    "job_title": "",
    "city": "",
    "properties": {},
}

personal_data_register = registry.register
personal_data_exempt = registry.exempt


def placeholder_email(lead_id: int) -> str:
    """A non-personal, undeliverable address (RFC 2606 `.invalid`), unique per lead."""
    return f"erased-{lead_id}@erased.invalid"


def _url_without_query(row: Any, _ctx: ErasureContext) -> str:
    parts = urlsplit(row.url or "")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) if row.url else ""


def _visitor_key(_row: Any, _ctx: ErasureContext) -> str:
    return f"erased-{uuid.uuid4().hex}"


def _message_address(row: Any, _ctx: ErasureContext) -> str:
    return placeholder_email(row.lead_id) if row.to_email else ""


def _erase_consent_records(qs, ctx: ErasureContext) -> int:
    """The one update the consent log's trigger allows: IP and user agent blanked."""
    return qs.filter(erased_at__isnull=True).update(ip=None, user_agent="", erased_at=ctx.now)


def _audit_about_leads(leads: list) -> Q:
    return Q(target_type="leads.lead", target_id__in=[str(lead.pk) for lead in leads])


def _admin_log_about_leads(leads: list) -> Q:
    content_type = ContentType.objects.get_for_model(Lead)
    return Q(content_type=content_type, object_id__in=[str(lead.pk) for lead in leads])


def _imports_mentioning(leads: list) -> Q:
    """Import jobs whose uploaded file holds one of the addresses (PostgreSQL: the bytes
    searched in the database, not loaded)."""
    emails = sorted({lead.email.lower() for lead in leads if lead.email})
    if not emails or connection.vendor != "postgresql":
        return Q(pk__in=[])
    where = " OR ".join(["position(%s in lower(encode(data, 'escape'))) > 0"] * len(emails))
    return Q(pk__in=RawSQL(f"SELECT id FROM leads_importjob WHERE {where}", emails))  # noqa: S608 - fixed text


def _file_scrubbed(row: Any, ctx: ErasureContext) -> bytes:
    """The uploaded file with the person's identifiers replaced (decoded as it was read)."""
    raw = bytes(row.data or b"")
    encoding = row.encoding or "utf-8"
    try:
        text = raw.decode(encoding, errors="surrogateescape")
    except LookupError:
        encoding, text = "utf-8", raw.decode("utf-8", errors="surrogateescape")
    return registry.scrub_value(text, ctx.pattern).encode(encoding, errors="surrogateescape")


def _outbox_about_leads(leads: list) -> Q:
    q = Q(pk__in=[])
    for lead in leads:
        q |= Q(payload__lead_ids__contains=[lead.pk])
    return q


def register_builtin_sources() -> None:
    """What the project's own apps hold beyond the FKs, and their free-text columns
    (called from `ComplianceConfig.ready()`)."""
    register = registry.register
    register(
        "leads.ConsentRecord",
        scrub=False,
        custom_erase=_erase_consent_records,
        note="Append-only: only IP and user agent are blanked (the trigger allows nothing else).",
    )
    register("leads.Touchpoint", blank={"properties": {}, "url": _url_without_query})
    register("leads.Visitor", blank={"key": _visitor_key})
    register("leads.Bant", blank={"budget": "", "authority": "", "need": "", "timeline": "", "notes": ""})
    register("leads.Task", blank={"notes": ""})
    register("leads.Opportunity", blank={"lost_reason": ""})
    register("nurturing.Message", blank={"to_email": _message_address, "subject": "", "last_error": ""})
    register("nurturing.Suppression", email_fields=("email",), delete=True, note="Replaced by ErasedIdentity.")
    register(
        "leadcrm.AuditEntry",
        extra=_audit_about_leads,
        search=("target_repr", "changes", "details"),
        note="Entries about the lead, and any mentioning the address.",
    )
    register("leadcrm.OutboxMessage", extra=_outbox_about_leads, search=("payload", "last_error"))
    register("accounts.Notification", lead_id_field="lead_id", search=("text",))
    register("admin.LogEntry", extra=_admin_log_about_leads, search=("object_repr", "change_message"))
    register(
        "leads.ImportJob",
        search=("errors", "message"),
        extra=_imports_mentioning,
        blank={"data": _file_scrubbed},
        not_exported=("data",),
        note="The uploaded file holds other people's lines: scrubbed on erasure, never exported.",
    )
    exempt = registry.exempt
    exempt("accounts.User", reason="Staff accounts, not leads.")
    exempt("routing.Partner", reason="A partner company's contact address, not a lead.")
    exempt("nurturing.SenderIdentity", reason="Our own sender addresses.")
    for name in ("AccessAttempt", "AccessLog", "AccessFailureLog"):
        exempt(f"axes.{name}", reason="Staff login attempts (IP, user agent), not leads.")
    exempt("leadcrm.Job", reason="Job parameters and cursors hold ids, not personal data.")
    exempt("compliance.ErasedIdentity", reason="Hashes of erased addresses: the suppression that must outlive them.")


# --- export -------------------------------------------------------------------------------


def person_export(*, lead_id: int, actor: Actor) -> dict[str, Any]:
    """Everything held about the person (`compliance.selectors.person_export`), with a
    receipt in the audit log: who exported whom, and how many rows of which tables."""
    lead = Lead.objects.get(pk=lead_id)
    data = selectors.person_export(lead=lead)
    audit.record(
        actor=actor,
        action="compliance.export",
        target=_target(lead.pk),
        details={"rows": {label: len(rows) for label, rows in data["tables"].items() if rows}},
    )
    return data


def _target(lead_id: int) -> tuple[str, int, str]:
    """The receipts name the lead by id only (its e-mail would be personal data)."""
    return ("leads.lead", lead_id, f"Lead #{lead_id}")


# --- erasure ------------------------------------------------------------------------------


@dataclass
class ErasureContext:
    now: dt.datetime
    lead_ids: list[int]
    pattern: Any


@dataclass(frozen=True)
class ErasureResult:
    lead_id: int
    status: str  # "erased", "already_erased" or "not_found"
    erasure_id: int | None
    counts: dict[str, int]


def person_tokens(leads: list[Lead]) -> set[str]:
    """The identifiers searched for and replaced: address (and its local part when long
    enough to be specific), names, phone, and the IPs and user agents of the consent log."""
    tokens: set[str] = set()
    for lead in leads:
        email = (lead.email or "").lower()
        local = email.partition("@")[0]
        tokens.update({email, lead.first_name, lead.last_name, lead.full_name, lead.phone})
        if len(local) >= 6:
            tokens.add(local)
    evidence = ConsentRecord.objects.filter(lead__in=leads).values_list("ip", "user_agent")
    for ip, agent in evidence:
        tokens.update({ip or "", agent or ""})
    return {t for t in tokens if t}


def leads_erase(*, lead_ids: list[int], reason: str, actor: Actor) -> list[ErasureResult]:
    """Erase people (GDPR art. 17): anonymise each lead and every row of every table about it
    (`compliance.registry`), opt it out, keep the hash of its address so that no capture or
    import opts it in again, and leave a receipt (who, when, why, rows per table; no personal
    data) as an `Erasure` and in the audit log. Idempotent: an erased lead answers
    `already_erased` with its first receipt."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise ServiceError({"reason": ["Say why this person is erased (e.g. their request of 2026-12-01)."]})
    if len(reason) > REASON_MAX_LENGTH:
        raise ServiceError({"reason": [f"Ensure this field has no more than {REASON_MAX_LENGTH} characters."]})
    results: dict[int, ErasureResult] = {}
    with transaction.atomic():
        leads = list(Lead.objects.select_for_update().filter(pk__in=set(lead_ids)).order_by("pk"))
        done = {e.lead_id: e for e in Erasure.objects.filter(lead__in=leads)}
        for lead_id, erasure in done.items():
            results[lead_id] = ErasureResult(lead_id, "already_erased", erasure.pk, erasure.counts)
        todo = [lead for lead in leads if lead.pk not in done]
        if todo:
            results.update(_erase(todo, reason=reason, actor=actor))
    return [results.get(pk) or ErasureResult(pk, "not_found", None, {}) for pk in lead_ids]


def _erase(leads: list[Lead], *, reason: str, actor: Actor) -> dict[int, ErasureResult]:
    now = timezone.now()
    ids = [lead.pk for lead in leads]
    for lead in leads:
        lead_services.lead_consent_set(lead_id=lead.pk, status=ConsentStatus.OPT_OUT, source="erasure", actor=actor)
    pattern = registry.token_pattern(person_tokens(leads))
    ctx = ErasureContext(now=now, lead_ids=ids, pattern=pattern)
    counts: dict[str, int] = {}
    for source in registry.sources():
        n = _erase_source(source, leads, ctx)
        if n:
            counts[source.label] = n
    hashes = {selectors.email_hash(lead.email) for lead in leads if lead.email}
    known = set(ErasedIdentity.objects.filter(email_hash__in=hashes).values_list("email_hash", flat=True))
    ErasedIdentity.objects.bulk_create(
        [ErasedIdentity(email_hash=h, first_erased_at=now) for h in sorted(hashes - known)], ignore_conflicts=True
    )
    _anonymise_leads(leads, pattern, now)
    counts["leads.Lead"] = len(leads)
    clean_reason = registry.scrub_value(reason, pattern)
    out = {}
    for lead in leads:
        erasure = Erasure.objects.create(
            lead=lead,
            lead_ref=lead.pk,
            reason=clean_reason,
            counts=counts,
            actor_kind=str(actor.kind),
            actor_id=actor.user.pk if actor.user else None,
            erased_at=now,
        )
        audit.record(
            actor=actor,
            action="compliance.erase",
            target=_target(lead.pk),
            details={"reason": clean_reason, "erasure": erasure.pk, "counts": counts, "batch": len(leads)},
        )
        out[lead.pk] = ErasureResult(lead.pk, "erased", erasure.pk, counts)
    events.emit(events.LEAD_UNSUBSCRIBED, lead_ids=ids, message_ids=[])
    return out


def _erase_source(source: registry.Source, leads: list[Lead], ctx: ErasureContext) -> int:
    qs = source.rows(leads)
    if source.custom_erase is not None:
        return source.custom_erase(qs, ctx)
    if source.delete:
        deleted, _ = qs.delete()
        return deleted
    model = source.model
    fields = registry.text_fields(model) if source.scrub else []
    changed_rows = 0
    for row in qs.iterator(chunk_size=500):
        changes = {}
        for f in fields:
            value = getattr(row, f.attname)
            new = registry.scrub_value(value, ctx.pattern)
            if isinstance(f, GenericIPAddressField) or f.name == "user_agent":
                new = None if f.null else ""  # the person's address and browser, whatever they were
            if new != value:
                changes[f.attname] = new
        for name, value in source.blank.items():
            new = value(row, ctx) if callable(value) else value
            if getattr(row, name) != new:
                changes[name] = new
        if changes:
            model._base_manager.filter(pk=row.pk).update(**changes)
            changed_rows += 1
    return changed_rows


def _anonymise_leads(leads: list[Lead], pattern: Any, now: dt.datetime) -> None:
    fields = [f for f in registry.text_fields(Lead) if f.attname not in ("email", *LEAD_BLANK)]
    for lead in leads:
        changes: dict[str, Any] = {**LEAD_BLANK, "email": placeholder_email(lead.pk), "updated_at": now}
        for f in fields:
            value = getattr(lead, f.attname)
            new = registry.scrub_value(value, pattern)
            if new != value:
                changes[f.attname] = new
        Lead.objects.filter(pk=lead.pk).update(**changes)


# --- retention ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionRun:
    months: int
    erased: int
    chunks: int
    more: bool


def leads_retention_purge(
    *,
    actor: Actor,
    months: int | None = None,
    chunk: int | None = None,
    max_chunks: int | None = None,
    now: dt.datetime | None = None,
) -> RetentionRun:
    """Erase leads inactive for more than `LEADCRM_RETENTION_INACTIVE_MONTHS` months (0: the
    rule is off), `chunk` leads per transaction, at most `max_chunks` chunks per run. Each
    chunk commits on its own and is audited (`compliance.retention_purge`); a run stopped
    midway is resumed by the next (what was erased no longer matches)."""
    months = settings.LEADCRM_RETENTION_INACTIVE_MONTHS if months is None else months
    chunk = chunk or settings.LEADCRM_RETENTION_CHUNK
    max_chunks = max_chunks or settings.LEADCRM_RETENTION_MAX_CHUNKS
    erased = chunks = 0
    if months <= 0:
        return RetentionRun(months, 0, 0, False)
    reason = f"Retention rule: no activity for more than {months} months."
    while chunks < max_chunks:
        ids = selectors.retention_candidates(months=months, now=now, limit=chunk)
        if not ids:
            return RetentionRun(months, erased, chunks, False)
        with transaction.atomic():
            results = leads_erase(lead_ids=ids, reason=reason, actor=actor)
            n = sum(1 for r in results if r.status == "erased")
            audit.record(
                actor=actor,
                action="compliance.retention_purge",
                target=("compliance.retention", "", f"Leads inactive for {months} months"),
                details={"months": months, "erased": n, "first_id": ids[0], "last_id": ids[-1]},
            )
        erased += n
        chunks += 1
    more = bool(selectors.retention_candidates(months=months, now=now, limit=1))
    return RetentionRun(months, erased, chunks, more)

"""Capture and edit one lead: create it, or update the lead its e-mail already names.

A capture never wipes a known value with a blank; a capture of a lead the sender cannot see
changes nothing on it (what was sent is kept as a touchpoint and its owner is told). What a
capture or an edit may write is `leads.fields.WRITABLE_FIELDS`; what an edit audits is here.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import Role, User
from compliance import selectors as compliance_selectors
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.bulk import bulk_insert
from leadcrm.errors import ServiceError
from leadcrm.permissions import may_own_leads
from leads import selectors
from leads.fields import UTM_FIELDS, WRITABLE_FIELDS
from leads.models import (
    Company,
    ConsentChannel,
    ConsentPurpose,
    ConsentRecord,
    ConsentStatus,
    Lead,
    LegalBasis,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
)
from leads.normalize import company_domain_from_email, merge_properties
from leads.services.assignment import lead_assign

# What a lead edit audits as old → new (the company link follows company_name/domain).
AUDITED_FIELDS = (*WRITABLE_FIELDS, "email", "properties", "company")


def company_for(name: str, domain: str, data: dict) -> Company | None:
    if not domain and not name:
        return None
    if domain:
        company, created = Company.objects.get_or_create(
            domain=domain,
            defaults={
                "name": name or domain[: Company._meta.get_field("name").max_length],
                "industry": data.get("industry") or "",
                "size": data.get("company_size"),
                "country": data.get("country") or "",
            },
        )
        if not created and name and company.name in ("", company.domain):
            company.name = name
            company.save(update_fields=["name", "updated_at"])
        return company
    company = Company.objects.filter(domain__isnull=True, name__iexact=name).first()
    return company or Company.objects.create(name=name, industry=data.get("industry") or "")


def apply_fields(lead: Lead, data: dict, *, overwrite_blank: bool) -> list[str]:
    """Copy given fields onto the lead; a re-capture never wipes known values with blanks."""
    changed = []
    for name in WRITABLE_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if not overwrite_blank and value in ("", None):
            continue
        if getattr(lead, name) != value:
            setattr(lead, name, value)
            changed.append(name)
    if "properties" in data and data["properties"]:
        merged = {**lead.properties, **data["properties"]}
        if merged != lead.properties:
            lead.properties = merged
            changed.append("properties")
    if "company_domain" not in data and not lead.company_domain:
        domain = company_domain_from_email(lead.email)
        if domain:
            lead.company_domain = domain
            changed.append("company_domain")
    return changed


def capture_touchpoint(lead: Lead, data: dict, now: dt.datetime, actor: Actor) -> Touchpoint:
    return Touchpoint(
        lead=lead,
        type=TouchpointType.CAPTURE,
        occurred_at=now,
        author=actor.user,
        properties={"source": data.get("source", "")} if data.get("source") else {},
        **{f: data.get(f) or "" for f in UTM_FIELDS},
    )


def lead_capture(*, data: dict, actor: Actor) -> tuple[Lead, bool]:
    """Create a lead, or, when its e-mail is known (case-insensitive), update that lead and
    record the capture as a touchpoint. Returns (lead, created). Safe under concurrency: the
    unique index on the lower-cased e-mail decides, the loser updates."""
    email = data["email"].strip().lower()
    for _attempt in range(3):
        existing = Lead.objects.filter(email=email).first()
        if existing is not None:
            if not selectors.user_may_see_lead(actor.user, existing):
                return record_blind_captures([(existing, data)], actor=actor)[0], False
            with transaction.atomic():
                lead = _recapture(lead_id=existing.pk, data=data, actor=actor)
                return _with_consent(lead, data, actor), False
        try:
            with transaction.atomic():
                lead = _create(email=email, data=data, actor=actor)
                if _works_own_captures(actor):
                    lead = lead_assign(lead_id=lead.pk, owner=actor.user, actor=actor, reason="Captured by its seller")
                return _with_consent(lead, data, actor), True
        except IntegrityError:
            continue  # somebody created it between our read and our insert: update theirs
    raise ServiceError({"email": ["Could not capture this lead; please retry."]})


def _with_consent(lead: Lead, data: dict, actor: Actor) -> Lead:
    if not data.get("consent"):
        return lead
    leads_consent_record(items=[(lead.pk, data["consent"])], actor=actor)
    lead.refresh_from_db(fields=["consent_status", "consent_at", "consent_source"])
    return lead


def _works_own_captures(actor: Actor) -> bool:
    """A seller who captures a lead by hand (a call, a business card) works it."""
    user = actor.user
    return user is not None and user.role == Role.SDR and may_own_leads(user)


def _create(*, email: str, data: dict, actor: Actor) -> Lead:
    now = timezone.now()
    lead = Lead(email=email, stage=Stage.MCL, stage_changed_at=now)
    apply_fields(lead, data, overwrite_blank=True)
    lead.company = company_for(lead.company_name, lead.company_domain, data)
    lead.save()
    StageChange.objects.create(
        lead=lead,
        from_stage="",
        to_stage=Stage.MCL,
        actor_type=actor.kind,
        actor=actor.user,
        reason="Captured" + (f" from {lead.source}" if lead.source else ""),
        created_at=now,
    )
    audit.record(actor=actor, action="lead.create", target=lead, details={"source": lead.source})
    events.emit(events.LEAD_CREATED, lead_ids=[lead.pk])
    return lead


def _recapture(*, lead_id: int, data: dict, actor: Actor) -> Lead:
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        before = audit.snapshot(lead, AUDITED_FIELDS)
        changed = apply_fields(lead, data, overwrite_blank=False)
        if {"company_name", "company_domain"} & set(changed):
            lead.company = company_for(lead.company_name, lead.company_domain, data)
            changed.append("company")
        if changed:
            lead.save(update_fields=[*changed, "updated_at"])
            audit.record(
                actor=actor, action="lead.recapture", target=lead, changes=audit.diff(before, lead), skip_empty=True
            )
        capture_touchpoint(lead, data, timezone.now(), actor).save()
        events.emit(events.LEAD_UPDATED, lead_ids=[lead.pk])
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead.pk])
    return lead


def _submitted(data: dict) -> dict:
    """What a caller sent, kept on the touchpoint of a capture that may not change the lead."""
    return {k: v for k, v in data.items() if (k in WRITABLE_FIELDS or k == "properties") and v not in ("", None, {})}


def record_blind_captures(found: list[tuple[Lead, dict]], *, actor: Actor) -> list[Lead]:
    """Captures of existing leads the caller cannot see (SPEC "Roles"): the lead's fields
    stay as they are; what was sent is kept as a capture touchpoint on it and its owner is
    told. The caller learns nothing about the lead (the API answers "recorded")."""
    now = timezone.now()
    touchpoints = []
    for lead, data in found:
        tp = capture_touchpoint(lead, data, now, actor)
        tp.properties = {**tp.properties, "submitted": _submitted(data), "not_visible_to_sender": True}
        touchpoints.append(tp)
    with transaction.atomic():
        bulk_insert(touchpoints, model=Touchpoint)
        sender = actor.user.username if actor.user else actor.kind
        owner_ids = {lead.owner_id for lead, _ in found if lead.owner_id}
        owners = User.objects.in_bulk(owner_ids)
        accounts_services.notify_many(
            items=[
                (
                    owners[lead.owner_id],
                    "lead_recaptured",
                    f"{sender} sent {lead.email} again; what they sent is on the lead's timeline.",
                    lead.pk,
                )
                for lead, _ in found
                if lead.owner_id in owners
            ]
        )
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=sorted({lead.pk for lead, _ in found}))
    return [lead for lead, _ in found]


def lead_update(*, lead_id: int, data: dict, actor: Actor) -> Lead:
    """PATCH: set the given fields (blanks included); `properties` keys are merged, a key
    set to null is removed."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        before = audit.snapshot(lead, AUDITED_FIELDS)
        props = data.get("properties")
        data = {k: v for k, v in data.items() if k != "properties"}
        changed = apply_fields(lead, data, overwrite_blank=True)
        email = data.get("email")
        if email and email != lead.email:
            if Lead.objects.filter(email=email).exclude(pk=lead.pk).exists():
                raise ServiceError({"email": ["Another lead has this e-mail; merge them instead."]})
            lead.email = email
            changed.append("email")
        if props is not None:
            try:
                merged = merge_properties(lead.properties, props)
            except ValueError as exc:
                raise ServiceError({"properties": [str(exc)]}) from exc
            if merged != lead.properties:
                lead.properties = merged
                changed.append("properties")
        if {"company_name", "company_domain"} & set(changed):
            lead.company = company_for(lead.company_name, lead.company_domain, data)
            changed.append("company")
        if changed:
            lead.save(update_fields=[*changed, "updated_at"])
            audit.record(
                actor=actor, action="lead.update", target=lead, changes=audit.diff(before, lead), skip_empty=True
            )
            events.emit(events.LEAD_UPDATED, lead_ids=[lead.pk], fields=changed)
        lead = _with_consent(lead, data, actor)
    return lead


def lead_consent_set(
    *,
    lead_id: int,
    status: str,
    source: str,
    actor: Actor,
    at: dt.datetime | None = None,
    text: str = "",
    ip: str | None = None,
    user_agent: str = "",
    purpose: str = ConsentPurpose.MARKETING_EMAIL,
    legal_basis: str = LegalBasis.CONSENT,
) -> Lead:
    """The person's own word on a purpose (a form's checkbox, an unsubscribe, a double opt-in
    click): appended to the consent log (`ConsentRecord`: when, where, in which words, from
    which IP and browser, with which proof) every time it is given, and, for marketing e-mail,
    set on the lead, audited and announced as an update. An opt-in (or a pending double
    opt-in) of an erased person (`compliance.selectors.consent_refused`) is refused here, the
    one place every capture, import, API call and confirmation goes through: an erasure is
    never undone by a re-import."""
    if status not in ConsentStatus.values:
        raise ServiceError({"consent_status": [f"One of: {', '.join(ConsentStatus.values)}."]})
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if status in (ConsentStatus.OPT_IN, ConsentStatus.PENDING) and compliance_selectors.consent_refused(lead=lead):
            audit.record(
                actor=actor, action="lead.consent_refused", target=lead, details={"status": status, "why": "erased"}
            )
            return lead
        now = timezone.now()
        _consent_log_append(
            lead_id=lead.pk,
            status=status,
            source=source,
            actor=actor,
            given_at=at or now,
            now=now,
            text=text,
            ip=ip,
            user_agent=user_agent,
            purpose=purpose,
            legal_basis=legal_basis,
        )
        if purpose != ConsentPurpose.MARKETING_EMAIL:
            return lead  # the lead's own consent fields are marketing e-mail's
        before = audit.snapshot(lead, ("consent_status", "consent_at", "consent_source"))
        if lead.consent_status == status:
            return lead
        lead.consent_status, lead.consent_at, lead.consent_source = status, at or now, source[:200]
        lead.save(update_fields=["consent_status", "consent_at", "consent_source", "updated_at"])
        audit.record(
            actor=actor,
            action="lead.consent",
            target=lead,
            changes=audit.diff(before, lead),
            details={"text": text} if text else None,
        )
        events.emit(events.LEAD_UPDATED, lead_ids=[lead.pk], fields=["consent_status"])
    return lead


def consent_channel(source: str, status: str, actor: Actor) -> tuple[str, str]:
    """(channel, double opt-in proof) of a consent, read from its source: nurturing names its
    unsubscribe links, complaints and confirmations `unsubscribe:message:ID`,
    `complaint:message:ID` and `double_opt_in:confirmed:message:ID`; forms `form:NAME`."""
    prefixes = (
        ("double_opt_in:confirmed:", ConsentChannel.DOUBLE_OPT_IN),
        ("unsubscribe", ConsentChannel.UNSUBSCRIBE),
        ("complaint", ConsentChannel.COMPLAINT),
        ("erasure", ConsentChannel.ERASURE),
        ("form", ConsentChannel.FORM),
        ("import", ConsentChannel.IMPORT),
    )
    for prefix, channel in prefixes:
        if source.startswith(prefix):
            proof = source.removeprefix(prefix) if channel == ConsentChannel.DOUBLE_OPT_IN else ""
            return channel, proof
    if status == ConsentStatus.PENDING:
        return ConsentChannel.DOUBLE_OPT_IN, ""
    by_actor = {"import": ConsentChannel.IMPORT, "api": ConsentChannel.API, "user": ConsentChannel.USER}
    return by_actor.get(str(actor.kind), ConsentChannel.AUTOMATION), ""


def _consent_log_append(
    *,
    lead_id: int,
    status: str,
    source: str,
    actor: Actor,
    given_at: dt.datetime,
    now: dt.datetime,
    text: str,
    ip: str | None,
    user_agent: str,
    purpose: str,
    legal_basis: str,
) -> ConsentRecord:
    channel, proof = consent_channel(source, status, actor)
    return ConsentRecord.objects.create(
        lead_id=lead_id,
        purpose=purpose,
        legal_basis=legal_basis,
        status=status,
        text=text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest() if text else "",
        source=source[:200],
        channel=channel,
        ip=ip or None,
        user_agent=(user_agent or "")[:500],
        proof_reference=proof[:200],
        proof_at=now if proof else None,
        actor_kind=str(actor.kind),
        actor_id=actor.user.pk if actor.user is not None else None,
        given_at=given_at,
        recorded_at=now,
    )


def leads_consent_record(*, items: list[tuple[int, dict]], actor: Actor) -> None:
    """The `consent` given with captures or edits (`leads.validation.clean_consent`): an
    opt-out or a plain opt-in is recorded as given; a double opt-in leaves the lead pending
    (unless it has opted in already) and asks for the confirmation e-mail, sent right after
    commit (`lead.consent_requested`)."""
    pending: dict[str, list[int]] = {}
    with transaction.atomic():
        for lead_id, consent in items:
            source = consent.get("source") or actor.kind
            if consent.get("double_opt_in"):
                lead = Lead.objects.only("consent_status").get(pk=lead_id)
                if lead.consent_status == ConsentStatus.OPT_IN:
                    continue
                lead = lead_consent_set(
                    lead_id=lead_id,
                    status=ConsentStatus.PENDING,
                    source=source,
                    actor=actor,
                    at=consent.get("at"),
                    text=consent.get("text", ""),
                    **_evidence(consent),
                )
                if lead.consent_status == ConsentStatus.PENDING:  # not refused (an erased person)
                    pending.setdefault(source, []).append(lead_id)
                continue
            lead_consent_set(
                lead_id=lead_id,
                status=consent["status"],
                source=source,
                actor=actor,
                at=consent.get("at"),
                text=consent.get("text", ""),
                **_evidence(consent),
            )
        # `requested` keys the confirmations: a re-delivered reaction sends none again.
        requested = timezone.now().isoformat()
        for source, lead_ids in pending.items():
            events.emit(events.LEAD_CONSENT_REQUESTED, lead_ids=lead_ids, source=source, requested=requested)


def _evidence(consent: dict) -> dict:
    """The consent input's optional evidence, as `lead_consent_set` takes it."""
    keys = ("ip", "user_agent", "purpose", "legal_basis")
    return {key: consent[key] for key in keys if consent.get(key)}

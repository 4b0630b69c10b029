"""Every write on leads: capture, update, import, events, lifecycle moves, BANT, owners.

One keyword-only function per business action. Each runs in a transaction, checks its own
guards, writes its audit row and emits its domain event (dispatched after commit).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import NamedTuple

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, OuterRef, Subquery
from django.db.models.base import ModelState
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from leadcrm import audit, events
from leadcrm.actors import Actor, ActorType
from leadcrm.bulk import bulk_insert, insert_select, update_rows
from leadcrm.errors import ServiceError, TransitionRefused
from leadcrm.permissions import may_own_leads
from leads import lifecycle, selectors
from leads.models import (
    CLOSED_STAGES,
    Assignment,
    Bant,
    Company,
    Lead,
    Opportunity,
    OpportunityStatus,
    ScoreChange,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
    Visitor,
)
from leads.normalize import company_domain_from_email, merge_properties

# Fields a capture or an update may write; the lifecycle and scores are not among them.
WRITABLE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "city",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
)
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# What a lead edit audits as old → new (the company link follows company_name/domain).
AUDITED_FIELDS = (*WRITABLE_FIELDS, "email", "properties", "company")


# --- capture and update -------------------------------------------------------------------


def _company_for(name: str, domain: str, data: dict) -> Company | None:
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


def _apply_fields(lead: Lead, data: dict, *, overwrite_blank: bool) -> list[str]:
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


def _capture_touchpoint(lead: Lead, data: dict, now: dt.datetime, actor: Actor) -> Touchpoint:
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
                return _record_blind_captures([(existing, data)], actor=actor)[0], False
            return _recapture(lead_id=existing.pk, data=data, actor=actor), False
        try:
            with transaction.atomic():
                return _create(email=email, data=data, actor=actor), True
        except IntegrityError:
            continue  # somebody created it between our read and our insert: update theirs
    raise ServiceError({"email": ["Could not capture this lead; please retry."]})


def _create(*, email: str, data: dict, actor: Actor) -> Lead:
    now = timezone.now()
    lead = Lead(email=email, stage=Stage.MCL, stage_changed_at=now)
    _apply_fields(lead, data, overwrite_blank=True)
    lead.company = _company_for(lead.company_name, lead.company_domain, data)
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
        changed = _apply_fields(lead, data, overwrite_blank=False)
        if {"company_name", "company_domain"} & set(changed):
            lead.company = _company_for(lead.company_name, lead.company_domain, data)
            changed.append("company")
        if changed:
            lead.save(update_fields=[*changed, "updated_at"])
            audit.record(
                actor=actor, action="lead.recapture", target=lead, changes=audit.diff(before, lead), skip_empty=True
            )
        _capture_touchpoint(lead, data, timezone.now(), actor).save()
        events.emit(events.LEAD_UPDATED, lead_ids=[lead.pk])
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead.pk])
    return lead


def _submitted(data: dict) -> dict:
    """What a caller sent, kept on the touchpoint of a capture that may not change the lead."""
    return {k: v for k, v in data.items() if (k in WRITABLE_FIELDS or k == "properties") and v not in ("", None, {})}


def _record_blind_captures(found: list[tuple[Lead, dict]], *, actor: Actor) -> list[Lead]:
    """Captures of existing leads the caller cannot see (SPEC "Roles"): the lead's fields
    stay as they are; what was sent is kept as a capture touchpoint on it and its owner is
    told. The caller learns nothing about the lead (the API answers "recorded")."""
    from accounts import services as accounts_services

    now = timezone.now()
    touchpoints = []
    for lead, data in found:
        tp = _capture_touchpoint(lead, data, now, actor)
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
        changed = _apply_fields(lead, data, overwrite_blank=True)
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
            lead.company = _company_for(lead.company_name, lead.company_domain, data)
            changed.append("company")
        if changed:
            lead.save(update_fields=[*changed, "updated_at"])
            audit.record(
                actor=actor, action="lead.update", target=lead, changes=audit.diff(before, lead), skip_empty=True
            )
            events.emit(events.LEAD_UPDATED, lead_ids=[lead.pk], fields=changed)
    return lead


# --- bulk import --------------------------------------------------------------------------


@dataclass
class BulkRowResult:
    index: int
    status: str  # created / updated / recorded (a lead the caller cannot see) / error
    id: int | None = None
    errors: dict | None = None


def leads_bulk_upsert(*, rows: list[tuple[int, dict]], actor: Actor, history: bool = False) -> list[BulkRowResult]:
    """Create or update many validated rows in a few set-based statements.

    `rows` are (index in the request, clean data). With `history` (admins migrating from
    another CRM), a row's `stage`, `owner` and `closed_at` are written as an import in the
    history, not as guarded moves. A concurrent insert of the same e-mail makes the whole
    batch retry once, now seeing that lead as existing.
    """
    for attempt in range(2):
        try:
            with transaction.atomic():
                return _bulk_upsert(rows, actor, history)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _bulk_companies(rows: list[dict]) -> dict[str, Company]:
    wanted: dict[str, dict] = {}
    for data in rows:
        domain = data.get("company_domain") or company_domain_from_email(data["email"])
        if domain and domain not in wanted:
            wanted[domain] = data
    if not wanted:
        return {}
    found = {c.domain: c for c in Company.objects.filter(domain__in=list(wanted))}
    missing = [
        Company(
            domain=d,
            name=data.get("company_name") or d,
            industry=data.get("industry") or "",
            size=data.get("company_size"),
            country=data.get("country") or "",
        )
        for d, data in wanted.items()
        if d not in found
    ]
    if missing:
        Company.objects.bulk_create(missing, ignore_conflicts=True, batch_size=2000)
        found.update({c.domain: c for c in Company.objects.filter(domain__in=[c.domain for c in missing])})
    return found


def _bulk_upsert(rows: list[tuple[int, dict]], actor: Actor, history: bool) -> list[BulkRowResult]:
    now = timezone.now()
    merged: dict[str, dict] = {}  # one write per e-mail, later rows win
    order: list[tuple[int, str]] = []
    for index, data in rows:
        email = data["email"].strip().lower()
        merged[email] = {**merged.get(email, {}), **{k: v for k, v in data.items() if v not in ("", None)}}
        merged[email]["properties"] = {
            **merged[email].get("properties", {}),
            **(data.get("properties") or {}),
        }
        order.append((index, email))

    existing = {lead.email: lead for lead in Lead.objects.filter(email__in=list(merged))}
    # Rows naming a lead the caller cannot see change nothing on it: kept as touchpoints.
    visible = selectors.lead_ids_visible_to(actor.user, [x.pk for x in existing.values()])
    blind = {e: x for e, x in existing.items() if x.pk not in visible}
    if blind:
        _record_blind_captures([(x, merged.pop(e)) for e, x in blind.items()], actor=actor)
        existing = {e: x for e, x in existing.items() if e not in blind}
    companies = _bulk_companies([{**d, "email": e} for e, d in merged.items()])
    owners = {}
    if history:
        owner_ids = {d["owner"] for d in merged.values() if d.get("owner")}
        owners = User.objects.in_bulk(owner_ids)

    to_create: list[Lead] = []
    to_update: list[Lead] = []
    update_fields: set[str] = set()
    befores: list[tuple[Lead, dict]] = []  # updated leads as read, for the audit's old -> new
    for email, data in merged.items():
        lead = existing.get(email)
        if lead is None:
            lead = _new_lead(email=email, now=now)
            _apply_fields(lead, data, overwrite_blank=True)
            to_create.append(lead)
        else:
            befores.append((lead, {f: getattr(lead, f) for f in _BULK_AUDITED}))
            update_fields.update(_apply_fields(lead, data, overwrite_blank=False))
            to_update.append(lead)
        if lead.company_domain in companies:
            if lead.company_id != companies[lead.company_domain].pk:
                lead.company_id = companies[lead.company_domain].pk
                update_fields.add("company")
    edits = [(lead, changes) for lead, before in befores if (changes := _bulk_changes(lead, before))]
    _insert_new_leads(to_create, actor=actor, now=now)
    if to_update and update_fields:
        for lead in to_update:
            lead.updated_at = now
        update_rows(to_update, model=Lead, fields=[*sorted(update_fields), "updated_at"])

    stage_changes: list[StageChange] = []
    touchpoints = [_capture_touchpoint(lead, merged[lead.email], now, actor) for lead in to_update]
    audits = [
        audit.entry(
            actor=actor, action="lead.create", target=("leads.lead", x.pk, x.email), details={"bulk": True}, at=now
        )
        for x in to_create
    ]
    audits += [
        audit.entry(actor=actor, action="lead.recapture", target=("leads.lead", x.pk, x.email), changes=c, at=now)
        for x, c in edits
    ]
    if history:
        stage_changes += _bulk_history(
            merged, {**existing, **{x.email: x for x in to_create}}, owners, actor, now, audits
        )
    bulk_insert(stage_changes, model=StageChange)
    bulk_insert(touchpoints, model=Touchpoint)
    audit.record_many(audits)  # one INSERT for the whole batch

    events.emit(events.LEAD_CREATED, lead_ids=[x.pk for x in to_create])
    events.emit(events.LEAD_UPDATED, lead_ids=[x.pk for x in to_update])
    events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[x.pk for x in to_update])

    created_ids = {x.pk for x in to_create}
    by_email = {x.email: x.pk for x in (*to_create, *to_update)}
    results, seen = [], set()
    for index, email in order:
        if email in blind:
            results.append(BulkRowResult(index=index, status="recorded"))
            continue
        pk = by_email[email]
        status = "created" if pk in created_ids and pk not in seen else "updated"
        seen.add(pk)
        results.append(BulkRowResult(index=index, status=status, id=pk))
    return results


_LEAD_DEFAULTS: dict | None = None


# What a bulk re-capture audits (the company link by id, named "company" in the entry).
_BULK_AUDITED = (*WRITABLE_FIELDS, "properties", "company_id")


def _bulk_changes(lead: Lead, before: dict) -> dict:
    return {f.removesuffix("_id"): [old, getattr(lead, f)] for f, old in before.items() if getattr(lead, f) != old}


def _new_lead(*, email: str, now: dt.datetime) -> Lead:
    """An unsaved MCL lead without Model.__init__ (a third of a 10,000-row import went
    there): every column gets its field default, the instance its fresh ModelState."""
    global _LEAD_DEFAULTS
    if _LEAD_DEFAULTS is None:
        _LEAD_DEFAULTS = {f.attname: f.get_default() for f in Lead._meta.concrete_fields}
    lead = Lead.__new__(Lead)
    lead.__dict__.update(_LEAD_DEFAULTS)
    lead._state = ModelState()
    lead.email, lead.stage, lead.stage_changed_at, lead.properties = email, Stage.MCL, now, {}
    lead.created_at = lead.updated_at = now
    return lead


def _insert_new_leads(leads: list[Lead], *, actor: Actor, now: dt.datetime) -> None:
    """Insert new leads with their first history row (∅ → MCL) and learn their ids.

    On PostgreSQL one statement does both (a CTE feeds the inserted ids to the history
    insert). A lead inserted meanwhile by another request (same e-mail) is skipped by ON
    CONFLICT; the count then falls short and IntegrityError makes the batch retry, seeing
    that lead as existing."""
    actor_id = actor.user.pk if actor.user else None
    if connection.vendor != "postgresql":
        Lead.objects.bulk_create(leads, batch_size=2000)
        StageChange.objects.bulk_create(
            [
                StageChange(
                    lead_id=lead.pk,
                    from_stage="",
                    to_stage=Stage.MCL,
                    actor_type=actor.kind,
                    actor_id=actor_id,
                    reason="Imported" + (f" from {lead.source}" if lead.source else ""),
                    created_at=now,
                )
                for lead in leads
            ],
            batch_size=2000,
        )
        return
    if not leads:
        return
    insert, params = insert_select(Lead, leads)
    sql = f"""
        WITH ins AS ({insert} ON CONFLICT (email) DO NOTHING RETURNING id, email, source),
        history AS (
            INSERT INTO leads_stagechange (lead_id, from_stage, to_stage, actor_type, actor_id, reason, created_at)
            SELECT id, '', %s, %s, %s,
                   CASE WHEN source <> '' THEN 'Imported from ' || source ELSE 'Imported' END, %s
            FROM ins
        )
        SELECT id, email FROM ins"""
    with connection.cursor() as cur:
        cur.execute(sql, [*params, Stage.MCL, actor.kind, actor_id, now])
        ids = {email: pk for pk, email in cur.fetchall()}
    if len(ids) != len(leads):
        raise IntegrityError("A lead of this batch was created concurrently.")
    for lead in leads:
        lead.pk = ids[lead.email]


def _bulk_history(
    merged: dict[str, dict],
    leads: dict[str, Lead],
    owners: dict[int, User],
    actor: Actor,
    now: dt.datetime,
    audits: list[dict],
) -> list[StageChange]:
    """Admin history import: current stage, owner and closing date as given, audited."""
    changes, assignments, touched = [], [], []
    for email, data in merged.items():
        lead = leads[email]
        stage, owner_id = data.get("stage"), data.get("owner")
        dirty = False
        if stage and stage != lead.stage:
            when = data.get("closed_at") or now
            changes.append(
                StageChange(
                    lead=lead,
                    from_stage=lead.stage,
                    to_stage=stage,
                    actor_type=ActorType.IMPORT,
                    actor=actor.user,
                    reason="History import",
                    created_at=when,
                )
            )
            audits.append(
                audit.entry(
                    actor=actor,
                    action="lead.stage",
                    target=("leads.lead", lead.pk, lead.email),
                    changes={"stage": [lead.stage, stage]},
                    details={"reason": "History import"},
                    at=now,
                )
            )
            lead.stage, lead.stage_changed_at, dirty = stage, when, True
            if stage in CLOSED_STAGES:
                lead.closed_at = data.get("closed_at") or now
        if owner_id and owner_id != lead.owner_id:
            owner = owners[owner_id]
            assignments.append(
                Assignment(
                    lead=lead,
                    from_owner_id=lead.owner_id,
                    to_owner=owner,
                    team_id=owner.team_id,
                    actor_type=ActorType.IMPORT,
                    actor=actor.user,
                    reason="History import",
                )
            )
            audits.append(
                audit.entry(
                    actor=actor,
                    action="lead.assign",
                    target=("leads.lead", lead.pk, lead.email),
                    changes={"owner": [lead.owner_id, owner], "team": [lead.team_id, owner.team_id]},
                    details={"reason": "History import"},
                    at=now,
                )
            )
            lead.owner, lead.team_id, dirty = owner, owner.team_id, True
        if dirty:
            touched.append(lead)
    if touched:
        update_rows(touched, model=Lead, fields=["stage", "stage_changed_at", "closed_at", "owner", "team"])
    bulk_insert(assignments, model=Assignment)
    return changes


# --- events and visitors ------------------------------------------------------------------


def events_record(*, items: list[dict], actor: Actor) -> list[Touchpoint]:
    """Record validated events. An event names its lead by `lead_id` or `email` (a new
    e-mail captures a new lead) or is anonymous with a `visitor_id`; an event carrying both
    a visitor and a lead identifies the visitor, whose past events then join the lead."""
    with transaction.atomic():
        wanted = {i["lead_id"] for i in items if i.get("lead_id")}
        leads_by_id = Lead.objects.in_bulk(selectors.lead_ids_visible_to(actor.user, wanted))
        if wanted - leads_by_id.keys():
            # An id the caller cannot see answers as one that does not exist.
            raise ServiceError({"lead_id": [f"Unknown lead: {sorted(wanted - leads_by_id.keys())}"]})
        emails = {i["email"].strip().lower() for i in items if i.get("email") and not i.get("lead_id")}
        leads_by_email = {x.email: x for x in Lead.objects.filter(email__in=emails)}
        for email in emails - leads_by_email.keys():
            first = next(i for i in items if (i.get("email") or "").strip().lower() == email)
            source = first.get("utm_source") or "events"
            lead, _ = lead_capture(
                data={"email": email, "source": source, **{f: first.get(f, "") for f in UTM_FIELDS}}, actor=actor
            )
            leads_by_email[email] = lead
        keys = {i["visitor_id"] for i in items if i.get("visitor_id")}
        visitors = {v.key: v for v in Visitor.objects.filter(key__in=keys)}
        for key in keys - visitors.keys():
            visitors[key], _ = Visitor.objects.get_or_create(key=key)

        touchpoints, identified = [], {}
        for item in items:
            lead = leads_by_id.get(item.get("lead_id")) or leads_by_email.get((item.get("email") or "").strip().lower())
            lead_id = lead.pk if lead is not None else None
            visitor = visitors.get(item.get("visitor_id"))
            if visitor is not None:
                if lead is not None and visitor.lead_id != lead.pk:
                    identified[visitor.key] = (visitor, lead)
                elif lead is None:
                    lead_id = visitor.lead_id  # already identified: its events go to its lead
            touchpoints.append(
                Touchpoint(
                    lead_id=lead_id,
                    visitor=visitor,
                    type=item["type"],
                    url=item.get("url") or "",
                    occurred_at=item.get("occurred_at") or timezone.now(),
                    properties=item.get("properties") or {},
                    author=None,
                    **{f: item.get(f) or "" for f in UTM_FIELDS},
                )
            )
        Touchpoint.objects.bulk_create(touchpoints, batch_size=5000)
        for visitor, lead in identified.values():
            visitor_identify(visitor=visitor, lead=lead)
        lead_ids = sorted({t.lead_id for t in touchpoints if t.lead_id})
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=lead_ids)
    return touchpoints


def visitor_identify(*, visitor: Visitor, lead: Lead) -> int:
    """Attach an anonymous visitor, and every event it had, to the lead it turned out to be.
    Returns how many past events joined the lead."""
    with transaction.atomic():
        moved = Touchpoint.objects.filter(visitor=visitor, lead__isnull=True).update(lead=lead)
        visitor.lead, visitor.identified_at = lead, timezone.now()
        visitor.save(update_fields=["lead", "identified_at"])
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead.pk])
    return moved


def lead_activity_refresh(*, lead_ids: Iterable[int]) -> int:
    """Recompute last activity and activity count from the touchpoints: idempotent, one
    statement for any number of leads."""
    ids = list(lead_ids)
    tps = Touchpoint.objects.filter(lead=OuterRef("pk")).order_by().values("lead")
    return Lead.objects.filter(pk__in=ids).update(
        last_activity_at=Subquery(tps.annotate(m=Max("occurred_at")).values("m")[:1]),
        activity_count=Coalesce(Subquery(tps.annotate(c=Count("id")).values("c")[:1]), 0),
    )


def lead_log_activity(*, lead_id: int, type: str, actor: Actor, note: str = "", occurred_at=None) -> Touchpoint:
    """A seller logs a call, meeting, e-mail or note on the lead's timeline."""
    if type not in (TouchpointType.CALL, TouchpointType.MEETING, TouchpointType.EMAIL_SENT, TouchpointType.NOTE):
        raise ServiceError({"type": [f"Cannot log an activity of type {type!r}."]})
    with transaction.atomic():
        touchpoint = Touchpoint.objects.create(
            lead_id=lead_id,
            type=type,
            occurred_at=occurred_at or timezone.now(),
            author=actor.user,
            properties={"note": note} if note else {},
        )
        events.emit(events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead_id])
    return touchpoint


# --- lifecycle ----------------------------------------------------------------------------


def _move(*, lead_id: int, to: str, actor: Actor, reason: str = "", override: bool = False, before=None) -> Lead:
    """Lock the lead, let the guards decide, apply, record. Two concurrent moves of one lead
    serialise on the row lock; the second sees the new stage and is judged on it."""
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        if before is not None:
            before(lead)
        failure = lifecycle.check_move(
            selectors.lead_move_facts(lead=lead, to=to, user=actor.user, reason=reason, override=override)
        )
        if failure is not None:
            raise TransitionRefused(failure, lead, to)
        src, now = lead.stage, timezone.now()
        note = reason or ""
        if to not in lifecycle.ALLOWED_MOVES.get(src, ()):
            rule = lifecycle.SKIP_RULES[(src, to)]
            note = f"[skip {src}→{to}: {rule}] {note}".strip()
        elif to == Stage.MQL and override and lead.score < selectors.mql_threshold():
            note = f"[manual override, score {lead.score}] {note}".strip()
        lead.stage, lead.stage_changed_at = to, now
        fields = ["stage", "stage_changed_at", "updated_at"]
        if to in CLOSED_STAGES:
            lead.closed_at = now
            fields.append("closed_at")
            _close_opportunity(lead, to, reason, now)
        lead.save(update_fields=fields)
        StageChange.objects.create(
            lead=lead, from_stage=src, to_stage=to, actor_type=actor.kind, actor=actor.user, reason=note, created_at=now
        )
        audit.record(
            actor=actor, action="lead.stage", target=lead, changes={"stage": [src, to]}, details={"reason": note}
        )
        events.emit(events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk], from_stage=src, to_stage=to)
    return lead


def _close_opportunity(lead: Lead, to: str, reason: str, now: dt.datetime) -> None:
    status = OpportunityStatus.WON if to == Stage.WO else OpportunityStatus.LOST
    Opportunity.objects.filter(lead=lead, status=OpportunityStatus.OPEN).update(
        status=status, closed_at=now, lost_reason="" if status == OpportunityStatus.WON else reason, updated_at=now
    )


def lead_promote(*, lead_id: int, actor: Actor, reason: str = "", override: bool = False) -> Lead:
    """MCL/RECYCLED → MQL: the score crossed the threshold, or a person overrides with a reason."""
    return _move(lead_id=lead_id, to=Stage.MQL, actor=actor, reason=reason, override=override)


def lead_qualify(*, lead_id: int, actor: Actor, reason: str = "") -> Lead:
    """→ SQL once BANT is documented (from MQL, or straight from MCL on a demo request)."""
    return _move(lead_id=lead_id, to=Stage.SQL, actor=actor, reason=reason)


def lead_accept(*, lead_id: int, actor: Actor, reason: str = "") -> Lead:
    """SQL → SAL: the owner accepts the lead as a real project."""
    return _move(lead_id=lead_id, to=Stage.SAL, actor=actor, reason=reason)


def lead_create_opportunity(
    *, lead_id: int, actor: Actor, amount: Decimal, currency: str, expected_close: dt.date, reason: str = ""
) -> Lead:
    """SAL → CO: the offer is issued. The opportunity and the move stand or fall together."""

    def write_offer(lead: Lead) -> None:
        Opportunity.objects.update_or_create(
            lead=lead,
            defaults={
                "amount": amount,
                "currency": currency.upper(),
                "expected_close": expected_close,
                "status": OpportunityStatus.OPEN,
                "lost_reason": "",
                "closed_at": None,
            },
            create_defaults={
                "amount": amount,
                "currency": currency.upper(),
                "expected_close": expected_close,
                "created_by": actor.user,
            },
        )

    return _move(lead_id=lead_id, to=Stage.CO, actor=actor, reason=reason, before=write_offer)


def lead_win(*, lead_id: int, actor: Actor, reason: str = "") -> Lead:
    return _move(lead_id=lead_id, to=Stage.WO, actor=actor, reason=reason)


def lead_lose(*, lead_id: int, actor: Actor, reason: str) -> Lead:
    return _move(lead_id=lead_id, to=Stage.LOST, actor=actor, reason=reason)


def lead_disqualify(*, lead_id: int, actor: Actor, reason: str) -> Lead:
    return _move(lead_id=lead_id, to=Stage.DISQUALIFIED, actor=actor, reason=reason)


def lead_recycle(*, lead_id: int, actor: Actor, reason: str = "") -> Lead:
    """SQL/SAL rejected by sales → back to nurturing."""
    return _move(lead_id=lead_id, to=Stage.RECYCLED, actor=actor, reason=reason)


def lead_transition(*, lead_id: int, to: str, actor: Actor, reason: str = "", override: bool = False) -> Lead:
    """The generic move of the API's transition endpoint, dispatched to the named action."""
    if to == Stage.MQL:
        return lead_promote(lead_id=lead_id, actor=actor, reason=reason, override=override)
    actions = {
        Stage.SQL: lead_qualify,
        Stage.SAL: lead_accept,
        Stage.WO: lead_win,
        Stage.LOST: lead_lose,
        Stage.DISQUALIFIED: lead_disqualify,
        Stage.RECYCLED: lead_recycle,
    }
    if to in actions:
        return actions[to](lead_id=lead_id, actor=actor, reason=reason)
    # CO via the generic endpoint needs the opportunity to exist already.
    return _move(lead_id=lead_id, to=to, actor=actor, reason=reason)


def lead_bant_set(*, lead_id: int, actor: Actor, **fields: str) -> Bant:
    """Record the BANT qualification (budget, authority, need, timeline, notes)."""
    allowed = {"budget", "authority", "need", "timeline", "notes"}
    unknown = set(fields) - allowed
    if unknown:
        raise ServiceError({f: ["Unknown BANT field."] for f in unknown})
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        old = Bant.objects.filter(lead_id=lead_id).first()
        before = audit.snapshot(old, fields) if old else dict.fromkeys(fields, "")
        bant, _ = Bant.objects.update_or_create(lead_id=lead_id, defaults={**fields, "updated_by": actor.user})
        audit.record(actor=actor, action="lead.bant", target=lead, changes=audit.diff(before, bant), skip_empty=True)
        events.emit(events.LEAD_UPDATED, lead_ids=[lead_id], fields=["bant"])
    return bant


# --- ownership ----------------------------------------------------------------------------


def lead_assign(
    *,
    lead_id: int,
    owner: User | None,
    actor: Actor,
    reason: str = "",
    details: dict | None = None,
    team_id: int | None = None,
) -> Lead:
    """Give the lead to a seller (or, with no owner, to a team's pool). Audited and announced
    as `lead.assigned`."""
    if owner is not None and not may_own_leads(owner):
        raise ServiceError({"owner": ["Leads can only be assigned to active sellers or managers."]})
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        previous, previous_team = lead.owner_id, lead.team_id
        team = owner.team_id if owner is not None else team_id if team_id is not None else lead.team_id
        if previous == (owner.pk if owner else None) and team == lead.team_id:
            return lead
        lead.owner, lead.team_id = owner, team
        lead.save(update_fields=["owner", "team", "updated_at"])
        Assignment.objects.create(
            lead=lead,
            from_owner_id=previous,
            to_owner=owner,
            team_id=team,
            actor_type=actor.kind,
            actor=actor.user,
            reason=reason,
            details=details or {},
        )
        audit.record(
            actor=actor,
            action="lead.assign",
            target=lead,
            changes=audit.diff({"owner": previous, "team": previous_team}, {"owner": owner, "team": team}),
            details={"reason": reason},
        )
        events.emit(events.LEAD_ASSIGNED, lead_ids=[lead.pk], owner_id=owner.pk if owner else None)
    return lead


# --- scores (computed by the scoring app, written here with the lead's audit trail) ------

# A single promotion goes through `lead_promote`; more (a batch of events, a rule set
# activation over every lead) are judged by the same guard and written set-based, with one
# `lead.stage_changed` per source stage, so reactions (routing) get one batch, not N tasks.
PROMOTE_ONE_BY_ONE = 1


class ScoreUpdate(NamedTuple):
    """A lead's freshly computed score and the rules that fired. `expected` is what the
    caller read before scoring (stage, score, fit, engagement, grade, probability): when
    given, the write is a compare-and-set on those values (no lock round trip), and a lead
    changed meanwhile is compared again under its row lock. A tuple: a full rescore makes a
    million of them."""

    lead_id: int
    score: int
    fit_score: int
    engagement_score: int
    grade: str
    reasons: tuple | list | str = ()  # [{rule, name, kind, points}], or that list as JSON text
    conversion_probability: float | None = None
    expected: tuple | None = None

    def reasons_list(self) -> list:
        return json.loads(self.reasons) if isinstance(self.reasons, str) else list(self.reasons)

    def reasons_json(self) -> str:
        return self.reasons if isinstance(self.reasons, str) else json.dumps(list(self.reasons))


@dataclass(frozen=True)
class ScoresSetResult:
    changed: list[int]
    promoted: list[int]


def lead_scores_set(
    *,
    updates: list[ScoreUpdate],
    actor: Actor,
    mql_threshold: int | None = None,
    with_probability: bool = False,
) -> ScoresSetResult:
    """Write many leads' scores: only leads whose score, fit, engagement or grade changed get
    a write and a `ScoreChange` row (and `conversion_probability` when `with_probability`).
    A lead whose score crosses the MQL threshold upwards while MCL or RECYCLED is promoted to
    MQL by `actor` (automation). Each lead is compared with its current row under that row's
    lock, so two concurrent rescores of one lead write one change and promote it once.

    Score writes are not in the audit log (ScoreChange is their history, and a full rescore
    writes a million); the promotions they cause are."""
    if not updates:
        return ScoresSetResult([], [])
    threshold = selectors.mql_threshold() if mql_threshold is None else mql_threshold
    now = timezone.now()
    with transaction.atomic():
        optimistic = [u for u in updates if u.expected is not None]
        rest = [u for u in updates if u.expected is None]
        changed, crossed = [], []
        if optimistic and connection.vendor == "postgresql":
            changed, crossed, conflicted = _scores_compare_and_set(optimistic, threshold, with_probability, now)
            rest += conflicted
        else:
            rest += optimistic
        if rest:
            locked_changed, locked_crossed = _scores_set_locked(rest, threshold, with_probability, now)
            changed += locked_changed
            crossed += locked_crossed
        if changed:
            events.emit(events.LEAD_SCORE_CHANGED, lead_ids=changed)
        promoted = _promote_crossed(crossed, threshold=threshold, actor=actor, now=now)
    return ScoresSetResult(changed, promoted)


def _crosses(stage: str, old: int, new: int, threshold: int) -> bool:
    return stage in (Stage.MCL, Stage.RECYCLED) and old < threshold <= new


def _scores_set_locked(
    updates: list[ScoreUpdate], threshold: int, with_probability: bool, now: dt.datetime
) -> tuple[list[int], list[tuple]]:
    """Lock the leads (in id order), compare under the lock, write what differs."""
    by_id = {u.lead_id: u for u in updates}
    rows = (
        Lead.objects.select_for_update()
        .filter(pk__in=list(by_id))
        .order_by("pk")
        .values_list("pk", "stage", "score", "fit_score", "engagement_score", "grade", "conversion_probability")
    )
    writes, history, changed, crossed = [], [], [], []
    for pk, stage, score, fit, engagement, grade, probability in rows:
        u = by_id[pk]
        score_changed = (score, fit, engagement, grade) != (u.score, u.fit_score, u.engagement_score, u.grade)
        probability_changed = with_probability and (
            (probability is None) != (u.conversion_probability is None)
            or (probability is not None and abs(probability - u.conversion_probability) > 1e-4)
        )
        if not (score_changed or probability_changed):
            continue
        writes.append(
            {
                "id": pk,
                "score": u.score,
                "fit_score": u.fit_score,
                "engagement_score": u.engagement_score,
                "grade": u.grade,
                "conversion_probability": u.conversion_probability if with_probability else probability,
                "updated_at": now,
            }
        )
        if score_changed:
            changed.append(pk)
            history.append(
                {
                    "lead_id": pk,
                    "old_score": score,
                    "new_score": u.score,
                    "fit_score": u.fit_score,
                    "engagement_score": u.engagement_score,
                    "grade": u.grade,
                    "reasons": u.reasons_list(),
                    "created_at": now,
                }
            )
            if _crosses(stage, score, u.score, threshold):
                crossed.append((pk, stage, score, u.score))
    fields = ["score", "fit_score", "engagement_score", "grade", "conversion_probability", "updated_at"]
    update_rows(writes, model=Lead, fields=fields)
    bulk_insert(history, model=ScoreChange)
    return changed, crossed


# One statement per batch on PostgreSQL: the leads still as their caller read them are
# updated (the UPDATE takes their row locks; a lead changed since the read fails the
# comparison and is returned to the locked path), and their ScoreChange rows inserted from
# what the UPDATE returned. Values travel as array literals (joined in C, parsed by
# PostgreSQL's array input) and the reasons as one JSON document: no per-row SQL.
_COMPARE_AND_SET = """
WITH u AS (
    SELECT * FROM ROWS FROM (
        unnest(%s::bigint[]), unnest(%s::varchar[]), unnest(%s::smallint[]), unnest(%s::smallint[]),
        unnest(%s::smallint[]), unnest(%s::varchar[]), unnest(%s::float8[]),
        unnest(%s::smallint[]), unnest(%s::smallint[]), unnest(%s::smallint[]), unnest(%s::varchar[]),
        unnest(%s::float8[]), jsonb_array_elements(%s::jsonb)
    ) AS u(
        id, old_stage, old_score, old_fit, old_engagement, old_grade, old_probability,
        score, fit_score, engagement_score, grade, probability, reasons
    )
), written AS (
    UPDATE leads_lead AS l
    SET score = u.score, fit_score = u.fit_score, engagement_score = u.engagement_score, grade = u.grade,
        conversion_probability = u.probability, updated_at = %s
    FROM u
    WHERE l.id = u.id AND l.stage = u.old_stage AND l.score = u.old_score AND l.fit_score = u.old_fit
        AND l.engagement_score = u.old_engagement AND l.grade = u.old_grade
        AND l.conversion_probability IS NOT DISTINCT FROM u.old_probability
    RETURNING u.*, (u.old_score, u.old_fit, u.old_engagement, u.old_grade)
        IS DISTINCT FROM (u.score, u.fit_score, u.engagement_score, u.grade) AS scored
), history AS (
    INSERT INTO leads_scorechange
        (lead_id, old_score, new_score, fit_score, engagement_score, grade, reasons, created_at)
    SELECT id, old_score, score, fit_score, engagement_score, grade, reasons, %s
    FROM written
    WHERE scored
)
SELECT id, old_stage, old_score, score, scored FROM written
"""


def _int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


def _float_array(values: Iterable) -> str:
    """A PostgreSQL array literal of floats (None → NULL); repr keeps every digit."""
    return "{" + ",".join(["NULL" if v is None else repr(float(v)) for v in values]) + "}"


def _text_array(values: Iterable[str]) -> str:
    """A PostgreSQL array literal of strings (stage and grade codes): each element quoted,
    its backslashes and quotes escaped."""
    return "{" + ",".join(['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]) + "}"


def _scores_compare_and_set(
    updates: list[ScoreUpdate], threshold: int, with_probability: bool, now: dt.datetime
) -> tuple[list[int], list[tuple], list[ScoreUpdate]]:
    """The optimistic write of `updates` (each with `expected`): the changed ids, the
    crossings of the threshold, and the updates whose lead changed since it was read."""
    # In id order, as the locked path locks: the UPDATE's nested loop takes the row locks in
    # this order, so the two paths cannot deadlock each other.
    updates = sorted({u.lead_id: u for u in updates}.values(), key=attrgetter("lead_id"))
    stage, score, fit, engagement, grade, probability = zip(*(u.expected for u in updates), strict=True)
    old_probability = _float_array(probability)
    params = [
        _int_array(u.lead_id for u in updates),
        _text_array(stage),
        _int_array(score),
        _int_array(fit),
        _int_array(engagement),
        _text_array(grade),
        old_probability,
        _int_array(u.score for u in updates),
        _int_array(u.fit_score for u in updates),
        _int_array(u.engagement_score for u in updates),
        _text_array(u.grade for u in updates),
        _float_array(u.conversion_probability for u in updates) if with_probability else old_probability,
        f"[{', '.join([u.reasons_json() for u in updates])}]",
        now,
        now,
    ]
    with connection.cursor() as cur:
        # Compiling this one-shot statement costs more than it saves (for the rest of this
        # transaction: a rescore chunk's, or a request's that JIT would not help either).
        cur.execute("SET LOCAL jit = off")
        cur.execute(_COMPARE_AND_SET, params)
        returned = cur.fetchall()
    written = {r[0] for r in returned}
    changed = [r[0] for r in returned if r[4]]
    crossed = [
        (pk, stage, old, new)
        for pk, stage, old, new, scored in returned
        if scored and _crosses(stage, old, new, threshold)
    ]
    return changed, crossed, [u for u in updates if u.lead_id not in written]


def _promote_reason(old: int, new: int, threshold: int) -> str:
    return f"Score {old} → {new} crossed the MQL threshold {threshold}"


def _promote_crossed(crossed: list[tuple], *, threshold: int, actor: Actor, now: dt.datetime) -> list[int]:
    """MCL/RECYCLED → MQL for leads whose score crossed the threshold (rows locked by the
    caller). One goes through `lead_promote`; more are judged by the same lifecycle guard
    and written set-based."""
    if len(crossed) <= PROMOTE_ONE_BY_ONE:
        promoted = []
        for pk, _stage, old, new in crossed:
            try:
                lead_promote(lead_id=pk, actor=actor, reason=_promote_reason(old, new, threshold))
            except TransitionRefused:
                continue  # moved meanwhile: the guard judged the new stage
            promoted.append(pk)
        return promoted
    moves, changes, by_stage = [], [], {}
    for pk, stage, old, new in crossed:
        facts = lifecycle.MoveFacts(from_stage=stage, to_stage=Stage.MQL, score=new, mql_threshold=threshold)
        if lifecycle.check_move(facts) is not None:
            continue
        moves.append({"id": pk, "stage": Stage.MQL, "stage_changed_at": now, "updated_at": now})
        changes.append(
            {
                "lead_id": pk,
                "from_stage": stage,
                "to_stage": Stage.MQL,
                "actor_type": actor.kind,
                "actor_id": actor.user.pk if actor.user else None,
                "reason": _promote_reason(old, new, threshold),
                "created_at": now,
            }
        )
        by_stage.setdefault(stage, []).append(pk)
    fields = ["stage", "stage_changed_at", "updated_at"]
    update_rows(moves, model=Lead, fields=fields)
    bulk_insert(changes, model=StageChange)
    audit.record_many(
        audit.entry(
            actor=actor,
            action="lead.stage",
            target=("leads.lead", c["lead_id"], ""),
            changes={"stage": [c["from_stage"], Stage.MQL]},
            details={"reason": c["reason"]},
            at=now,
        )
        for c in changes
    )
    for stage, ids in by_stage.items():
        events.emit(events.LEAD_STAGE_CHANGED, lead_ids=ids, from_stage=stage, to_stage=Stage.MQL)
    return [m["id"] for m in moves]


# --- users' saved list filters ------------------------------------------------------------


def saved_filter_save(*, user: User, page: str, name: str, query: str):
    """Save (or overwrite) a named filter of a list page for this user."""
    from leads.models import SavedFilter

    name = name.strip()[:100]
    if not name:
        raise ServiceError({"name": ["Give the filter a name."]})
    saved, _ = SavedFilter.objects.update_or_create(
        user=user, page=page, name=name, defaults={"query": query.lstrip("?")[:1000]}
    )
    return saved


def saved_filter_delete(*, user: User, filter_id: int) -> None:
    from leads.models import SavedFilter

    SavedFilter.objects.filter(user=user, pk=filter_id).delete()

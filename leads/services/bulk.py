"""Bulk upsert: many validated rows (the bulk API, CSV imports) in a few set-based statements.

The same rules as a single capture (`capture.py`: fields, blanks, blind captures), written
for thousands of rows at once; an admin's history import also sets stage, owner and dates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models.base import ModelState
from django.utils import timezone

from accounts.models import User
from leadcrm import audit, events
from leadcrm.actors import Actor, ActorType
from leadcrm.bulk import bulk_insert, insert_select, update_rows
from leadcrm.permissions import may_own_leads
from leads import selectors
from leads.models import (
    CLOSED_STAGES,
    Assignment,
    Company,
    Lead,
    Stage,
    StageChange,
    Touchpoint,
)
from leads.normalize import company_domain_from_email
from leads.services.capture import (
    WRITABLE_FIELDS,
    apply_fields,
    capture_touchpoint,
    leads_consent_record,
    record_blind_captures,
)
from leads.validation import clean_lead_row


@dataclass
class BulkRowResult:
    index: int
    status: str  # created / updated / recorded (a lead the caller cannot see) / error
    id: int | None = None
    errors: dict | None = None


def leads_bulk_capture(*, rows: list[object], actor: Actor, history: bool = False) -> list[BulkRowResult]:
    """The bulk API's rows as sent: each checked by the one row rule (`clean_lead_row`) and
    its owner by the one ownership rule (`may_own_leads`); the good rows written, the bad
    ones answered with their field errors, one result per row in order."""
    good, errors = [], {}
    for index, row in enumerate(rows):
        clean, row_errors = clean_lead_row(row, history=history)
        if row_errors:
            errors[index] = row_errors
        else:
            good.append((index, clean))
    owner_ids = {clean["owner"] for _, clean in good if clean.get("owner")}
    owners = User.objects.in_bulk(owner_ids)
    for index, clean in good:
        owner_id = clean.get("owner")
        if owner_id and not may_own_leads(owners.get(owner_id)):
            errors[index] = {"owner": ["Unknown or inactive user, or one who may not own leads."]}
    good = [(index, clean) for index, clean in good if index not in errors]
    consents = {index: clean.pop("consent") for index, clean in good if clean.get("consent")}
    with transaction.atomic():
        results = leads_bulk_upsert(rows=good, actor=actor, history=history) if good else []
        given = [(r.id, consents[r.index]) for r in results if r.index in consents and r.status != "recorded"]
        if given:  # never for a lead the caller cannot see ("recorded")
            leads_consent_record(items=given, actor=actor)
    by_index = {r.index: r for r in results}
    by_index.update({i: BulkRowResult(i, "error", None, e) for i, e in errors.items()})
    return [by_index[i] for i in range(len(rows))]


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
        record_blind_captures([(x, merged.pop(e)) for e, x in blind.items()], actor=actor)
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
            apply_fields(lead, data, overwrite_blank=True)
            to_create.append(lead)
        else:
            befores.append((lead, {f: getattr(lead, f) for f in _BULK_AUDITED}))
            update_fields.update(apply_fields(lead, data, overwrite_blank=False))
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
    touchpoints = [capture_touchpoint(lead, merged[lead.email], now, actor) for lead in to_update]
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

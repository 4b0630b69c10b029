"""Stage moves of one lead (promote, qualify, accept, offer, win, lose, disqualify, recycle)
and its BANT qualification.

Which moves are allowed, and on what facts, is decided by the pure engine `leads.lifecycle`;
this module locks the lead, asks it, and writes the move with its history, audit and event.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError, TransitionRefused
from leads import lifecycle, selectors
from leads.models import (
    BANT_FIELDS,
    CLOSED_STAGES,
    Bant,
    Lead,
    Opportunity,
    OpportunityStatus,
    Stage,
    StageChange,
)


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
    unknown = set(fields) - set(BANT_FIELDS)
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

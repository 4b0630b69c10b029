"""Scores written on leads: the scoring app computes them, this module writes them with
their history (ScoreChange) and promotes the leads whose score crossed the MQL threshold.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.bulk import bulk_insert, update_rows
from leadcrm.errors import TransitionRefused
from leads import lifecycle, selectors
from leads.models import (
    Lead,
    ScoreChange,
    Stage,
    StageChange,
)
from leads.services.lifecycle import lead_promote

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

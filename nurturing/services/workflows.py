"""Workflows: if/then automation on the domain events and on time.

A domain event (leadcrm.events, a reaction through the outbox) calls `workflows_run`: each
active workflow whose trigger matches finds the event's occurrences in the database (the
stage change, the score change, the touchpoint, the segment change, the message: each a
row with an id), so a run's key is the occurrence's and a re-delivered or coalesced
event runs each occurrence once. Conditions are judged on `selectors.lead_facts` (read
once for all leads of the event), the actions run through `nurturing.actions`, and every
run is a `WorkflowRun`: its trigger, the conditions' answer, each action's outcome.

The run rows are inserted before the actions, in the actions' transaction: a second worker
running the same occurrence at the same time waits on the unique key and then fails as a
whole (nothing it did stays), and the next delivery finds the run and skips it.

Loops are stopped: a workflow whose actions trigger it again (or two that trigger each
other) runs at most LOOP_MAX_RUNS times for one lead within LOOP_WINDOW (and a lead at
most LOOP_MAX_LEAD_RUNS runs of any workflow); past that the run is recorded as "loop" and
runs no action. `depth` is how many runs of the workflow for the lead came before in the
window.

Timed triggers (`inactive_days`, `date_property`) are found by `workflows_timed_run`, the
beat task's service, set-based, once per lead per inactivity period or per date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping

from django.db import IntegrityError, transaction
from django.db.models import CharField, Count, DateTimeField, Exists, OuterRef, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat, Left
from django.utils import timezone

from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads.models import Lead, ScoreChange, StageChange, Touchpoint
from nurturing import actions as workflow_actions
from nurturing import selectors
from nurturing import workflow_rules as rules
from nurturing.conditions import condition_holds
from nurturing.models import Message, Segment, SegmentChange, Workflow, WorkflowRun, WorkflowRunResult

logger = logging.getLogger(__name__)

FIELDS = ("name", "active", "trigger", "conditions", "actions")
# How far back an event's occurrences are looked for (the outbox relays in seconds; a
# delivery later than this finds nothing, and a workflow never fires on what happened
# before it was created).
LOOKBACK = dt.timedelta(days=1)
LOOP_WINDOW = dt.timedelta(hours=1)
LOOP_MAX_RUNS = 5
LOOP_MAX_LEAD_RUNS = 25
TIMED_BATCH = 1000
TIMED_MAX_BATCHES = 100
DATE_CATCH_UP_DAYS = 2  # a date trigger missed by a stopped beat still runs this many days late


# --- writes --------------------------------------------------------------------------------


def _segment_ids() -> set[int]:
    return set(Segment.objects.values_list("pk", flat=True))


def workflow_create(
    *,
    actor: Actor,
    name: str,
    trigger: dict,
    actions: list,
    conditions: dict | None = None,
    active: bool = True,
) -> Workflow:
    clean, errors = rules.workflow_errors(
        name=name,
        trigger=trigger,
        conditions=conditions or {},
        actions=actions,
        active=active,
        segment_ids=_segment_ids(),
    )
    if "name" in clean and Workflow.objects.filter(name=clean["name"]).exists():
        errors["name"] = ["A workflow with this name exists."]
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        workflow = Workflow.objects.create(created_by=actor.user, **clean)
        audit.record(
            actor=actor, action="nurturing.workflow.create", target=workflow, changes=audit.created(workflow, FIELDS)
        )
    return workflow


def workflow_update(*, actor: Actor, workflow_id: int, **fields: object) -> Workflow:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ServiceError({k: ["Unknown field."] for k in sorted(unknown)})
    given = {k: v for k, v in fields.items()}
    if "conditions" in given and given["conditions"] is None:
        given["conditions"] = {}
    clean, errors = rules.workflow_errors(**given, segment_ids=_segment_ids(), partial=True)
    for key in FIELDS:  # a field given as null is an error, not "unchanged"
        if key in fields and fields[key] is None and key != "conditions":
            errors.setdefault(key, ["This field may not be null."])
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(pk=workflow_id).first()
        if workflow is None:
            raise ServiceError({"workflow": ["Unknown workflow."]})
        if "name" in clean and Workflow.objects.filter(name=clean["name"]).exclude(pk=workflow_id).exists():
            errors["name"] = ["A workflow with this name exists."]
        if errors:
            raise ServiceError(errors)
        before = audit.snapshot(workflow, FIELDS)
        for key, value in clean.items():
            setattr(workflow, key, value)
        changes = audit.diff(before, workflow)
        if changes:
            workflow.save(update_fields=[*clean, "updated_at"])
            audit.record(actor=actor, action="nurturing.workflow.update", target=workflow, changes=changes)
    return workflow


def workflow_delete(*, actor: Actor, workflow_id: int) -> None:
    """Delete a workflow and its runs; its last values stay in the audit log."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(pk=workflow_id).first()
        if workflow is None:
            raise ServiceError({"workflow": ["Unknown workflow."]})
        audit.record(
            actor=actor, action="nurturing.workflow.delete", target=workflow, changes=audit.deleted(workflow, FIELDS)
        )
        workflow.delete()


# --- triggers: what happened, one row each -------------------------------------------------

Occurrence = tuple[int, str, dict]  # (lead id, key of what happened, what the trace shows)


def _occurrences(
    workflow: Workflow, event: str, lead_ids: list[int], payload: Mapping, now: dt.datetime
) -> list[Occurrence]:
    """The rows of this event that fire the workflow's trigger, for these leads."""
    trigger = workflow.trigger
    since = max(now - LOOKBACK, workflow.created_at)
    if event == rules.LEAD_CREATED:
        created = Lead.objects.filter(pk__in=lead_ids, created_at__gte=since).values_list("pk", flat=True)
        return [(pk, f"created:{pk}", {}) for pk in created]
    if event == rules.STAGE_CHANGED:
        qs = StageChange.objects.filter(lead_id__in=lead_ids, created_at__gte=since)
        if "to" in trigger:
            qs = qs.filter(to_stage=trigger["to"])
        if "from" in trigger:
            qs = qs.filter(from_stage=trigger["from"])
        rows = qs.order_by("pk").values_list("pk", "lead_id", "from_stage", "to_stage")
        return [(lead, f"stage:{pk}", {"from": src, "to": to}) for pk, lead, src, to in rows]
    if event == rules.SCORE_CHANGED:
        value = trigger["crosses"]
        qs = ScoreChange.objects.filter(lead_id__in=lead_ids, created_at__gte=since)
        if trigger.get("direction", "up") == "down":
            qs = qs.filter(old_score__gte=value, new_score__lt=value)
        else:
            qs = qs.filter(old_score__lt=value, new_score__gte=value)
        rows = qs.order_by("pk").values_list("pk", "lead_id", "old_score", "new_score")
        return [(lead, f"score:{pk}", {"old": old, "new": new}) for pk, lead, old, new in rows]
    if event == rules.ACTIVITY_RECORDED:
        qs = Touchpoint.objects.filter(lead_id__in=lead_ids, created_at__gte=since)
        if "type" in trigger:
            qs = qs.filter(type=trigger["type"])
        rows = qs.order_by("pk").values_list("pk", "lead_id", "type")
        return [(lead, f"touch:{pk}", {"touchpoint": pk, "type": kind}) for pk, lead, kind in rows]
    if event in (rules.SEGMENT_ENTERED, rules.SEGMENT_LEFT):
        segment = trigger.get("segment_entered") or trigger.get("segment_left")
        kind = "entered" if event == rules.SEGMENT_ENTERED else "left"
        rows = (
            SegmentChange.objects.filter(segment_id=segment, lead_id__in=lead_ids, kind=kind, at__gte=since)
            .order_by("pk")
            .values_list("pk", "lead_id")
        )
        return [(lead, f"segment:{pk}", {"segment": segment}) for pk, lead in rows]
    if event in rules.EMAIL_EVENTS:
        ids = [i for i in payload.get("message_ids") or () if isinstance(i, int)]
        qs = Message.objects.filter(pk__in=ids, lead_id__in=lead_ids)
        if "template" in trigger:
            qs = qs.filter(template_id=trigger["template"])
        rows = qs.order_by("pk").values_list("pk", "lead_id")
        return [(lead, f"{event}:{pk}", {"message": pk}) for pk, lead in rows]
    return []


def workflows_run(
    *, event: str, lead_ids: Iterable[int], payload: Mapping | None = None, now: dt.datetime | None = None
) -> dict[str, int]:
    """A domain event about these leads: run each active workflow it triggers (counts of
    runs by result)."""
    now = now or timezone.now()
    payload = payload or {}
    ids = sorted({int(i) for i in lead_ids})
    counts = dict.fromkeys(WorkflowRunResult.values, 0)
    if not ids or event not in rules.EVENTS:
        return counts
    workflows = [
        w
        for w in Workflow.objects.filter(active=True).order_by("pk")
        if rules.trigger_matches(w.trigger, event=event, payload=payload)
    ]
    found = [(w, _occurrences(w, event, ids, payload, now)) for w in workflows]
    found = [(w, occ) for w, occ in found if occ]
    if not found:
        return counts
    facts = selectors.lead_facts({lead for _, occ in found for lead, _, _ in occ})
    for workflow, occurrences in found:
        for result, n in _run(workflow, event, occurrences, facts, now).items():
            counts[result] += n
    return counts


# --- running -------------------------------------------------------------------------------


def _rounds(occurrences: list[Occurrence]) -> list[list[Occurrence]]:
    """Batches in which each lead appears once (two form submits of one lead: two runs)."""
    rounds: list[list[Occurrence]] = []
    seen: list[set[int]] = []
    for occ in occurrences:
        for batch, leads in zip(rounds, seen, strict=True):
            if occ[0] not in leads:
                batch.append(occ)
                leads.add(occ[0])
                break
        else:
            rounds.append([occ])
            seen.append({occ[0]})
    return rounds


def _run(workflow: Workflow, event: str, occurrences: list[Occurrence], facts: dict, now: dt.datetime) -> dict:
    counts = dict.fromkeys(WorkflowRunResult.values, 0)
    keys = {occ[1]: f"wf:{workflow.pk}:{occ[1]}"[:200] for occ in occurrences}
    done = set(WorkflowRun.objects.filter(key__in=keys.values()).values_list("key", flat=True))
    todo = [occ for occ in occurrences if keys[occ[1]] not in done and occ[0] in facts]
    for batch in _rounds(todo):
        try:
            with transaction.atomic():
                for run in _run_batch(workflow, event, batch, keys, facts, now):
                    counts[run.result] += 1
        except IntegrityError as exc:
            if WorkflowRun.objects.filter(key__in=[keys[occ[1]] for occ in batch]).exists():
                # Another worker ran these occurrences at the same time: its runs stand.
                logger.info("workflow %s: runs of %d occurrences already taken", workflow.pk, len(batch))
                continue
            logger.exception("workflow %s failed", workflow.pk)
            counts[WorkflowRunResult.FAILED] += _record_failed(workflow, event, batch, keys, now, exc)
        except Exception as exc:  # an action failed unexpectedly: recorded, visible, not retried
            logger.exception("workflow %s failed", workflow.pk)
            counts[WorkflowRunResult.FAILED] += _record_failed(workflow, event, batch, keys, now, exc)
    return counts


def _prior_runs(workflow: Workflow, lead_ids: list[int], now: dt.datetime) -> tuple[dict[int, int], dict[int, int]]:
    """Runs in the loop window: of this workflow per lead, of any workflow per lead."""
    recent = WorkflowRun.objects.filter(lead_id__in=lead_ids, at__gte=now - LOOP_WINDOW).exclude(
        result=WorkflowRunResult.LOOP
    )
    mine = dict(recent.filter(workflow=workflow).values_list("lead_id").annotate(n=Count("pk")).order_by())
    every = dict(recent.values_list("lead_id").annotate(n=Count("pk")).order_by())
    return mine, every


def _run_batch(
    workflow: Workflow, event: str, batch: list[Occurrence], keys: dict, facts: dict, now: dt.datetime
) -> list[WorkflowRun]:
    lead_ids = [lead for lead, _, _ in batch]
    mine, every = _prior_runs(workflow, lead_ids, now)
    runs = []
    for lead, occ_key, detail in batch:
        trigger = {"event": event, **detail}
        trace: list[dict] = [{"step": "trigger", **trigger}]
        if mine.get(lead, 0) >= LOOP_MAX_RUNS or every.get(lead, 0) >= LOOP_MAX_LEAD_RUNS:
            result = WorkflowRunResult.LOOP
            trace.append({"step": "loop", "runs_in_window": mine.get(lead, 0), "lead_runs": every.get(lead, 0)})
        else:
            holds = condition_holds(workflow.conditions or {}, facts[lead])
            trace.append({"step": "conditions", "holds": holds})
            result = WorkflowRunResult.DONE if holds else WorkflowRunResult.SKIPPED
        runs.append(
            WorkflowRun(
                workflow=workflow,
                lead_id=lead,
                key=keys[occ_key],
                trigger=trigger,
                result=result,
                trace=trace,
                depth=min(mine.get(lead, 0), 32767),
                at=now,
            )
        )
    WorkflowRun.objects.bulk_create(runs)  # the unique keys: a concurrent twin fails here
    acting = {r.lead_id: r for r in runs if r.result == WorkflowRunResult.DONE}
    if acting:
        first = min(r.pk for r in runs)
        for n, action in enumerate(workflow.actions):
            outcomes = workflow_actions.actions_run(
                actor=Actor.automation(),
                action=action,
                lead_ids=list(acting),
                key=f"wf:{workflow.pk}:b{first}:a{n}",
                now=now,
                context={"source": f"workflow:{workflow.pk}"},
            )
            for lead, run in acting.items():
                run.trace.append({"step": "action", "index": n, "type": action.get("type"), "outcome": outcomes[lead]})
        WorkflowRun.objects.bulk_update(list(acting.values()), ["trace"])
    return runs


def _record_failed(workflow, event, batch, keys, now, exc: Exception) -> int:
    error = f"{type(exc).__name__}: {exc}"[:500]
    runs = [
        WorkflowRun(
            workflow=workflow,
            lead_id=lead,
            key=keys[occ_key],
            trigger={"event": event, **detail},
            result=WorkflowRunResult.FAILED,
            trace=[{"step": "trigger", "event": event, **detail}, {"step": "error", "error": error}],
            error=error,
            at=now,
        )
        for lead, occ_key, detail in batch
    ]
    try:
        with transaction.atomic():
            WorkflowRun.objects.bulk_create(runs, ignore_conflicts=True)
    except Exception:  # recording the failure failed too: the log has it
        logger.exception("workflow %s: could not record the failed runs", workflow.pk)
        return 0
    return len(runs)


# --- timed triggers (beat) -----------------------------------------------------------------


def _inactive(workflow: Workflow, now: dt.datetime, batch: int) -> list[Occurrence]:
    """Leads without activity for N days that this workflow has not run for since their
    last activity: once per inactivity period."""
    cutoff = now - dt.timedelta(days=workflow.trigger["inactive_days"])
    ran = WorkflowRun.objects.filter(workflow=workflow, lead=OuterRef("pk"), at__gte=OuterRef("quiet_since"))
    rows = (
        Lead.objects.annotate(quiet_since=Coalesce("last_activity_at", "created_at", output_field=DateTimeField()))
        .filter(quiet_since__lte=cutoff)
        .filter(~Exists(ran))
        .order_by("pk")
        .values_list("pk", "quiet_since")[:batch]
    )
    return [(pk, f"inactive:{since:%Y%m%dT%H%M%S}:{pk}", {"inactive_since": since.isoformat()}) for pk, since in rows]


def _dated(workflow: Workflow, now: dt.datetime, batch: int) -> list[Occurrence]:
    """Leads whose date property plus the offset is today (or was, within the catch-up
    days): once per lead and date."""
    key, offset = workflow.trigger["date_property"], workflow.trigger.get("offset_days", 0)
    today = timezone.localdate(now)
    days = [today - dt.timedelta(days=n) for n in range(DATE_CATCH_UP_DAYS + 1)]
    targets = {(day - dt.timedelta(days=offset)).isoformat(): day for day in days}
    run_key = Concat(
        Value(f"wf:{workflow.pk}:date:{key}:"),
        OuterRef("_date"),
        Value(":"),
        Cast(OuterRef("pk"), CharField()),
        output_field=CharField(),
    )
    rows = (
        Lead.objects.annotate(_date=Left(KeyTextTransform(key, "properties"), 10))
        .filter(_date__in=list(targets))
        .filter(~Exists(WorkflowRun.objects.filter(key=run_key)))
        .order_by("pk")
        .values_list("pk", "_date")[:batch]
    )
    return [(pk, f"date:{key}:{value}:{pk}", {"property": key, "date": value}) for pk, value in rows]


def workflows_timed_run(
    *, now: dt.datetime | None = None, batch: int = TIMED_BATCH, max_batches: int = TIMED_MAX_BATCHES
) -> dict[str, int]:
    """The beat task's service: the due leads of each active timed workflow, set-based, in
    batches of `batch` (each committed; a lead that ran is not found again), up to
    `max_batches` per workflow per call (the next call goes on)."""
    now = now or timezone.now()
    counts = dict.fromkeys(WorkflowRunResult.values, 0)
    workflows = [
        w for w in Workflow.objects.filter(active=True).order_by("pk") if rules.trigger_event(w.trigger) is None
    ]
    for workflow in workflows:
        if "inactive_days" in workflow.trigger:
            find, event = _inactive, "inactive"
        elif "date_property" in workflow.trigger:
            find, event = _dated, "date"
        else:
            continue
        for _ in range(max_batches):
            occurrences = find(workflow, now, batch)
            if not occurrences:
                break
            facts = selectors.lead_facts({lead for lead, _, _ in occurrences})
            ran = _run(workflow, event, occurrences, facts, now)
            for result, n in ran.items():
                counts[result] += n
            if len(occurrences) < batch or not sum(ran.values()):
                break  # the last batch, or nothing recorded (it would be found again: stop here)
    return counts

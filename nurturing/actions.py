"""The actions that sequences and workflows run on leads: send an e-mail, create a task,
update a field, notify the owner, move the stage, enroll in a sequence, assign, route.

`action_errors` is the pure validation of one action (the sequence step rules and the
workflow rules both call it). `actions_run` runs one action for many leads through the
owning app's service (its guards, audit and events included), inside the caller's
transaction, and answers an outcome per lead: "done", "refused:<why>" (a guard said no:
no consent, a lifecycle guard, not a seller) or "skipped:<why>" (nothing to do: no owner,
already there, unknown lead). It is idempotent by `key`: messages and tasks carry keys
derived from it (unique in the database), notifications are looked up by it in the audit,
and the other actions set a state that a second run finds already set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from django.db import transaction
from django.utils.module_loading import import_string

from leadcrm import audit, inputs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError, TransitionRefused
from leads import services as lead_services
from leads.models import Lead, Stage, TaskKind

ACTION_TYPES = ("email", "task", "update", "notify_owner", "move_stage", "enroll", "assign", "route")
# Lead fields an "update" action may set (their public names, as in the API), besides
# "properties.<key>". The e-mail (the identity), stage, owner and scores have their own paths.
UPDATE_FIELDS = tuple("company" if attr == "company_name" else attr for attr in lead_services.WRITABLE_FIELDS)
PROPERTY_PREFIX = "properties."
MAX_TASK_HOURS = 24 * 365
MAX_TEXT = 500
OUTCOME_MAX = 40  # StepRun.outcome
KEY_MAX = 200  # Message.idempotency_key, Task.key
NOTIFY_AUDIT_ACTION = "nurturing.notify_owner"
REASON = "Automation"


# --- validation (pure) -------------------------------------------------------------------


def _text_errors(name: str, value: object, *, limit: int, required: bool = False) -> list[str]:
    if value is None or value == "":
        return [f"{name}: required."] if required else []
    if not isinstance(value, str) or len(value) > limit:
        return [f"{name}: text of at most {limit} characters."]
    problem = inputs.text_problem(value)
    return [f"{name}: {problem}"] if problem else []


def update_value_errors(field: object, value: object) -> list[str]:
    """The API's rules for one lead field (leads.validation.clean_lead_row)."""
    if not isinstance(field, str):
        return ["field: one of the lead's fields or properties.<key>."]
    if field.startswith(PROPERTY_PREFIX):
        key = field[len(PROPERTY_PREFIX) :]
        _clean, errors = lead_services.clean_lead_row({"properties": {key: value}}, partial=True)
    elif field in UPDATE_FIELDS:
        _clean, errors = lead_services.clean_lead_row({field: value}, partial=True)
    else:
        return [f"field: one of {', '.join(UPDATE_FIELDS)} or properties.<key>."]
    return [f"value: {message}" for messages in errors.values() for message in messages]


def action_errors(action: object) -> list[str]:
    """What is wrong with one action ([] when it may be saved). Pure: the ids it names
    (template, sequence, user) are checked when it runs."""
    if not isinstance(action, dict):
        return ["An action is a JSON object with a type."]
    kind = action.get("type")
    if kind not in ACTION_TYPES:
        return [f"type: one of {', '.join(ACTION_TYPES)}."]
    allowed = {
        "email": {"template"},
        "task": {"kind", "due_in_hours", "title", "notes"},
        "update": {"field", "value"},
        "notify_owner": {"text"},
        "move_stage": {"to"},
        "enroll": {"sequence"},
        "assign": {"user"},
        "route": set(),
    }[kind]
    errors = [f"{name}: unknown for a {kind} action." for name in sorted(set(action) - allowed - {"type"}, key=str)]
    if kind == "email" and not inputs.is_id(action.get("template")):
        errors.append("template: the id of an e-mail template.")
    elif kind == "task":
        if action.get("kind", TaskKind.TODO) not in TaskKind.values:
            errors.append(f"kind: one of {', '.join(TaskKind.values)}.")
        hours = action.get("due_in_hours", 0)
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 <= hours <= MAX_TASK_HOURS:
            errors.append(f"due_in_hours: a number of hours from 0 to {MAX_TASK_HOURS}.")
        errors += _text_errors("title", action.get("title"), limit=200)
        errors += _text_errors("notes", action.get("notes"), limit=MAX_TEXT)
    elif kind == "update":
        if "value" not in action:
            errors.append("value: required (null clears it).")
        else:
            errors += update_value_errors(action.get("field"), action["value"])
    elif kind == "notify_owner":
        errors += _text_errors("text", action.get("text"), limit=MAX_TEXT)
    elif kind == "move_stage" and action.get("to") not in Stage.values:
        errors.append(f"to: one of {', '.join(Stage.values)}.")
    elif kind == "enroll" and not inputs.is_id(action.get("sequence")):
        errors.append("sequence: the id of a sequence.")
    elif kind == "assign" and not inputs.is_id(action.get("user")):
        errors.append("user: the id of an active seller.")
    return errors


# --- running -----------------------------------------------------------------------------


def lead_key(key: str, lead_id: int) -> str:
    """The per-lead idempotency key of a run (hashed when too long for the key columns)."""
    full = f"{key}:{lead_id}"
    if len(full) <= KEY_MAX:
        return full
    return f"h:{hashlib.sha256(full.encode()).hexdigest()}"


def _outcome(prefix: str, why: object) -> str:
    return f"{prefix}:{why}"[:OUTCOME_MAX]


def actions_run(
    *,
    actor: Actor,
    action: dict,
    lead_ids: Iterable[int],
    key: str,
    now: dt.datetime,
    context: dict | None = None,
) -> dict[int, str]:
    """Run one action for these leads; an outcome per lead (see the module docstring).
    An invalid action refuses every lead ("refused:invalid") rather than raising: it was
    valid when saved, and a run must record why it did nothing.

    `context` (optional): {"enrollments": {lead_id: enrollment_id}, "step": path,
    "variant": "3:1"} label the e-mails a sequence step queues; {"source": "workflow:5"}
    is what an enrollment records as its origin."""
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return {}
    if action_errors(action):
        return dict.fromkeys(ids, "refused:invalid")
    existing = set(Lead.objects.filter(pk__in=ids).values_list("pk", flat=True))
    outcomes = {pk: "skipped:not_found" for pk in ids if pk not in existing}
    present = [pk for pk in ids if pk in existing]
    if not present:
        return outcomes
    runner = _RUNNERS[action["type"]]
    with transaction.atomic():
        outcomes.update(runner(actor=actor, action=action, lead_ids=present, key=key, now=now, context=context or {}))
    return outcomes


def _service(name: str):
    """A nurturing service by dotted path: the services (sequences, workflows) import this
    module, so it names theirs as the outbox names tasks, never by an import (a cycle)."""
    return import_string(f"nurturing.services.{name}")


def _email(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    MessageRequest, messages_queue = _service("MessageRequest"), _service("messages_queue")  # noqa: N806
    keys = {pk: lead_key(key, pk) for pk in lead_ids}
    results = messages_queue(
        actor=actor,
        requests=[
            MessageRequest(lead_id=pk, template_id=action["template"], idempotency_key=keys[pk]) for pk in lead_ids
        ],
    )
    outcomes = {r.lead_id: "done" if r.message_id else _outcome("refused", r.refused) for r in results}
    enrollments = context.get("enrollments") or {}
    if enrollments or context.get("step") or context.get("variant"):
        _label_messages({r.lead_id: r.message_id for r in results if r.message_id}, keys, enrollments, context)
    return outcomes


def _label_messages(message_ids: dict[int, int], keys: dict[int, str], enrollments: dict, context: dict) -> None:
    """Link the queued messages to the sequence step that sent them (the per-step and
    per-variant reports read these). Only messages of this run's keys, once."""
    from nurturing.models import Message

    step, variant = str(context.get("step") or "")[:40], str(context.get("variant") or "")[:40]
    for lead_id, message_id in message_ids.items():
        enrollment = enrollments.get(lead_id) or enrollments.get(str(lead_id))
        Message.objects.filter(
            pk=message_id, idempotency_key=keys[lead_id], enrollment__isnull=True, step="", variant=""
        ).update(enrollment_id=enrollment, step=step, variant=variant)


def _task(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    hours = action.get("due_in_hours", 0)
    try:
        lead_services.tasks_create(
            actor=actor,
            lead_ids=lead_ids,
            kind=action.get("kind", TaskKind.TODO),
            due_at=now + dt.timedelta(hours=hours),
            title=action.get("title") or "",
            notes=action.get("notes") or "",
            keys={pk: lead_key(key, pk) for pk in lead_ids},
        )
    except ServiceError as exc:
        return dict.fromkeys(lead_ids, _outcome("refused", next(iter(exc.errors), "invalid")))
    return dict.fromkeys(lead_ids, "done")


def _update(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    field, value = action["field"], action["value"]
    row = (
        {"properties": {field[len(PROPERTY_PREFIX) :]: value}} if field.startswith(PROPERTY_PREFIX) else {field: value}
    )
    clean, errors = lead_services.clean_lead_row(row, partial=True)
    if errors:
        return dict.fromkeys(lead_ids, "refused:invalid")
    outcomes = {}
    for pk in lead_ids:
        try:
            with transaction.atomic():
                lead_services.lead_update(lead_id=pk, data=clean, actor=actor)
        except ServiceError as exc:
            outcomes[pk] = _outcome("refused", next(iter(exc.errors), "invalid"))
            continue
        outcomes[pk] = "done"
    return outcomes


def _notify_owner(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    """In-app and e-mail notification to each lead's owner; once per key (the audit entry
    of the first one is looked up by its key on the lead's index)."""
    from accounts import services as account_services
    from leadcrm.models import AuditEntry

    keys = {pk: lead_key(key, pk) for pk in lead_ids}
    done = set(
        AuditEntry.objects.filter(
            target_type="leads.lead",
            target_id__in=[str(pk) for pk in lead_ids],
            action=NOTIFY_AUDIT_ACTION,
            details__key__in=list(keys.values()),
        ).values_list("target_id", flat=True)
    )
    leads = Lead.objects.filter(pk__in=lead_ids).select_related("owner")
    outcomes, items, entries = {}, [], []
    for lead in leads:
        if str(lead.pk) in done:
            outcomes[lead.pk] = "skipped:already_done"
            continue
        if lead.owner is None or not lead.owner.is_active:
            outcomes[lead.pk] = "skipped:no_owner"
            continue
        text = action.get("text") or f"Automation: {lead.email} needs your attention."
        items.append((lead.owner, "automation", f"{text} ({lead.email})" if action.get("text") else text, lead.pk))
        entries.append(
            audit.entry(
                actor=actor,
                action=NOTIFY_AUDIT_ACTION,
                target=lead,
                details={"key": keys[lead.pk], "owner": lead.owner_id},
            )
        )
        outcomes[lead.pk] = "done"
    if items:
        account_services.notify_many(items=items)
        audit.record_many(entries)
    return outcomes


def _move_stage(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    """Through the lifecycle service, one lead at a time (each move locks its lead and is
    judged by the guards): a refused move is an outcome, not an error."""
    to = action["to"]
    stages = dict(Lead.objects.filter(pk__in=lead_ids).values_list("pk", "stage"))
    outcomes = {}
    for pk in lead_ids:
        if stages.get(pk) == to:
            outcomes[pk] = "skipped:already_there"
            continue
        try:
            with transaction.atomic():
                lead_services.lead_transition(lead_id=pk, to=to, actor=actor, reason=REASON)
        except TransitionRefused as exc:
            outcomes[pk] = _outcome("refused", exc.failure.guard)
            continue
        except (ServiceError, KeyError):  # a move the lifecycle does not know (no skip rule)
            outcomes[pk] = "refused:not_allowed"
            continue
        outcomes[pk] = "done"
    return outcomes


ENROLL_OUTCOMES = {"enrolled": "done", "already_enrolled": "skipped:already_enrolled", "not_found": "skipped:not_found"}


def _enroll(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    try:
        enroll = _service("sequence_enroll")
    except ImportError:  # the sequences engine is not there
        return dict.fromkeys(lead_ids, "skipped:unavailable")
    try:
        source = {"source": str(context["source"])[:80]} if context.get("source") else {}
        results = enroll(actor=actor, sequence_id=action["sequence"], lead_ids=lead_ids, now=now, **source)
    except ServiceError:
        return dict.fromkeys(lead_ids, "refused:unknown_sequence")
    return {
        pk: ENROLL_OUTCOMES.get(results.get(pk, "not_found"), _outcome("refused", results.get(pk))) for pk in lead_ids
    }


def _assign(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    """To a named user, through the assignment service and its guard (only active sellers
    own leads). A lead the user already owns is skipped (a second run changes nothing)."""
    from accounts.models import User
    from leadcrm.permissions import may_own_leads

    user = User.objects.filter(pk=action["user"]).first()
    if not may_own_leads(user):
        return dict.fromkeys(lead_ids, "refused:not_a_seller")
    assign_many = getattr(lead_services, "leads_assign", None)
    if assign_many is not None:
        changed = set(assign_many(lead_ids=lead_ids, owner=user, actor=actor, reason=REASON))
    else:  # a batch of one each
        before = dict(Lead.objects.filter(pk__in=lead_ids).values_list("pk", "owner_id"))
        for pk in lead_ids:
            lead_services.lead_assign(lead_id=pk, owner=user, actor=actor, reason=REASON)
        changed = {pk for pk in lead_ids if before.get(pk) != user.pk}
    return {pk: "done" if pk in changed else "skipped:unchanged" for pk in lead_ids}


ROUTE_OUTCOMES = {"assigned": "done", "pool": "done", "partner": "done"}


def _route(*, actor, action, lead_ids, key, now, context) -> dict[int, str]:
    """Through the routing rules: the unowned open leads (an owned lead keeps its owner, so
    a second run changes nothing; a reassignment is the assign action)."""
    from routing import services as routing_services

    results = routing_services.route_leads(lead_ids=lead_ids, actor=actor, reason=REASON, unowned_only=True)
    outcomes = {}
    for r in results:
        if r.outcome in ROUTE_OUTCOMES:
            outcomes[r.lead_id] = ROUTE_OUTCOMES[r.outcome]
        elif r.outcome == "skipped":
            outcomes[r.lead_id] = "skipped:owned_or_closed"
        else:
            outcomes[r.lead_id] = _outcome("skipped", r.outcome)
    return outcomes


_RUNNERS = {
    "email": _email,
    "task": _task,
    "update": _update,
    "notify_owner": _notify_owner,
    "move_stage": _move_stage,
    "enroll": _enroll,
    "assign": _assign,
    "route": _route,
}

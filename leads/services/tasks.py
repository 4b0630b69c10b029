"""Tasks on leads: a seller's call back, a meeting, a playbook step of a sequence.

One rule for who may hold a task (`task_assignee_errors`): an active user who may see the
lead, so a task never shows someone a lead they could not open. The caller must see every
lead it puts a task on; a lead it may not see is "unknown", as one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from leadcrm import audit, inputs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import selectors
from leads.models import Lead, Task, TaskKind

TASK_FIELDS = ("kind", "title", "notes", "due_at", "assignee", "done_at")
MAX_NOTES = 5000


def task_field_errors(*, kind: object = None, title: object = None, notes: object = None) -> dict[str, list[str]]:
    """The input rules of a task's own fields, for the API, the pages and automation."""
    errors: dict[str, list[str]] = {}
    if kind is not None and kind not in TaskKind.values:
        errors["kind"] = [f"One of: {', '.join(TaskKind.values)}."]
    for name, value, limit in (("title", title, 200), ("notes", notes, MAX_NOTES)):
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > limit:
            errors[name] = [f"Text of at most {limit} characters."]
        elif problem := inputs.text_problem(value):
            errors[name] = [problem]
    return errors


def task_assignee_errors(*, assignee: User | None, lead_ids: Iterable[int]) -> dict[str, list[str]]:
    """Who may hold a task on these leads: an active user who may see each of them."""
    if assignee is None:
        return {}
    ids = set(lead_ids)
    if not assignee.is_active or selectors.lead_ids_visible_to(assignee, ids) != ids:
        return {"assignee": ["This user cannot see the lead: give the task to someone who can."]}
    return {}


def _visible_leads(actor: Actor, lead_ids: Iterable[int]) -> dict[int, Lead]:
    wanted = set(lead_ids)
    visible = selectors.lead_ids_visible_to(actor.user, wanted)
    leads = Lead.objects.in_bulk(visible) if visible else {}
    if wanted - set(leads):
        raise ServiceError({"lead": [f"Unknown leads: {sorted(wanted - set(leads))[:20]}."]})
    return leads


def tasks_create(
    *,
    actor: Actor,
    lead_ids: Iterable[int],
    kind: str,
    due_at: dt.datetime,
    title: str = "",
    notes: str = "",
    assignee: User | None = None,
    keys: Mapping[int, str] | None = None,
) -> list[Task]:
    """A task on each lead, for `assignee` or else the lead's owner (else the caller, else
    nobody: the team's pool sees it on the lead). With `keys` (lead id -> key), a lead that
    already has the task of that key keeps it: automation that runs twice makes one task."""
    errors = task_field_errors(kind=kind, title=title, notes=notes)
    if not isinstance(due_at, dt.datetime) or timezone.is_naive(due_at):
        errors["due_at"] = ["A date and time with its time zone."]
    if errors:
        raise ServiceError(errors)
    leads = _visible_leads(actor, lead_ids)
    if errors := task_assignee_errors(assignee=assignee, lead_ids=leads):
        raise ServiceError(errors)
    keys = dict(keys or {})
    existing = {t.key: t for t in Task.objects.filter(key__in=[k for k in keys.values() if k])}
    tasks, made = [], []
    with transaction.atomic():
        for lead_id in sorted(leads):
            key = keys.get(lead_id) or None
            if key in existing:
                tasks.append(existing[key])
                continue
            lead = leads[lead_id]
            holder_id = assignee.pk if assignee else lead.owner_id or (actor.user.pk if actor.user else None)
            made.append(
                Task(
                    lead_id=lead_id,
                    assignee_id=holder_id,
                    kind=kind,
                    title=title,
                    notes=notes,
                    due_at=due_at,
                    key=key,
                    created_by=actor.user,
                )
            )
        Task.objects.bulk_create(made, ignore_conflicts=bool(keys))
        if keys and made:
            # Rows another run inserted first were skipped: read back what holds each key.
            made = list(Task.objects.filter(key__in=[t.key for t in made if t.key])) + [t for t in made if not t.key]
        audit.record_many(
            audit.entry(actor=actor, action="task.create", target=t, changes=audit.created(t, TASK_FIELDS))
            for t in made
            if t.pk
        )
        _notify_holders(actor, made)
    return sorted(tasks + made, key=lambda t: (t.lead_id, t.pk or 0))


def task_update(*, actor: Actor, task_id: int, **fields: object) -> Task:
    """Change a task the caller may see (its lead visible to them): `done` (True/False),
    `due_at`, `title`, `notes`, `kind`, `assignee` (a User or None)."""
    unknown = set(fields) - {"done", "due_at", "title", "notes", "kind", "assignee"}
    if unknown:
        raise ServiceError({name: ["Unknown field."] for name in sorted(unknown)})
    errors = task_field_errors(kind=fields.get("kind"), title=fields.get("title"), notes=fields.get("notes"))
    if "due_at" in fields and (not isinstance(fields["due_at"], dt.datetime) or timezone.is_naive(fields["due_at"])):
        errors["due_at"] = ["A date and time with its time zone."]
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or not selectors.lead_ids_visible_to(actor.user, [task.lead_id]):
            raise ServiceError({"task": ["Unknown task."]})
        before = audit.snapshot(task, TASK_FIELDS)
        if "assignee" in fields:
            if errors := task_assignee_errors(assignee=fields["assignee"], lead_ids=[task.lead_id]):
                raise ServiceError(errors)
            task.assignee = fields["assignee"]
        if "done" in fields:
            task.done_at = (task.done_at or timezone.now()) if fields["done"] else None
        for name in ("due_at", "title", "notes", "kind"):
            if name in fields:
                setattr(task, name, fields[name])
        changes = audit.diff(before, task)
        if changes:
            task.save(update_fields=[*TASK_FIELDS, "updated_at"])
            audit.record(actor=actor, action="task.update", target=task, changes=changes)
            if "assignee" in changes:
                _notify_holders(actor, [task])
    return task


def _notify_holders(actor: Actor, tasks: list[Task]) -> None:
    """Tell each holder about a task someone else gave them (in the app, no e-mail)."""
    from accounts import services as account_services

    given = [t for t in tasks if t.assignee_id and (actor.user is None or t.assignee_id != actor.user.pk)]
    if not given:
        return
    users = User.objects.in_bulk({t.assignee_id for t in given})
    account_services.notify_many(
        items=[
            (
                users[t.assignee_id],
                "task",
                f"New task: {t.title or t.get_kind_display()} (due {t.due_at:%Y-%m-%d %H:%M})",
                t.lead_id,
            )
            for t in given
        ],
        email=False,
    )

"""The audit log: one call the services make, in the transaction of the change they audit.

`record` writes one entry, `record_many` a batch in one INSERT (imports, bulk upserts and
reassignments are the normal case), `diff` computes {field: [old, new]} of named fields as
JSON-safe values. Never pass passwords or tokens: `SECRET_FIELDS` are dropped from any diff.
Automation's score writes (rescores) are not audited row by row: ScoreChange is their history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from leadcrm.bulk import bulk_insert
from leadcrm.models import AuditEntry

SECRET_FIELDS = frozenset({"password", "token", "key", "secret", "api_key", "last_login"})


def jsonable(value: Any) -> Any:
    """A value the JSON column keeps: dates as ISO text, decimals as text, models as id + repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, models.Model):
        return {"id": value.pk, "repr": str(value)[:200]}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "all"):  # a related manager: the ids it holds
        return sorted(o.pk for o in value.all())
    return str(value)


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields' current values (FKs as the related object when cached, else its id)."""
    out = {}
    for name in fields:
        if name in SECRET_FIELDS:
            continue
        field = obj._meta.get_field(name)
        if field.many_to_many:
            out[name] = sorted(o.pk for o in getattr(obj, name).all()) if obj.pk else []
        elif field.is_relation:
            out[name] = getattr(obj, name) if field.is_cached(obj) else getattr(obj, field.attname)
        else:
            out[name] = getattr(obj, name)
    return out


def created(obj: models.Model, fields: Iterable[str]) -> dict[str, list]:
    """The changes of a creation: each field from nothing to its value."""
    return {k: [None, v] for k, v in snapshot(obj, fields).items()}


def deleted(obj: models.Model, fields: Iterable[str]) -> dict[str, list]:
    """The changes of a deletion: each field from its value to nothing."""
    return {k: [v, None] for k, v in snapshot(obj, fields).items()}


def _same(a: Any, b: Any) -> bool:
    return _key(a) == _key(b)


def _key(value: Any) -> Any:
    return value.pk if isinstance(value, models.Model) else value


def diff(before: dict[str, Any], after: dict[str, Any] | models.Model) -> dict[str, list]:
    """{field: [old, new]} for the fields of `before` whose value differs in `after` (a
    snapshot dict or the changed instance)."""
    if isinstance(after, models.Model):
        after = snapshot(after, before.keys())
    return {
        name: [jsonable(old), jsonable(after[name])]
        for name, old in before.items()
        if name not in SECRET_FIELDS and name in after and not _same(old, after[name])
    }


def _target(target: models.Model | tuple[str, Any, str]) -> tuple[str, str, str]:
    if isinstance(target, models.Model):
        return target._meta.label_lower, str(target.pk or ""), str(target)[:200]
    kind, pk, text = target
    return kind, str(pk if pk is not None else ""), str(text)[:200]


def entry(
    *,
    actor: Any,
    action: str,
    target: models.Model | tuple[str, Any, str],
    changes: dict | None = None,
    details: dict | None = None,
    at: dt.datetime | None = None,
) -> dict:
    """One unsaved entry as a dict (for `record_many`). `actor` is a leadcrm.actors.Actor
    (user + kind), a User, or None (automation); `target` a model instance or
    (app_label.model, id, repr)."""
    from accounts.models import User

    if actor is None or isinstance(actor, User):
        user, kind = actor, "user" if actor is not None else "automation"
    else:
        user, kind = actor.user, str(actor.kind)
    target_type, target_id, target_repr = _target(target)
    return {
        "at": at or timezone.now(),
        "actor_id": user.pk if user is not None else None,
        "actor_kind": kind,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "changes": jsonable({k: v for k, v in (changes or {}).items() if k not in SECRET_FIELDS}),
        "details": jsonable(details or {}),
    }


def record(
    *,
    actor: Any,
    action: str,
    target: models.Model | tuple[str, Any, str],
    changes: dict | None = None,
    details: dict | None = None,
    skip_empty: bool = False,
) -> AuditEntry | None:
    """Write one entry. With `skip_empty`, nothing is written when `changes` is empty (an
    update that changed nothing leaves no trace)."""
    if skip_empty and not changes:
        return None
    return AuditEntry.objects.create(
        **entry(actor=actor, action=action, target=target, changes=changes, details=details)
    )


def record_many(entries: Iterable[dict]) -> int:
    """Write many `entry(...)` dicts with one set-based INSERT; returns how many."""
    rows = list(entries)
    if rows:
        bulk_insert(rows, model=AuditEntry)
    return len(rows)

"""Writes on users and teams (admins only, checked by the API)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Team, User
from leadcrm.errors import ServiceError

USER_FIELDS = (
    "username",
    "email",
    "first_name",
    "last_name",
    "role",
    "team",
    "capacity",
    "weight",
    "routing_active",
    "is_active",
)


def _set_password(user: User, password: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ServiceError({"password": list(exc.messages)}) from exc
    user.set_password(password)


@transaction.atomic
def user_create(*, password: str, **fields: object) -> User:
    user = User(**{k: v for k, v in fields.items() if k in USER_FIELDS})
    _set_password(user, password)
    user.is_staff = user.role in ("admin", "marketing")
    user.save()
    return user


@transaction.atomic
def user_update(*, user: User, password: str | None = None, **fields: object) -> User:
    changed = [k for k in USER_FIELDS if k in fields and getattr(user, k) != fields[k]]
    for k in changed:
        setattr(user, k, fields[k])
    if password:
        _set_password(user, password)
        changed.append("password")
    if "role" in changed:
        user.is_staff = user.role in ("admin", "marketing")
        changed.append("is_staff")
    if changed:
        user.save(update_fields=changed)
    return user


@transaction.atomic
def team_create(*, name: str, manager: User | None = None, timezone: str = "Europe/Paris") -> Team:
    return Team.objects.create(name=name, manager=manager, timezone=timezone)


@transaction.atomic
def team_update(*, team: Team, **fields: object) -> Team:
    changed = [k for k in ("name", "manager", "timezone") if k in fields]
    for k in changed:
        setattr(team, k, fields[k])
    if changed:
        team.save(update_fields=changed)
    return team

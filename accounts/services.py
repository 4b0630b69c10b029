"""Writes on users and teams (admins only, checked by the API), audited: the password is
never in the log, only that it changed."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Notification, Role, Team, User
from leadcrm import audit
from leadcrm.errors import Conflict, ServiceError

if TYPE_CHECKING:
    from leadcrm.actors import Actor

logger = logging.getLogger(__name__)

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
    "languages",
    "skills",
    "is_active",
)


def _set_password(user: User, password: str) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ServiceError({"password": list(exc.messages)}) from exc
    user.set_password(password)


@transaction.atomic
def user_create(*, password: str, actor: Actor | None = None, **fields: object) -> User:
    user = User(**{k: v for k, v in fields.items() if k in USER_FIELDS})
    _set_password(user, password)
    user.is_staff = user.role in ("admin", "marketing")
    user.save()
    given = [k for k in USER_FIELDS if k in fields]
    audit.record(
        actor=actor,
        action="user.create",
        target=user,
        changes=audit.created(user, [*given, "is_staff"]),
    )
    return user


def ensure_not_last_admin(*, user: User, role: str, is_active: bool, is_superuser: bool) -> None:
    """Refuse a change that leaves no active admin (nobody could manage users any more).
    Call it in a transaction: the admins' rows are locked, so two admins demoting each
    other at once cannot both succeed."""
    if not user.pk:
        return
    current = User.objects.filter(pk=user.pk).values("role", "is_active", "is_superuser").first()
    if current is None:
        return
    was_admin = current["is_active"] and (current["is_superuser"] or current["role"] == Role.ADMIN)
    stays_admin = is_active and (is_superuser or role == Role.ADMIN)
    if not was_admin or stays_admin:
        return
    admins = User.objects.select_for_update().filter(Q(is_superuser=True) | Q(role=Role.ADMIN), is_active=True)
    if not [pk for pk in admins.values_list("pk", flat=True) if pk != user.pk]:
        raise Conflict("last_admin", "This is the last active admin: make another admin first.")


@transaction.atomic
def user_update(*, user: User, password: str | None = None, actor: Actor | None = None, **fields: object) -> User:
    before = audit.snapshot(user, [*USER_FIELDS, "is_staff"])
    ensure_not_last_admin(
        user=user,
        role=fields.get("role", user.role),
        is_active=fields.get("is_active", user.is_active),
        is_superuser=fields.get("is_superuser", user.is_superuser),
    )
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
        action = "user.deactivate" if "is_active" in changed and not user.is_active else "user.update"
        if "role" in changed:
            action = "user.role_change"
        audit.record(
            actor=actor,
            action=action,
            target=user,
            changes=audit.diff(before, user),
            details={"password_changed": True} if "password" in changed else None,
        )
    return user


@transaction.atomic
def team_create(
    *, name: str, manager: User | None = None, timezone: str = "Europe/Paris", actor: Actor | None = None
) -> Team:
    team = Team.objects.create(name=name, manager=manager, timezone=timezone)
    audit.record(
        actor=actor,
        action="team.create",
        target=team,
        changes=audit.created(team, ("name", "manager", "timezone")),
    )
    return team


@transaction.atomic
def team_update(*, team: Team, actor: Actor | None = None, **fields: object) -> Team:
    before = audit.snapshot(team, ("name", "manager", "timezone"))
    changed = [k for k in ("name", "manager", "timezone") if k in fields]
    for k in changed:
        setattr(team, k, fields[k])
    if changed:
        team.save(update_fields=changed)
        audit.record(actor=actor, action="team.update", target=team, changes=audit.diff(before, team), skip_empty=True)
    return team


# --- notifications ----------------------------------------------------------------------


def notify(
    *,
    user: User,
    kind: str,
    text: str,
    lead_id: int | None = None,
    email: bool = True,
    subject: str | None = None,
) -> Notification:
    """An in-app notification, and (after commit, so a rolled-back write sends nothing) the
    same text by e-mail when the user has an address."""
    return notify_many(items=[(user, kind, text, lead_id)], email=email, subject=subject)[0]


def notify_many(
    *, items: Iterable[tuple[User, str, str, int | None]], email: bool = True, subject: str | None = None
) -> list[Notification]:
    """Many notifications in one insert; one e-mail per notification after commit."""
    rows = [Notification(user=u, kind=k, text=t, lead_id=lead) for u, k, t, lead in items]
    with transaction.atomic():
        Notification.objects.bulk_create(rows, batch_size=2000)
    if email:
        mails = [(n.user.email, subject or f"LeadCRM: {n.text[:70]}", n.text) for n in rows if n.user.email]
        if mails:
            transaction.on_commit(lambda: _send_mails(mails))
    return rows


def _send_mails(mails: list[tuple[str, str, str]]) -> None:
    for to, subject, body in mails:
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
        except Exception:  # a mail server outage must not undo the write
            logger.exception("notification e-mail to %s failed", to)


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())

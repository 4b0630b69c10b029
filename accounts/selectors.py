"""Reads on users and teams: which users and teams a user oversees or sees."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.models import Notification, Role, Team, User


def managed_team_ids(user: User) -> set[int]:
    """The teams a manager oversees: their own and every team they are the manager of."""
    return {t for t in [user.team_id, *user.managed_teams.values_list("pk", flat=True)] if t}


def users_whose_history_is_readable_by(user: User) -> QuerySet[User] | bool:
    """Audit entries about a user are read, besides admins, by the manager of their team (the
    manager page sets their capacity, weight and availability); registered with
    `leadcrm.selectors.readable_targets`."""
    if user.role != Role.MANAGER:
        return False
    return User.objects.filter(team_id__in=managed_team_ids(user))


def teams_visible_to(user: User) -> QuerySet[Team]:
    """SPEC "Admin API": admins write, managers read their team. Admins and marketing (who
    see every lead, and so every team's figures) read every team; a manager the teams they
    oversee; anyone else their own team only."""
    qs = Team.objects.order_by("name")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.sees_all_leads:
        return qs
    if user.role == Role.MANAGER:
        return qs.filter(pk__in=managed_team_ids(user))
    return qs.filter(pk=user.team_id) if user.team_id else qs.none()


def users_visible_to(user: User) -> QuerySet[User]:
    """SPEC "Admin API": admins read every user, a manager their team and themselves,
    anyone else themselves."""
    if user.is_admin_role:
        return User.objects.all()
    if user.role == Role.MANAGER and user.team_id:
        return User.objects.filter(Q(team_id=user.team_id) | Q(pk=user.pk))
    return User.objects.filter(pk=user.pk)


def unread_notification_count(user: User) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notifications_of(user: User, *, limit: int = 100) -> list[Notification]:
    """The user's newest notifications, unread ones first."""
    unread = list(Notification.objects.filter(user=user, read_at__isnull=True)[:limit])
    read = Notification.objects.filter(user=user, read_at__isnull=False)[: max(0, limit - len(unread))]
    return unread + list(read) if len(unread) < limit else unread

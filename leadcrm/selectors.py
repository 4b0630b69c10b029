"""Reads on the audit log and background jobs: which entries and jobs a user may see,
written once for the API and any page that lists them."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import Role, User
from leadcrm.models import AuditEntry, Job

# Whose history a user reads, for one kind of target: the objects of it (a queryset), every
# one (True) or none (False). The app that owns the model says so, in its AppConfig.ready()
# (leads: the leads the user sees; accounts: a manager's team members), so the kernel names
# no app and each app's visibility rule stays in that app.
ReadableTargets = Callable[[User], "QuerySet | bool"]
_READABLE_TARGETS: dict[str, ReadableTargets] = {}


def readable_targets(target_type: str, readable: ReadableTargets) -> None:
    """Register whose history (entries about `target_type`, `app_label.model`) a user reads."""
    _READABLE_TARGETS[target_type] = readable


# Configuration whose history a role reads besides admins: the configuration that role
# writes (SPEC.md "Who uses it": marketing manages scoring rules, sequences and workflows,
# which live in scoring and nurturing). Users, teams and routing are written by admins only
# (the API refuses the others), so only admins read their history.
CONFIG_HISTORY_BY_ROLE: dict[str, tuple[str, ...]] = {Role.MARKETING: ("scoring.", "nurturing.")}


def _ids_as_text(qs: QuerySet) -> QuerySet:
    """The rows' ids as text, as `AuditEntry.target_id` stores them (a subquery, not a list)."""
    return qs.order_by().annotate(_id_text=Cast("pk", CharField())).values("_id_text")


def audit_entries_visible_to(user: User) -> QuerySet[AuditEntry]:
    """Admins read the whole log. Everyone else reads the entries about the objects the
    owning app lets them read (`readable_targets`: the leads they can see, never an entry
    about a lead hidden from them whatever the filter; a manager also their teams' members),
    plus the history of the configuration their role writes. Newest first, actors joined."""
    qs = AuditEntry.objects.select_related("actor").order_by("-at", "-id")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_admin_role:
        return qs
    visible = []
    for target_type, readable in _READABLE_TARGETS.items():
        targets = readable(user)
        if targets is True:
            visible.append(Q(target_type=target_type))
        elif targets is not False:
            visible.append(Q(target_type=target_type, target_id__in=_ids_as_text(targets)))
    visible += [Q(target_type__startswith=prefix) for prefix in CONFIG_HISTORY_BY_ROLE.get(user.role, ())]
    return qs.filter(functools.reduce(operator.or_, visible)) if visible else qs.none()


def jobs_visible_to(user: User) -> QuerySet[Job]:
    """A job's starter and admins see it."""
    qs = Job.objects.all()
    return qs if user.is_admin_role else qs.filter(created_by=user)

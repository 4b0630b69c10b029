"""Reads on the audit log and background jobs: which entries and jobs a user may see,
written once for the API and any page that lists them."""

from __future__ import annotations

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import Role, User
from leadcrm.models import AuditEntry, Job
from leads.selectors import leads_visible_to, managed_team_ids

LEAD_TARGET = "leads.lead"
USER_TARGET = "accounts.user"

# Configuration whose history a role reads besides admins: the configuration that role
# writes (SPEC.md "Who uses it": marketing manages scoring rules, sequences and workflows,
# which live in scoring and nurturing). Users, teams and routing are written by admins only
# (the API refuses the others), so only admins read their history.
CONFIG_HISTORY_BY_ROLE: dict[str, tuple[str, ...]] = {Role.MARKETING: ("scoring.", "nurturing.")}


def _ids_as_text(qs: QuerySet) -> QuerySet:
    """The rows' ids as text, as `AuditEntry.target_id` stores them (a subquery, not a list)."""
    return qs.order_by().annotate(_id_text=Cast("pk", CharField())).values("_id_text")


def audit_entries_visible_to(user: User) -> QuerySet[AuditEntry]:
    """Admins read the whole log. Everyone else reads the entries about the leads they can
    see (leads.selectors.leads_visible_to: never an entry about a lead hidden from them,
    whatever the filter), plus the history of the configuration their role writes; a
    manager also reads the entries about the members of the teams they manage (the manager
    page sets their capacity, weight and availability). Newest first, actors joined."""
    qs = AuditEntry.objects.select_related("actor").order_by("-at", "-id")
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.is_admin_role:
        return qs
    about_leads = Q(target_type=LEAD_TARGET)
    if not user.sees_all_leads:
        about_leads &= Q(target_id__in=_ids_as_text(leads_visible_to(user)))
    visible = about_leads
    for prefix in CONFIG_HISTORY_BY_ROLE.get(user.role, ()):
        visible |= Q(target_type__startswith=prefix)
    if user.role == Role.MANAGER:
        members = User.objects.filter(team_id__in=managed_team_ids(user))
        visible |= Q(target_type=USER_TARGET, target_id__in=_ids_as_text(members))
    return qs.filter(visible)


def jobs_visible_to(user: User) -> QuerySet[Job]:
    """A job's starter and admins see it."""
    qs = Job.objects.all()
    return qs if user.is_admin_role else qs.filter(created_by=user)

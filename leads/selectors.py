"""Reads on leads: who may see what, lists, history, funnel."""

from __future__ import annotations

import dataclasses
import datetime as dt

import django_filters
from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.module_loading import import_string

from accounts.models import Role, User
from accounts.selectors import managed_team_ids
from leadcrm import inputs
from leadcrm.models import AuditEntry
from leads import funnel, lifecycle
from leads.filters import PROPERTIES_PREFIX, LeadFilter, properties_filtered
from leads.models import (
    BANT_CRITERIA,
    Assignment,
    Bant,
    Lead,
    Opportunity,
    OpportunityStatus,
    ScoreChange,
    Stage,
    StageChange,
    Task,
    Touchpoint,
    TouchpointType,
)


def leads_visible_to(user: User) -> QuerySet[Lead]:
    """SPEC "Roles": admins and marketing see every lead; a manager their team's (pool and
    members' leads); an SDR their own leads and the unassigned pool of their team."""
    qs = Lead.objects.all()
    if not user.is_authenticated or not user.is_active:
        return qs.none()
    if user.sees_all_leads:
        return qs
    if user.role == Role.MANAGER:
        teams = managed_team_ids(user)
        return qs.filter(Q(team_id__in=teams) | Q(owner__team_id__in=teams) | Q(owner=user))
    if user.team_id is None:
        return qs.filter(owner=user)
    return qs.filter(Q(owner=user) | Q(owner__isnull=True, team_id=user.team_id))


def leads_whose_history_is_readable_by(user: User) -> QuerySet[Lead] | bool:
    """Audit entries about a lead are read by those who see the lead (all of them when the
    user sees every lead); registered with `leadcrm.selectors.readable_targets`."""
    return True if user.sees_all_leads else leads_visible_to(user)


def lead_ids_visible_to(user: User | None, lead_ids) -> set[int]:
    """Which of these leads the caller may see, by the rule above. No user (automation, a
    system job) sees every lead. Natural-key lookups (an e-mail that exists) use this to
    decide whether the caller may change or learn anything about the lead they found."""
    ids = {pk for pk in lead_ids if pk is not None}
    if user is None or not ids:
        return ids
    if user.is_authenticated and user.is_active and user.sees_all_leads:
        return ids
    return set(leads_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))


def lead_ids_by_email(user: User | None, emails) -> dict[str, int]:
    """e-mail (lower case) -> id of the leads the caller may see among these addresses; one
    the caller may not see is absent, exactly as one that does not exist."""
    wanted = {e.strip().lower() for e in emails if isinstance(e, str) and e.strip()}
    found = dict(Lead.objects.filter(email__in=wanted).values_list("email", "pk")) if wanted else {}
    visible = lead_ids_visible_to(user, found.values())
    return {email: pk for email, pk in found.items() if pk in visible}


def visible_lead_or_404(user: User, pk, *related: str) -> Lead:
    """A lead the user may see, or 404: an SDR must not learn that another's lead exists."""
    qs = leads_visible_to(user)
    return get_object_or_404(qs.select_related(*related) if related else qs, pk=pk)


def user_may_see_lead(user: User | None, lead: Lead) -> bool:
    return lead.pk in lead_ids_visible_to(user, [lead.pk])


def user_may_work_lead(user: User, lead: Lead, to_stage: str | None = None) -> bool:
    """Sales actions (moves, BANT, offers) on a lead the user can see. Marketing qualifies
    leads (MQL) and may disqualify them, nothing on the sales side."""
    if user.works_leads:
        return True
    if user.role == Role.MARKETING and to_stage is not None:
        return to_stage in (Stage.MQL, Stage.DISQUALIFIED) and lead.stage in (Stage.MCL, Stage.MQL, Stage.RECYCLED)
    return False


def user_may_edit_lead(user: User) -> bool:
    return user.is_admin_role or user.role in (Role.MARKETING, Role.MANAGER, Role.SDR)


def lead_history(*, lead: Lead, limit: int = 500) -> list[dict]:
    """Stage changes, assignments, score changes, touchpoints, e-mails and audited edits
    (field changes, BANT, partner answers) of one lead, newest first, in one shape. Six
    queries whatever the length."""
    items: list[dict] = []
    for sc in StageChange.objects.filter(lead=lead).select_related("actor")[:limit]:
        items.append(
            {
                "kind": "stage_change",
                "at": sc.created_at,
                "from_stage": sc.from_stage,
                "to_stage": sc.to_stage,
                "actor_type": sc.actor_type,
                "actor": sc.actor.username if sc.actor else None,
                "reason": sc.reason,
            }
        )
    for a in Assignment.objects.filter(lead=lead).select_related("actor", "from_owner", "to_owner")[:limit]:
        items.append(
            {
                "kind": "assignment",
                "at": a.created_at,
                "from_owner": a.from_owner.username if a.from_owner else None,
                "to_owner": a.to_owner.username if a.to_owner else None,
                "team": a.team_id,
                "actor_type": a.actor_type,
                "actor": a.actor.username if a.actor else None,
                "reason": a.reason,
                "details": a.details,
            }
        )
    for c in ScoreChange.objects.filter(lead=lead)[:limit]:
        items.append(
            {
                "kind": "score_change",
                "at": c.created_at,
                "old_score": c.old_score,
                "new_score": c.new_score,
                "fit_score": c.fit_score,
                "engagement_score": c.engagement_score,
                "grade": c.grade,
                "reasons": c.reasons,
            }
        )
    for t in Touchpoint.objects.filter(lead=lead).select_related("author")[:limit]:
        items.append(
            {
                "kind": "touchpoint",
                "at": t.occurred_at,
                "type": t.type,
                "url": t.url,
                "utm": {
                    k: getattr(t, f"utm_{k}")
                    for k in ("source", "medium", "campaign", "term", "content")
                    if getattr(t, f"utm_{k}")
                },
                "properties": t.properties,
                "actor": t.author.username if t.author else None,
            }
        )
    # The e-mails nurturing sent it (or tried to): one query, the message's latest news.
    from nurturing.models import Message

    for m in Message.objects.filter(lead=lead).order_by("-queued_at", "-id")[:limit]:
        items.append(
            {
                "kind": "message",
                "at": m.sent_at or m.queued_at,
                "message": m.pk,
                "subject": m.subject,
                "status": m.status,
                "template": m.template_id,
                "step": m.step,
                "variant": m.variant,
                "actor": None,
            }
        )
    audited = (
        AuditEntry.objects.filter(target_type="leads.lead", target_id=str(lead.pk))
        .exclude(action__in=HISTORY_OWN_ROWS)
        .select_related("actor")
        .order_by("-at", "-id")[:limit]
    )
    for e in audited:
        items.append(
            {
                "kind": "audit",
                "at": e.at,
                "action": e.action,
                "changes": e.changes,
                "actor_type": e.actor_kind,
                "actor": e.actor.username if e.actor else None,
                "reason": (e.details or {}).get("reason", ""),
            }
        )
    items.sort(key=lambda i: i["at"], reverse=True)
    return items[:limit]


# Audited actions the history already shows through their own rows (StageChange, Assignment).
HISTORY_OWN_ROWS = ("lead.create", "lead.stage", "lead.assign")


def funnel_counts(leads: QuerySet[Lead]) -> dict:
    """Leads per current stage, how many ever reached each funnel stage (from the history,
    so a lead disqualified at SQL still counts as having reached SQL), and the conversion
    rate between consecutive funnel stages (`leads.funnel`). Two grouped queries whatever
    the volume."""
    counts = {s: 0 for s in Stage.values}
    for row in leads.order_by().values("stage").annotate(n=Count("id")):
        counts[row["stage"]] = row["n"]
    return funnel.funnel(counts, _furthest_funnel_ranks(leads))


def _furthest_funnel_ranks(leads: QuerySet[Lead]) -> list[tuple[int, int]]:
    """(rank in FUNNEL_STAGES of the furthest funnel stage a lead's history entered, number
    of leads) for the given leads. One query."""
    lead_sql, params = leads.order_by().values("pk").query.sql_with_params()
    table = StageChange._meta.db_table
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT top, COUNT(*) FROM (SELECT sc.lead_id, MAX({funnel.rank_sql('sc.to_stage')}) AS top "
            f"FROM {table} sc WHERE sc.lead_id IN ({lead_sql}) GROUP BY sc.lead_id) x WHERE top >= 0 GROUP BY top",
            params,
        )
        return [(int(top), int(n)) for top, n in cur.fetchall()]


def mql_threshold() -> int:
    """The score a lead needs for MQL. The scoring app owns rule sets and their thresholds;
    leads must not import it (scoring builds on leads), so settings name the selector."""
    path = getattr(settings, "LEADCRM_MQL_THRESHOLD_SELECTOR", "")
    if path:
        return import_string(path)()
    return settings.LEADCRM_MQL_THRESHOLD


def lead_move_facts(*, lead: Lead, to: str, user: User | None, reason: str = "", override: bool = False):
    """What the lifecycle guards need, read the same way for a move and for the page that
    offers it."""
    bant = Bant.objects.filter(lead=lead).first()
    opportunity = Opportunity.objects.filter(lead=lead).first()
    needs_demo = (lead.stage, to) in lifecycle.SKIP_RULES
    return lifecycle.MoveFacts(
        from_stage=lead.stage,
        to_stage=to,
        score=lead.score,
        mql_threshold=mql_threshold(),
        override=override,
        reason=reason or "",
        bant_missing=tuple(bant.missing) if bant else BANT_CRITERIA,
        has_owner=lead.owner_id is not None,
        actor_is_owner=user is not None and user.pk == lead.owner_id,
        opportunity_complete=bool(
            opportunity and opportunity.status == OpportunityStatus.OPEN and opportunity.is_complete
        ),
        has_demo_request=needs_demo and Touchpoint.objects.filter(lead=lead, type=TouchpointType.DEMO_REQUEST).exists(),
    )


def lead_stage_options(*, lead: Lead, user: User) -> list[dict]:
    """The moves the lead page offers, each with the guard that would refuse it now. The
    facts are read once (BANT, offer, threshold, demo request) and shared by every target."""
    skip = any(src == lead.stage for src, _dst in lifecycle.SKIP_RULES)
    base = lead_move_facts(lead=lead, to=lead.stage, user=user)
    demo = skip and Touchpoint.objects.filter(lead=lead, type=TouchpointType.DEMO_REQUEST).exists()

    def facts_for(to: str) -> lifecycle.MoveFacts:
        return dataclasses.replace(base, to_stage=to, has_demo_request=demo)

    return [
        {
            "to": dst,
            "allowed": failure is None,
            "guard": failure.guard if failure else None,
            "message": failure.message if failure else "",
        }
        for dst, failure in lifecycle.allowed_targets(facts_for, lead.stage)
    ]


# The names the leads list filters by (API and pages); a saved segment takes the same.
LEAD_FILTER_NAMES = frozenset(LeadFilter.base_filters)
# Those of them that take several values (`stage=MQL&stage=SQL`).
LEAD_FILTER_MULTI = frozenset(
    name for name, f in LeadFilter.base_filters.items() if isinstance(f, django_filters.MultipleChoiceFilter)
)


def leads_filtered(qs: QuerySet[Lead], params: dict) -> QuerySet[Lead]:
    """`qs` narrowed by the leads list's filters (leads.filters) for a caller with no user
    of its own (a saved segment, whose values `leads_filter_errors` checked first)."""
    return LeadFilter(params, queryset=qs).qs


def leads_with_properties(qs: QuerySet[Lead], wanted: dict[str, list]) -> QuerySet[Lead]:
    """`qs` narrowed to leads whose custom fields hold one of the wanted values per key, by
    the leads list's own rule (a segment saved from the list holds what the list showed)."""
    return properties_filtered(qs, wanted)


def properties_in_query(params) -> dict[str, list[str]]:
    """The `properties.<key>` filters of a leads-list query string, as {key: [values]}."""
    return {
        key[len(PROPERTIES_PREFIX) :]: [v for v in params.getlist(key) if v != ""]
        for key in params
        if key.startswith(PROPERTIES_PREFIX) and len(key) > len(PROPERTIES_PREFIX) and any(params.getlist(key))
    }


def leads_filter_errors(params: dict) -> dict[str, list[str]]:
    """What the leads list's filters cannot read in these values, per name (empty: none)."""
    form = LeadFilter(params, queryset=Lead.objects.none()).form
    return {} if form.is_valid() else {k: [str(m) for m in v] for k, v in form.errors.items()}


def tasks_visible_to(user: User | None) -> QuerySet[Task]:
    """Tasks on the leads the user may see (no user: automation sees every task)."""
    qs = Task.objects.select_related("lead", "assignee")
    if user is None:
        return qs
    if user.is_authenticated and user.is_active and user.sees_all_leads:
        return qs
    return qs.filter(lead__in=leads_visible_to(user).values("pk"))


def tasks_filtered(qs: QuerySet[Task], *, user: User, params, now=None) -> QuerySet[Task]:
    """The task lists' filters: `lead`, `assignee` (an id or `me`), `done` (true/false),
    `due` (`overdue`, `today`: in the current time zone, and not done)."""
    now = now or timezone.now()
    if (lead := inputs.int_or_none(params.get("lead"))) is not None:
        qs = qs.filter(lead_id=lead)
    assignee = params.get("assignee")
    if assignee == "me":
        qs = qs.filter(assignee=user)
    elif (assignee_id := inputs.int_or_none(assignee)) is not None:
        qs = qs.filter(assignee_id=assignee_id)
    if params.get("done") in ("true", "false"):
        qs = qs.filter(done_at__isnull=params["done"] == "false")
    due = params.get("due")
    if due == "overdue":
        qs = qs.filter(done_at__isnull=True, due_at__lt=now)
    elif due == "today":
        end = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
        qs = qs.filter(done_at__isnull=True, due_at__lt=end)
    return qs


def my_open_tasks(user: User, *, now: dt.datetime | None = None, limit: int = 50) -> dict[str, list[Task]]:
    """The queue's panel: the user's open tasks due by the end of today, overdue first."""
    now = now or timezone.now()
    qs = tasks_filtered(tasks_visible_to(user), user=user, params={"assignee": "me", "due": "today"}, now=now)
    rows = list(qs[:limit])
    return {"overdue": [t for t in rows if t.due_at < now], "today": [t for t in rows if t.due_at >= now]}

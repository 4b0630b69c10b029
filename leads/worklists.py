"""Reads for the pages sellers work in: the queue (my leads + my team's pool, by priority)
and the leads list, both filtered by `leads.filters` as the API is. One query for the rows
whatever their number; the SLA due time comes from the routing app's clocks when it is
installed."""

from __future__ import annotations

from django.apps import apps
from django.db.models import DateTimeField, F, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import NullIf

from accounts.models import User
from leads.filters import filter_leads
from leads.models import OPEN_STAGES, Lead, SavedFilter
from leads.selectors import leads_visible_to

QUEUE_LIMIT = 50
LIST_LIMIT = 100


def sla_clock_model():
    return apps.get_model("routing", "SlaClock") if apps.is_installed("routing") else None


def with_sla_due(qs: QuerySet[Lead]) -> QuerySet[Lead]:
    model = sla_clock_model()
    if model is None:
        return qs.annotate(sla_due=Value(None, output_field=DateTimeField()))
    due = model.objects.filter(lead=OuterRef("pk"), closed_at__isnull=True).order_by("due_at").values("due_at")[:1]
    return qs.annotate(sla_due=Subquery(due))


PRIORITY = (F("sla_due").asc(nulls_last=True), NullIf(F("grade"), Value("")).asc(nulls_last=True), "-score", "id")


def _queue_base(user: User, params) -> tuple[QuerySet[Lead], QuerySet[Lead]]:
    """(the user's open leads, their team's unassigned pool), filtered."""
    visible = filter_leads(leads_visible_to(user).filter(stage__in=OPEN_STAGES), params, user=user)
    mine = visible.filter(owner=user)
    pool = visible.filter(owner__isnull=True, team_id=user.team_id) if user.team_id else visible.none()
    scope = params.get("scope", "")
    if scope == "mine":
        pool = visible.none()
    elif scope == "pool":
        mine = visible.none()
    return mine, pool


def queue_leads(*, user: User, params) -> QuerySet[Lead]:
    """Open leads owned by the user and their team's unassigned pool, most urgent first: the
    SLA due time, then the grade (A first), then the score. One query (the CSV export)."""
    mine, pool = _queue_base(user, params)
    return with_sla_due(mine | pool).select_related("owner").order_by(*PRIORITY)


def _priority(lead: Lead) -> tuple:
    due = lead.sla_due
    return (due is None, due.timestamp() if due else 0, lead.grade or "~", -lead.score, lead.pk)


def queue_rows(*, user: User, params, limit: int, offset: int = 0) -> list[Lead]:
    """`limit` leads of `queue_leads` from `offset`. The first page in two cheap queries: SLA
    clocks belong to owners, so only the user's own leads need the due time; the pool, often
    much longer, is read in grade and score order and cut at `limit`. Merging the two sorted
    heads gives the same order. Later pages read `queue_leads` itself."""
    if offset:
        return list(queue_leads(user=user, params=params)[offset : offset + limit])
    mine, pool = _queue_base(user, params)
    head = list(with_sla_due(mine).select_related("owner").order_by(*PRIORITY)[:limit])
    head += list(pool.annotate(sla_due=Value(None, output_field=DateTimeField())).order_by(*PRIORITY[1:])[:limit])
    return sorted(head, key=_priority)[:limit]


def pool_head(*, user: User, params, limit: int) -> list[Lead]:
    """The best leads of the user's team pool (grade, then score): shown beside the queue
    when the user's own urgent leads fill its first page, so the pool is never out of sight."""
    _, pool = _queue_base(user, params)
    return list(pool.annotate(sla_due=Value(None, output_field=DateTimeField())).order_by(*PRIORITY[1:])[:limit])


def leads_list(*, user: User, params) -> QuerySet[Lead]:
    qs = filter_leads(leads_visible_to(user), params, user=user)
    order = {"score": ("-score", "-id"), "created": ("-created_at", "-id"), "activity": ("-last_activity_at", "-id")}
    return qs.select_related("owner").order_by(*order.get(params.get("order", ""), ("-created_at", "-id")))


def saved_filters(*, user: User, page: str) -> list[SavedFilter]:
    return list(SavedFilter.objects.filter(user=user, page=page).order_by("name"))

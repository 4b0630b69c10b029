"""Reads for the pages sellers work in: the queue (my leads + my team's pool, by priority)
and the filtered leads list. One query for the rows whatever their number; the SLA due time
comes from the routing app's clocks when it is installed."""

from __future__ import annotations

from django.apps import apps
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import NullIf

from accounts.models import User
from leads.models import OPEN_STAGES, Grade, Lead, SavedFilter, Stage
from leads.selectors import leads_visible_to

# The next forward stage a queue row's "next stage" button proposes.
NEXT_STAGE = {
    Stage.MCL: Stage.MQL,
    Stage.MQL: Stage.SQL,
    Stage.SQL: Stage.SAL,
    Stage.SAL: Stage.CO,
    Stage.CO: Stage.WO,
    Stage.RECYCLED: Stage.MQL,
}
QUEUE_LIMIT = 50
LIST_LIMIT = 100


def sla_clock_model():
    return apps.get_model("routing", "SlaClock") if apps.is_installed("routing") else None


def with_sla_due(qs: QuerySet[Lead]) -> QuerySet[Lead]:
    model = sla_clock_model()
    if model is None:
        return qs.annotate(sla_due=Value(None))
    due = model.objects.filter(lead=OuterRef("pk"), closed_at__isnull=True).order_by("due_at").values("due_at")[:1]
    return qs.annotate(sla_due=Subquery(due))


def apply_filters(qs: QuerySet[Lead], params) -> QuerySet[Lead]:
    """The list filters both pages share (query-string names): q, stage, grade, source,
    campaign, score_min, owner (a user id, "me" or "none")."""
    q = params.get("q", "").strip()
    if q:
        qs = qs.filter(
            Q(email__icontains=q)
            | Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
            | Q(company_name__icontains=q)
        )
    stage = params.get("stage", "")
    if stage in Stage.values:
        qs = qs.filter(stage=stage)
    grade = params.get("grade", "")
    if grade in Grade.values:
        qs = qs.filter(grade=grade)
    if params.get("source"):
        qs = qs.filter(source=params["source"])
    if params.get("campaign"):
        qs = qs.filter(utm_campaign=params["campaign"])
    score_min = params.get("score_min", "")
    if score_min.isdigit():
        qs = qs.filter(score__gte=int(score_min))
    return qs


def queue_leads(*, user: User, params) -> QuerySet[Lead]:
    """Open leads owned by the user and their team's unassigned pool, most urgent first: the
    SLA due time, then the grade (A first), then the score."""
    mine = Q(owner=user)
    if user.team_id:
        mine |= Q(owner__isnull=True, team_id=user.team_id)
    qs = leads_visible_to(user).filter(mine, stage__in=OPEN_STAGES)
    scope = params.get("scope", "")
    if scope == "mine":
        qs = qs.filter(owner=user)
    elif scope == "pool":
        qs = qs.filter(owner__isnull=True)
    qs = with_sla_due(apply_filters(qs, params)).select_related("owner")
    return qs.order_by(
        F("sla_due").asc(nulls_last=True), NullIf(F("grade"), Value("")).asc(nulls_last=True), "-score", "id"
    )


def leads_list(*, user: User, params) -> QuerySet[Lead]:
    qs = apply_filters(leads_visible_to(user), params)
    owner = params.get("owner", "")
    if owner == "me":
        qs = qs.filter(owner=user)
    elif owner == "none":
        qs = qs.filter(owner__isnull=True)
    elif owner.isdigit():
        qs = qs.filter(owner_id=int(owner))
    order = {"score": ("-score", "-id"), "created": ("-created_at", "-id"), "activity": ("-last_activity_at", "-id")}
    return qs.select_related("owner").order_by(*order.get(params.get("order", ""), ("-created_at", "-id")))


def saved_filters(*, user: User, page: str) -> list[SavedFilter]:
    return list(SavedFilter.objects.filter(user=user, page=page).order_by("name"))

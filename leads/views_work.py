"""The pages sellers work in: the queue, the leads list, the lead page and their actions.

Thin views: reads through `leads.selectors` / `leads.worklists`, writes through
`leads.services`. Actions answer htmx requests with the updated fragment and plain form
posts with a redirect and a message."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from leadcrm import inputs
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import Conflict, ServiceError, TransitionRefused
from leads import lifecycle, queue_html, selectors, services, timeline_html, worklists
from leads.exports import csv_response
from leads.fields import EXPORT_COLUMNS
from leads.models import (
    BANT_FIELDS,
    OPEN_STAGES,
    Bant,
    ConsentStatus,
    Grade,
    Lead,
    Opportunity,
    ScoreChange,
    Stage,
    TaskKind,
    TouchpointType,
)
from leads.normalize import normalize_currency

POOL_SHOWN = 10  # pool leads shown under a full first page of one's own leads
HISTORY_LIMIT = 100  # newest timeline entries on the page; the API pages through all of them


def LEADS_PREFIX() -> str:  # noqa: N802
    """ "/leads/": the queue's rows build their links from it (a reverse() per link and row
    costs more than the rest of the row)."""
    return reverse("leads-list")


def _actor(request: HttpRequest) -> Actor:
    return Actor(request.user, ActorType.USER)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _export(qs, filename: str) -> HttpResponse:
    header = [name for name, _ in EXPORT_COLUMNS]
    rows = qs.values_list(*[field for _, field in EXPORT_COLUMNS]).iterator(chunk_size=2000)
    return csv_response(filename, header, rows)


def _filter_query(request: HttpRequest, drop=("export", "page")) -> str:
    params = request.GET.copy()
    for key in drop:
        params.pop(key, None)
    return params.urlencode()


# --- queue ----------------------------------------------------------------------------


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    user = request.user
    if not user.works_leads:
        return redirect("leads-list")
    if request.GET.get("export") == "csv":
        return _export(worklists.queue_leads(user=user, params=request.GET), "queue.csv")
    page = inputs.int_or_none(request.GET.get("page", "1"), minimum=1, maximum=10**5) or 1
    limit = worklists.QUEUE_LIMIT
    rows = worklists.queue_rows(user=user, params=request.GET, limit=limit + 1, offset=(page - 1) * limit)
    shown = rows[:limit]
    labels = queue_html.Labels()
    # The pool waits below when the user's own urgent leads fill the first page.
    pool = []
    if page == 1 and not request.GET.get("scope") and len(rows) > limit and all(r.owner_id for r in shown):
        pool = worklists.pool_head(user=user, params=request.GET, limit=POOL_SHOWN)
    context = {
        "leads": shown,
        "rows": [queue_html.queue_row(lead, labels) for lead in shown],
        "pool_rows": [queue_html.queue_row(lead, labels) for lead in pool],
        "more": len(rows) > limit,
        "page": page,
        "next_query": _page_query(request, page + 1),
        "previous_query": _page_query(request, page - 1) if page > 1 else "",
        "limit": limit,
        "params": request.GET,
        "query": _filter_query(request),
        "saved": worklists.saved_filters(user=user, page="queue"),
        "stages": [s for s in Stage if s in OPEN_STAGES],
        "grades": Grade.values,
        "tasks": selectors.my_open_tasks(user),
        "now": timezone.now(),
    }
    return render(request, "leads/queue.html", context)


@login_required
@require_POST
def saved_filter_save(request: HttpRequest) -> HttpResponse:
    page = request.POST.get("page", "queue")
    page = page if page in ("queue", "leads") else "queue"
    try:
        services.saved_filter_save(
            user=request.user, page=page, name=request.POST.get("name", ""), query=request.POST.get("query", "")
        )
        messages.success(request, _("Filter saved."))
    except ServiceError:
        messages.error(request, _("Give the filter a name."))
    target = reverse("queue" if page == "queue" else "leads-list")
    return redirect(f"{target}?{request.POST.get('query', '')}")


@login_required
@require_POST
def saved_filter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    services.saved_filter_delete(user=request.user, filter_id=pk)
    messages.success(request, _("Filter deleted."))
    return redirect(request.POST.get("page") == "leads" and "leads-list" or "queue")


# --- leads list -----------------------------------------------------------------------


@login_required
def leads_list(request: HttpRequest) -> HttpResponse:
    qs = worklists.leads_list(user=request.user, params=request.GET)
    if request.GET.get("export") == "csv":
        return _export(qs, "leads.csv")
    page = inputs.int_or_none(request.GET.get("page", "1"), minimum=1, maximum=10**6) or 1
    start = (page - 1) * worklists.LIST_LIMIT
    rows = list(qs[start : start + worklists.LIST_LIMIT + 1])
    context = {
        "rows": rows[: worklists.LIST_LIMIT],
        "page": page,
        "has_next": len(rows) > worklists.LIST_LIMIT,
        "params": request.GET,
        "query": _filter_query(request),
        "saved": worklists.saved_filters(user=request.user, page="leads"),
        "stages": list(Stage),
        "grades": Grade.values,
    }
    return render(request, "leads/leads_list.html", context)


# --- lead page ------------------------------------------------------------------------


def _predictive():
    if not apps.is_installed("scoring"):
        return None
    from scoring import selectors as scoring_selectors

    # The model's metadata only (its pickled pipeline can weigh megabytes).
    return scoring_selectors.predictive_models().filter(is_active=True).order_by("-version").first()


def _open_sla(lead: Lead):
    model = worklists.sla_clock_model()
    if model is None:
        return None
    return model.objects.filter(lead=lead, closed_at__isnull=True).order_by("due_at").first()


def _page_query(request: HttpRequest, page: int) -> str:
    params = request.GET.copy()
    params["page"] = str(page)
    return params.urlencode()


@login_required
def lead_detail(request: HttpRequest, pk: int) -> HttpResponse:
    lead = selectors.visible_lead_or_404(request.user, pk, "company", "owner", "team")
    user = request.user
    bant = Bant.objects.filter(lead=lead).first()
    opportunity = Opportunity.objects.filter(lead=lead).first()
    options = selectors.lead_stage_options(lead=lead, user=user)
    for option in options:
        option["may"] = selectors.user_may_work_lead(user, lead, option["to"])
        if option["guard"] == "reason_required":  # the button's form asks for the reason
            option.update(allowed=True, guard=None, message="", needs_reason=True)
    scores = list(ScoreChange.objects.filter(lead=lead).order_by("-created_at", "-id")[:60])
    history = selectors.lead_history(lead=lead, limit=HISTORY_LIMIT)
    model = _predictive()
    offer_stages = lifecycle.offer_stages()
    context = {
        "lead": lead,
        "bant": bant,
        "opportunity": opportunity,
        # The offer form: shown where the lifecycle allows the move that creates the offer.
        "offer_open": lead.stage in offer_stages,
        "offer_stages": ", ".join(offer_stages),
        "options": options,
        "may_work": user.works_leads,
        "may_claim": lead.owner_id is None and user.works_leads and lead.is_open,
        "history": history,
        "timeline": timeline_html.timeline(history, request),
        "score_points": [
            {"at": c.created_at.isoformat(), "score": c.new_score, "fit": c.fit_score, "eng": c.engagement_score}
            for c in reversed(scores)
        ],
        "reasons": _reasons(scores[0].reasons if scores else []),
        "company": lead.company,
        "model": model,
        "sla": _open_sla(lead),
        "consent": ConsentStatus(lead.consent_status).label,
        "activity_types": [
            (TouchpointType.CALL, _("Call")),
            (TouchpointType.NOTE, _("Note")),
            (TouchpointType.MEETING, _("Meeting")),
            (TouchpointType.EMAIL_SENT, _("E-mail sent")),
        ],
        "today": timezone.localdate(),
        "tasks": list(selectors.tasks_visible_to(user).filter(lead=lead).order_by("done_at", "due_at")[:50]),
        "task_kinds": TaskKind.choices,
        "now": timezone.now(),
    }
    return render(request, "leads/lead_detail.html", context)


def _reasons(raw) -> list[dict]:
    """Scoring's reasons ({rule, name, kind, points}) in one shape for the page."""
    out = []
    for r in raw if isinstance(raw, list) else []:
        if isinstance(r, dict):
            out.append(
                {"label": r.get("name") or r.get("rule") or "", "kind": r.get("kind", ""), "points": r.get("points")}
            )
        else:
            out.append({"label": str(r), "kind": "", "points": None})
    return out


def _back(request: HttpRequest, lead: Lead) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("lead-detail", pk=lead.pk)


def _row(request: HttpRequest, lead_id: int, *, error: str = "", notice: str = "") -> HttpResponse:
    """The queue row of a lead after an action (empty when it left the queue)."""
    qs = worklists.queue_leads(user=request.user, params=QueryDict())
    lead = qs.filter(pk=lead_id).first()
    return HttpResponse(queue_html.queue_row(lead, queue_html.Labels(), lead_id=lead_id, error=error, notice=notice))


def _done(request: HttpRequest, lead: Lead, *, ok: str = "", error: str = "") -> HttpResponse:
    if _is_htmx(request):
        return _row(request, lead.pk, error=error, notice=ok)
    if error:
        messages.error(request, error)
    elif ok:
        messages.success(request, ok)
    return _back(request, lead)


def _workable(request: HttpRequest, pk: int, to_stage: str | None = None) -> Lead:
    lead = selectors.visible_lead_or_404(request.user, pk, "company", "owner", "team")
    if not selectors.user_may_work_lead(request.user, lead, to_stage):
        raise PermissionDenied
    return lead


def _errors_text(exc: ServiceError) -> str:
    return " ".join(str(m) for msgs in exc.errors.values() for m in (msgs if isinstance(msgs, list) else [msgs]))


@login_required
@require_POST
def lead_claim(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _workable(request, pk)
    try:
        services.lead_assign(
            lead_id=lead.pk,
            owner=request.user,
            actor=_actor(request),
            reason="Claimed from the pool",
            only_unowned=True,
        )
    except Conflict:
        return _done(request, lead, error=_("This lead already has an owner."))
    except ServiceError as exc:
        return _done(request, lead, error=_errors_text(exc))
    return _done(request, lead, ok=_("Lead claimed."))


@login_required
@require_POST
def lead_log(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _workable(request, pk)
    kind = request.POST.get("type", TouchpointType.NOTE)
    note = (request.POST.get("note") or request.headers.get("HX-Prompt", "")).strip()[:5000]
    if kind == TouchpointType.NOTE and not note:
        return _done(request, lead, error=_("Write the note first."))
    follow_up = _due_at(request, "follow_up") if request.POST.get("follow_up") else None
    if request.POST.get("follow_up") and follow_up is None:
        return _done(request, lead, error=_("The follow-up needs a date and time."))
    try:
        with transaction.atomic():
            services.lead_log_activity(lead_id=lead.pk, type=kind, note=note, actor=_actor(request))
            if follow_up is not None:  # "call back on…": a task for the lead's owner, or the caller
                services.tasks_create(
                    actor=_actor(request),
                    lead_ids=[lead.pk],
                    kind=TaskKind.CALL,
                    due_at=follow_up,
                    title=_("Follow up"),
                )
    except ServiceError as exc:
        return _done(request, lead, error=_errors_text(exc))
    return _done(request, lead, ok=_("Activity logged."))


@login_required
@require_POST
def lead_move(request: HttpRequest, pk: int) -> HttpResponse:
    to = request.POST.get("to", "")
    if to not in Stage.values:
        raise Http404
    lead = _workable(request, pk, to)
    reason = (request.POST.get("reason") or request.headers.get("HX-Prompt", "")).strip()[:2000]
    try:
        services.lead_transition(
            lead_id=lead.pk, to=to, reason=reason, override=bool(request.POST.get("override")), actor=_actor(request)
        )
    except TransitionRefused as exc:
        return _done(request, lead, error=_("Move to %(stage)s refused: %(message)s") % {"stage": to, "message": exc})
    return _done(request, lead, ok=_("Moved to %(stage)s.") % {"stage": to})


@login_required
@require_POST
def lead_bant(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _workable(request, pk)
    fields = {f: request.POST.get(f, "").strip()[:5000] for f in BANT_FIELDS}
    services.lead_bant_set(lead_id=lead.pk, actor=_actor(request), **fields)
    messages.success(request, _("BANT saved."))
    return _back(request, lead)


@login_required
@require_POST
def lead_opportunity(request: HttpRequest, pk: int) -> HttpResponse:
    lead = _workable(request, pk, Stage.CO)
    try:
        amount = Decimal(request.POST.get("amount", "").replace(",", ".").replace(" ", ""))
        expected = dt.date.fromisoformat(request.POST.get("expected_close", ""))
        currency = normalize_currency(request.POST.get("currency", "EUR"))
        if amount < 0:
            raise ValueError
    except (InvalidOperation, ValueError):
        messages.error(request, _("Enter an amount, an ISO 4217 currency (EUR, USD...) and an expected close date."))
        return _back(request, lead)
    try:
        services.lead_create_opportunity(
            lead_id=lead.pk, actor=_actor(request), amount=amount, currency=currency, expected_close=expected
        )
    except TransitionRefused as exc:
        messages.error(request, _("Move to %(stage)s refused: %(message)s") % {"stage": Stage.CO, "message": exc})
        return _back(request, lead)
    messages.success(request, _("Opportunity created; the lead is now CO."))
    return _back(request, lead)


def _due_at(request: HttpRequest, name: str = "due_at") -> dt.datetime | None:
    """A `datetime-local` field read in the current time zone (the user's)."""
    try:
        value = dt.datetime.fromisoformat(request.POST.get(name, ""))
    except ValueError:
        return None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


@login_required
@require_POST
def lead_task_add(request: HttpRequest, pk: int) -> HttpResponse:
    lead = selectors.visible_lead_or_404(request.user, pk)
    due_at = _due_at(request)
    if due_at is None:
        messages.error(request, _("Give the task a due date and time."))
        return _back(request, lead)
    try:
        services.tasks_create(
            actor=_actor(request),
            lead_ids=[lead.pk],
            kind=request.POST.get("kind", TaskKind.TODO),
            due_at=due_at,
            title=request.POST.get("title", "").strip(),
        )
    except ServiceError as exc:
        messages.error(request, _errors_text(exc))
    else:
        messages.success(request, _("Task added."))
    return _back(request, lead)


@login_required
@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(selectors.tasks_visible_to(request.user), pk=pk)
    try:
        services.task_update(actor=_actor(request), task_id=task.pk, done=request.POST.get("done") == "1")
    except ServiceError as exc:
        messages.error(request, _errors_text(exc))
    return _back(request, task.lead)

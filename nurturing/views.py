"""Marketing's segment pages: the list with the builder, one segment's members and history.
Reads through selectors, writes through services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leadcrm.permissions import page_actor
from leads import selectors as lead_selectors
from nurturing import selectors, services
from nurturing.forms import SegmentForm, list_query_filter

MEMBERS_SHOWN = 100


def _require_marketing(request: HttpRequest) -> Actor:
    return page_actor(request, Role.MARKETING, message=_("Segments are managed by marketing."))


def _errors(request: HttpRequest, exc: ServiceError) -> None:
    for field, errors in exc.errors.items():
        messages.error(request, f"{field}: {' '.join(errors)}")


def _choices(request: HttpRequest) -> list[tuple[int, str]]:
    return [(s.pk, s.name) for s in selectors.segments_visible_to(request.user)]


@login_required
@require_http_methods(["GET", "POST"])
def segments_page(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)
    form = SegmentForm(request.POST or None, segment_choices=_choices(request))
    if request.method == "POST":
        if form.is_valid():
            try:
                segment = services.segment_create(
                    actor=actor,
                    name=form.cleaned_data["name"],
                    kind=form.cleaned_data["kind"],
                    filter=form.segment_filter() if form.cleaned_data["kind"] == "dynamic" else {},
                )
            except ServiceError as exc:
                _errors(request, exc)
            else:
                messages.success(request, _("Segment created."))
                return redirect("segment-detail", pk=segment.pk)
    segments = list(selectors.segments_visible_to(request.user))
    counts = selectors.segment_counts(segments=segments, user=request.user)
    rows = [(s, counts.get(s.pk, 0)) for s in segments]
    return render(request, "nurturing/segments.html", {"rows": rows, "form": form})


@login_required
@require_POST
def segment_count_preview(request: HttpRequest) -> HttpResponse:
    """The builder's live count (htmx): how many leads the form's filter means now."""
    _require_marketing(request)
    data = request.POST.copy()
    data["name"] = data.get("name") or "preview"  # the count needs no name yet
    form = SegmentForm(data, segment_choices=_choices(request))
    count, error = None, ""
    if form.is_valid():
        try:
            count = selectors.segment_filter_count(raw_filter=form.segment_filter())
        except ServiceError as exc:
            error = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
    else:
        error = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    return render(request, "nurturing/_segment_count.html", {"count": count, "error": error})


@login_required
@require_POST
def segment_from_list(request: HttpRequest) -> HttpResponse:
    """ "Save as segment" on the leads list: its current filters become a dynamic segment."""
    actor = _require_marketing(request)
    query = request.POST.get("query", "")
    params = QueryDict(query)
    spec = list_query_filter(
        params, names=sorted(lead_selectors.LEAD_FILTER_NAMES), multi=lead_selectors.LEAD_FILTER_MULTI
    )
    if properties := lead_selectors.properties_in_query(params):
        spec["properties"] = properties
    try:
        segment = services.segment_create(actor=actor, name=request.POST.get("name", "").strip(), filter=spec)
    except ServiceError as exc:
        _errors(request, exc)
        return redirect(f"{reverse('leads-list')}?{query}")
    messages.success(request, _("Segment created from the list's filters."))
    return redirect("segment-detail", pk=segment.pk)


@login_required
@require_http_methods(["GET", "POST"])
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _require_marketing(request)
    segment = get_object_or_404(selectors.segments_visible_to(request.user), pk=pk)
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "delete":
                services.segment_delete(actor=actor, segment_id=segment.pk)
                messages.success(request, _("Segment deleted."))
                return redirect("segments")
            if action == "rename":
                services.segment_update(actor=actor, segment_id=segment.pk, name=request.POST.get("name", "").strip())
            elif action in ("add", "remove"):
                ids = [int(x) for x in request.POST.get("leads", "").replace(",", " ").split() if x.isdigit()]
                services.segment_members_change(actor=actor, segment_id=segment.pk, **{action: ids})
                messages.success(request, _("Members updated."))
            elif action == "import":
                upload = request.FILES.get("file")
                if upload is None:
                    raise ServiceError({"file": [_("Choose a CSV file.")]})
                result = services.segment_members_import(actor=actor, segment_id=segment.pk, data=upload.read())
                messages.success(
                    request,
                    _("%(added)d added, %(already)d already in the list, %(missing)d not found.")
                    % {"added": result.added, "already": result.already, "missing": result.not_found_count},
                )
                if result.not_found:
                    messages.warning(request, _("Not found: %s") % ", ".join(result.not_found))
        except ServiceError as exc:
            _errors(request, exc)
        except Conflict as exc:
            messages.error(request, str(exc))
        return redirect("segment-detail", pk=segment.pk)
    members = selectors.segment_members(segment=segment, user=request.user).select_related("owner")
    counts = selectors.segment_counts(segments=[segment], user=request.user)
    return render(
        request,
        "nurturing/segment_detail.html",
        {
            "segment": segment,
            "count": counts[segment.pk],
            "members": members.order_by("-score", "id")[:MEMBERS_SHOWN],
            "changes": selectors.segment_changes(segment=segment, user=request.user)[:50],
        },
    )

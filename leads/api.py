"""Thin REST views for leads: input serializer → service/selector → output serializer."""

from __future__ import annotations

import datetime as dt
import ipaddress

import django_filters
from django.conf import settings
from django.db.models import DateTimeField, Value
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import filters, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from accounts.models import Role, User
from leadcrm import inputs
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination
from leadcrm.permissions import require_role
from leads import reports, selectors, services
from leads.filters import LeadFilter
from leads.models import Bant, Opportunity, Stage
from leads.serializers import (
    BantSerializer,
    BulkOutputSerializer,
    EventInputSerializer,
    EventsOutputSerializer,
    FunnelQuerySerializer,
    FunnelSerializer,
    HistoryItemSerializer,
    LeadBulkInputSerializer,
    LeadInputSerializer,
    LeadOutputSerializer,
    OpportunityInputSerializer,
    OpportunityOutputSerializer,
    RecordedSerializer,
    TaskInputSerializer,
    TaskOutputSerializer,
    TransitionInputSerializer,
)


class LeadPagination(StableCursorPagination):
    ordering = ("-created_at", "-id")


# A cursor cannot hold a NULL position: nullable dates sort through a non-null stand-in.
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NULLABLE_ORDERINGS = {"last_activity_at": "last_activity_sort", "stage_changed_at": "stage_changed_sort"}


class LeadOrdering(filters.OrderingFilter):
    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        out = []
        for term in ordering:
            desc, name = term.startswith("-"), term.lstrip("-")
            out.append(("-" if desc else "") + NULLABLE_ORDERINGS.get(name, name))
        return out


class LeadListCreate(GenericAPIView):
    max_body_bytes = settings.LEADCRM_LEAD_BODY_MAX_BYTES
    serializer_class = LeadOutputSerializer
    pagination_class = LeadPagination
    filterset_class = LeadFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, LeadOrdering]
    ordering_fields = ["created_at", "updated_at", "score", "last_activity_at", "stage_changed_at"]

    def get_queryset(self):
        qs = selectors.leads_visible_to(self.request.user)
        if self.request.query_params.get("ordering", "").lstrip("-") in NULLABLE_ORDERINGS:
            qs = qs.annotate(
                **{
                    alias: Coalesce(name, Value(NEVER), output_field=DateTimeField())
                    for name, alias in NULLABLE_ORDERINGS.items()
                }
            )
        return qs

    @extend_schema(operation_id="leads_list", responses=LeadOutputSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(LeadOutputSerializer(page, many=True).data)

    @extend_schema(
        request=LeadInputSerializer,
        responses={
            201: LeadOutputSerializer,
            200: OpenApiResponse(LeadOutputSerializer, "Existing lead updated"),
            202: OpenApiResponse(
                RecordedSerializer,
                "The e-mail belongs to a lead the caller cannot see: the capture is kept on it as a "
                "touchpoint and its owner is told; the lead is neither changed nor shown.",
            ),
        },
    )
    def post(self, request):
        require_role(request, Role.MARKETING, Role.MANAGER, Role.SDR)
        data = LeadInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead, created = services.lead_capture(
            data=_with_caller_evidence(data.validated_data, request), actor=actor_of(request)
        )
        if not created and not selectors.user_may_see_lead(request.user, lead):
            return Response({"status": "recorded"}, status=status.HTTP_202_ACCEPTED)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(LeadOutputSerializer(lead).data, status=code)


def _with_caller_evidence(data: dict, request) -> dict:
    """A consent sent without the person's IP and browser is logged with the caller's (the
    person's own browser, or the server relaying a form: the consent log says which)."""
    consent = data.get("consent")
    if not consent:
        return data
    ip = BaseThrottle().get_ident(request)
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        ip = ""
    evidence = {"ip": ip, "user_agent": request.headers.get("User-Agent", "")[:500]}
    return {**data, "consent": {**{k: v for k, v in evidence.items() if v}, **consent}}


class LeadDetail(APIView):
    max_body_bytes = settings.LEADCRM_LEAD_BODY_MAX_BYTES

    @extend_schema(responses=LeadOutputSerializer)
    def get(self, request, pk: int):
        return Response(LeadOutputSerializer(selectors.visible_lead_or_404(request.user, pk)).data)

    @extend_schema(request=LeadInputSerializer, responses=LeadOutputSerializer)
    def patch(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        if not selectors.user_may_edit_lead(request.user):
            raise PermissionDenied("Your role cannot edit leads.")
        if isinstance(request.data, dict) and "stage" in request.data:
            return Response(
                {"stage": ["The stage changes only through /transition/."]}, status=status.HTTP_400_BAD_REQUEST
            )
        data = LeadInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        lead = services.lead_update(
            lead_id=lead.pk, data=_with_caller_evidence(data.validated_data, request), actor=actor_of(request)
        )
        return Response(LeadOutputSerializer(lead).data)


class LeadBulk(APIView):
    @extend_schema(request=LeadBulkInputSerializer, responses=BulkOutputSerializer)
    def post(self, request):
        require_role(request, Role.MARKETING)
        rows = request.data.get("leads") if isinstance(request.data, dict) else None
        if not isinstance(rows, list) or not rows:
            # Rows are checked one by one below, so that a bad row never sinks the batch.
            return Response({"leads": ["A non-empty list of lead objects is required."]}, status=400)
        if len(rows) > settings.LEADCRM_BULK_MAX_ROWS:
            return Response(
                {"detail": f"At most {settings.LEADCRM_BULK_MAX_ROWS} leads per call; split the batch."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        results = services.leads_bulk_capture(rows=rows, actor=actor_of(request), history=request.user.is_admin_role)
        out = [
            {"index": r.index, "status": r.status, "id": r.id, **({"errors": r.errors} if r.errors else {})}
            for r in results
        ]
        return Response(
            {
                "created": sum(r.status == "created" for r in results),
                "updated": sum(r.status == "updated" for r in results),
                "recorded": sum(r.status == "recorded" for r in results),
                "failed": sum(r.status == "error" for r in results),
                "results": out,
            }
        )


class LeadTransition(APIView):
    @extend_schema(
        request=TransitionInputSerializer,
        responses={200: LeadOutputSerializer, 409: OpenApiResponse(description="A guard refused the move")},
    )
    def post(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        data = TransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        to = data.validated_data["to"]
        if not selectors.user_may_work_lead(request.user, lead, to):
            raise PermissionDenied(f"Your role cannot move leads to {to}.")
        lead = services.lead_transition(
            lead_id=lead.pk,
            to=to,
            actor=actor_of(request),
            reason=data.validated_data["reason"],
            override=data.validated_data["override"],
        )
        return Response(LeadOutputSerializer(lead).data)


class LeadHistory(APIView):
    @extend_schema(responses=HistoryItemSerializer(many=True))
    def get(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        return Response(selectors.lead_history(lead=lead))


class LeadBant(APIView):
    @extend_schema(responses=BantSerializer)
    def get(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        bant = Bant.objects.filter(lead=lead).first() or Bant(lead=lead)
        return Response(BantSerializer(bant).data)

    @extend_schema(request=BantSerializer, responses=BantSerializer)
    def put(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        if not selectors.user_may_work_lead(request.user, lead):
            raise PermissionDenied("Your role cannot qualify leads.")
        data = BantSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        bant = services.lead_bant_set(lead_id=lead.pk, actor=actor_of(request), **data.validated_data)
        return Response(BantSerializer(bant).data)


class LeadOpportunity(APIView):
    @extend_schema(responses=OpportunityOutputSerializer)
    def get(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        return Response(OpportunityOutputSerializer(get_object_or_404(Opportunity, lead=lead)).data)

    @extend_schema(
        request=OpportunityInputSerializer,
        responses={201: LeadOutputSerializer, 409: OpenApiResponse(description="A guard refused the move")},
    )
    def post(self, request, pk: int):
        lead = selectors.visible_lead_or_404(request.user, pk)
        if not selectors.user_may_work_lead(request.user, lead, Stage.CO):
            raise PermissionDenied("Your role cannot create offers.")
        data = OpportunityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = services.lead_create_opportunity(lead_id=lead.pk, actor=actor_of(request), **data.validated_data)
        return Response(LeadOutputSerializer(lead).data, status=status.HTTP_201_CREATED)


class EventsCreate(APIView):
    @extend_schema(
        request=EventInputSerializer(many=True),
        responses={201: EventsOutputSerializer},
        description="One event object or a list of them.",
    )
    def post(self, request):
        require_role(request, Role.MARKETING)
        many = isinstance(request.data, list)
        if many and len(request.data) > settings.LEADCRM_BULK_MAX_ROWS:
            return Response(
                {"detail": f"At most {settings.LEADCRM_BULK_MAX_ROWS} events per call."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        data = EventInputSerializer(data=request.data, many=many)
        data.is_valid(raise_exception=True)
        items = data.validated_data if many else [data.validated_data]
        lead_ids = {i["lead_id"] for i in items if i.get("lead_id")}
        missing = lead_ids - selectors.lead_ids_visible_to(request.user, lead_ids)
        if missing:
            return Response({"lead_id": [f"Unknown lead: {sorted(missing)}"]}, status=status.HTTP_400_BAD_REQUEST)
        touchpoints = services.events_record(items=items, actor=actor_of(request))
        # An event found its lead by e-mail or visitor: the id only of a lead the caller sees.
        shown = selectors.lead_ids_visible_to(request.user, {t.lead_id for t in touchpoints})
        return Response(
            {
                "recorded": len(touchpoints),
                "events": [{"id": t.pk, "lead_id": t.lead_id if t.lead_id in shown else None} for t in touchpoints],
            },
            status=status.HTTP_201_CREATED,
        )


class FunnelMetrics(APIView):
    """Counts per stage and conversion between stages over the leads created in a period,
    optionally for one source or campaign."""

    @extend_schema(parameters=[FunnelQuerySerializer], responses=FunnelSerializer)
    def get(self, request):
        params = FunnelQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        leads = selectors.leads_visible_to(request.user)
        if p.get("created_after"):
            leads = leads.filter(created_at__gte=p["created_after"])
        if p.get("created_before"):
            leads = leads.filter(created_at__lt=p["created_before"])
        if p.get("source"):
            leads = leads.filter(source=p["source"])
        if p.get("campaign"):
            leads = leads.filter(utm_campaign=p["campaign"])
        return Response(selectors.funnel_counts(leads))


class TaskPagination(StableCursorPagination):
    ordering = ("due_at", "id")


def _task_fields(data: dict, request) -> dict:
    """The serializer's values as the service's keywords (`assignee` as a user or None)."""
    fields = {k: v for k, v in data.items() if k != "lead"}
    if "assignee" in fields and fields["assignee"] is not None:
        fields["assignee"] = User.objects.filter(pk=fields["assignee"]).first()
        if fields["assignee"] is None:
            raise services.ServiceError({"assignee": ["Unknown user."]})
    return fields


class TaskListCreate(GenericAPIView):
    """Tasks on the leads the caller may see; `?lead=`, `?assignee=me|<id>`, `?done=`,
    `?due=overdue|today`."""

    serializer_class = TaskOutputSerializer
    pagination_class = TaskPagination

    def get_queryset(self):
        return selectors.tasks_visible_to(self.request.user)

    @extend_schema(responses=TaskOutputSerializer(many=True))
    def get(self, request):
        qs = selectors.tasks_filtered(self.get_queryset(), user=request.user, params=request.query_params)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(TaskOutputSerializer(page, many=True).data)

    @extend_schema(request=TaskInputSerializer, responses={201: TaskOutputSerializer})
    def post(self, request):
        data = TaskInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = _task_fields(data.validated_data, request)
        done = fields.pop("done", False)
        actor = actor_of(request)
        (task,) = services.tasks_create(actor=actor, lead_ids=[data.validated_data["lead"]], **fields)
        if done:
            task = services.task_update(actor=actor, task_id=task.pk, done=True)
        return Response(TaskOutputSerializer(task).data, status=status.HTTP_201_CREATED)


class TaskDetail(APIView):
    def _task(self, request, pk: int):
        return get_object_or_404(selectors.tasks_visible_to(request.user), pk=pk)

    @extend_schema(responses=TaskOutputSerializer)
    def get(self, request, pk: int):
        return Response(TaskOutputSerializer(self._task(request, pk)).data)

    @extend_schema(request=TaskInputSerializer(partial=True), responses=TaskOutputSerializer)
    def patch(self, request, pk: int):
        task = self._task(request, pk)
        data = TaskInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        if "lead" in request.data:
            raise services.ServiceError({"lead": ["A task stays on its lead."]})
        fields = _task_fields({k: v for k, v in data.validated_data.items() if k in request.data}, request)
        task = services.task_update(actor=actor_of(request), task_id=task.pk, **fields)
        return Response(TaskOutputSerializer(task).data)


class AttributionQuerySerializer(serializers.Serializer):
    """The attribution report's parameters: the period is the leads' creation dates, as on the
    dashboard (the last 90 days by default)."""

    model = serializers.ChoiceField(choices=reports.ATTRIBUTION_ALL_MODELS, default="first")
    stage = serializers.ChoiceField(
        choices=[s.value for s in reports.ATTRIBUTION_STAGES],
        required=False,
        help_text="One stage; all four when absent. A stage credits the leads now at it or further, open or won.",
    )
    by = serializers.ChoiceField(choices=reports.ATTRIBUTION_KEYS, default="source")
    start = serializers.CharField(required=False, help_text="YYYY-MM-DD, first creation day (default: end - 89 days).")
    end = serializers.CharField(required=False, help_text="YYYY-MM-DD, last creation day (default: today).")
    source = serializers.CharField(required=False, max_length=100, help_text="Only the leads of this source.")
    campaign = serializers.CharField(required=False, max_length=200, help_text="Only the leads of this utm_campaign.")
    team = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1)

    def _date(self, value: str) -> dt.date:
        try:
            return inputs.parse_date(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def validate_start(self, value: str) -> dt.date:
        return self._date(value)

    def validate_end(self, value: str) -> dt.date:
        return self._date(value)

    def validate(self, attrs: dict) -> dict:
        end = attrs.get("end") or timezone.localdate()
        start = attrs.get("start") or end - dt.timedelta(days=89)
        if start > end:
            raise serializers.ValidationError({"start": ["Must be on or before end."]})
        attrs["start"], attrs["end"] = start, end
        return attrs


class AttributionRowSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="The source (or campaign) credited.")
    credit = serializers.FloatField(help_text="Leads credited to it (fractions under linear and position).")
    share = serializers.FloatField(allow_null=True, help_text="Its share of the stage's credit, 0 to 1.")


class AttributionStageSerializer(serializers.Serializer):
    rows = AttributionRowSerializer(many=True)
    total = serializers.FloatField(help_text="Leads credited: each gives 1 in all.")


class AttributionSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=reports.ATTRIBUTION_ALL_MODELS)
    by = serializers.ChoiceField(choices=reports.ATTRIBUTION_KEYS)
    start = serializers.DateField()
    end = serializers.DateField()
    stages = serializers.DictField(child=AttributionStageSerializer(), help_text="`MQL`, `SQL`, `CO`, `WO`.")


class AttributionMetrics(APIView):
    """Credit per source or campaign for the leads that reached MQL, SQL, CO and WO among the
    leads created in a period (first touch, last touch, linear or position-based 40/20/40),
    from the dashboard's own report (`leads.reports.attribution`) over the leads the caller
    may see."""

    @extend_schema(parameters=[AttributionQuerySerializer], responses=AttributionSerializer)
    def get(self, request):
        params = AttributionQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        p = params.validated_data
        f = reports.Filters(p["start"], p["end"], p.get("source", ""), p.get("campaign", ""), p.get("team"))
        leads = reports.filtered(selectors.leads_visible_to(request.user), f)
        stages = [p["stage"]] if p.get("stage") else [s.value for s in reports.ATTRIBUTION_STAGES]
        out = {}
        for stage in stages:
            data = reports.attribution(leads, p["model"], stage=stage, by=p["by"])
            rows = [{"key": r[p["by"]], "credit": r["credit"], "share": r["share"]} for r in data["rows"]]
            out[stage] = {"rows": rows, "total": data["total"]}
        body = {"model": p["model"], "by": p["by"], "start": f.start, "end": f.end, "stages": out}
        return Response(AttributionSerializer(body).data)

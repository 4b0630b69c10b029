"""Routing admin API (SPEC "Admin API"): rules, territories, partners, SLA policies and
settings; manual routing; partner answers; team load and SLA compliance.

Admins write; managers read what concerns their team; marketing reads; sellers get 403
(except a partner answering its own offers)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.api_jobs import job_started_response
from leadcrm.permissions import require_role, roles
from leadcrm.serializers import JobStartedSerializer
from leads import selectors as lead_selectors
from routing import selectors, services
from routing.models import OfferStatus, Partner, RoutingRule, RoutingSettings
from routing.serializers import (
    DeclineInputSerializer,
    PartnerOfferSerializer,
    PartnerSerializer,
    RouteInputSerializer,
    RouteOutputSerializer,
    RouteUnassignedInputSerializer,
    RoutingRuleSerializer,
    RoutingSettingsSerializer,
    SlaComplianceSerializer,
    SlaPolicySerializer,
    TeamLoadSerializer,
    TerritorySerializer,
)

# Routing configuration: admins change it; managers and marketing read it.
_ROUTING_ROLES = {"read": (Role.MANAGER, Role.MARKETING), "message": "Only admins change routing."}
PERMISSIONS = [IsAuthenticated, roles(**_ROUTING_ROLES)]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(**_ROUTING_ROLES, detail=True)]


RULE_EXAMPLE = OpenApiExample(
    "Enterprise leads in EMEA to one team",
    request_only=True,
    value={
        "name": "EMEA enterprise",
        "position": 10,
        "conditions": {"region": ["EMEA"], "company_size_min": 1000},
        "team": 1,
    },
)


# --- routing rules --------------------------------------------------------------------------


class RoutingRuleList(APIView):
    permission_classes = PERMISSIONS
    serializer_class = RoutingRuleSerializer

    @extend_schema(responses=RoutingRuleSerializer(many=True))
    def get(self, request):
        return Response(RoutingRuleSerializer(selectors.rules_visible_to(request.user), many=True).data)

    @extend_schema(request=RoutingRuleSerializer, responses={201: RoutingRuleSerializer}, examples=[RULE_EXAMPLE])
    def post(self, request):
        data = RoutingRuleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rule = services.routing_rule_create(actor=actor_of(request), **data.validated_data)
        return Response(RoutingRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class RoutingRuleDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS
    serializer_class = RoutingRuleSerializer

    def _rule(self, request, pk: int) -> RoutingRule:
        rule = get_object_or_404(selectors.rules_visible_to(request.user), pk=pk)
        self.check_object_permissions(request, rule)
        return rule

    @extend_schema(responses=RoutingRuleSerializer)
    def get(self, request, pk: int):
        return Response(RoutingRuleSerializer(self._rule(request, pk)).data)

    @extend_schema(request=RoutingRuleSerializer, responses=RoutingRuleSerializer)
    def patch(self, request, pk: int):
        rule = self._rule(request, pk)
        data = RoutingRuleSerializer(rule, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = services.routing_rule_update(rule=rule, actor=actor_of(request), **data.validated_data)
        return Response(RoutingRuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        rule = self._rule(request, pk)
        services.routing_rule_delete(rule=rule, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- territories, partners, SLA policies (same shape) ---------------------------------------


class _ConfigList(APIView):
    permission_classes = PERMISSIONS
    serializer_class: type[serializers.ModelSerializer]
    m2m: tuple[str, ...] = ()

    def queryset(self):
        return self.serializer_class.Meta.model.objects.all()

    def get(self, request):
        return Response(self.serializer_class(self.queryset(), many=True).data)

    def post(self, request):
        data = self.serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        m2m = {k: fields.pop(k) for k in self.m2m if k in fields}
        obj = services.config_save(
            instance=self.serializer_class.Meta.model(), actor=actor_of(request), fields=fields, m2m=m2m
        )
        return Response(self.serializer_class(obj).data, status=status.HTTP_201_CREATED)


class _ConfigDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS
    serializer_class: type[serializers.ModelSerializer]
    m2m: tuple[str, ...] = ()

    def _obj(self, request, pk):
        obj = get_object_or_404(self.serializer_class.Meta.model, pk=pk)
        self.check_object_permissions(request, obj)
        return obj

    def get(self, request, pk: int):
        return Response(self.serializer_class(self._obj(request, pk)).data)

    def patch(self, request, pk: int):
        obj = self._obj(request, pk)
        data = self.serializer_class(obj, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        m2m = {k: fields.pop(k) for k in self.m2m if k in fields}
        obj = services.config_save(instance=obj, actor=actor_of(request), fields=fields, m2m=m2m)
        return Response(self.serializer_class(obj).data)

    def delete(self, request, pk: int):
        obj = self._obj(request, pk)
        services.config_delete(instance=obj, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _config_schema(list_view: bool, serializer: type[serializers.Serializer]):
    """The shared config views' schema: a list and a 201 on create, or one object."""
    if list_view:
        return extend_schema_view(
            get=extend_schema(responses=serializer(many=True)),
            post=extend_schema(request=serializer, responses={201: serializer}),
        )
    return extend_schema_view(
        get=extend_schema(responses=serializer),
        patch=extend_schema(request=serializer, responses=serializer),
        delete=extend_schema(responses={204: None}),
    )


@_config_schema(True, TerritorySerializer)
class TerritoryList(_ConfigList):
    serializer_class = TerritorySerializer


@_config_schema(False, TerritorySerializer)
class TerritoryDetail(_ConfigDetail):
    serializer_class = TerritorySerializer


@_config_schema(True, PartnerSerializer)
class PartnerList(_ConfigList):
    serializer_class = PartnerSerializer
    m2m = ("territories",)

    def queryset(self):
        return Partner.objects.prefetch_related("territories")


@_config_schema(False, PartnerSerializer)
class PartnerDetail(_ConfigDetail):
    serializer_class = PartnerSerializer
    m2m = ("territories",)


@_config_schema(True, SlaPolicySerializer)
class SlaPolicyList(_ConfigList):
    serializer_class = SlaPolicySerializer


@_config_schema(False, SlaPolicySerializer)
class SlaPolicyDetail(_ConfigDetail):
    serializer_class = SlaPolicySerializer


class RoutingSettingsView(APIView):
    permission_classes = PERMISSIONS
    serializer_class = RoutingSettingsSerializer

    @extend_schema(responses=RoutingSettingsSerializer)
    def get(self, request):
        current = RoutingSettings.current()
        return Response(RoutingSettingsSerializer(current).data)

    @extend_schema(request=RoutingSettingsSerializer, responses=RoutingSettingsSerializer)
    def patch(self, request):
        data = RoutingSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        current = services.routing_settings_update(actor=actor_of(request), **data.validated_data)
        return Response(RoutingSettingsSerializer(current).data)


# --- actions --------------------------------------------------------------------------------


class LeadRoute(APIView):
    """Route (or route again) one lead now: admins and the managers who see it."""

    serializer_class = RouteInputSerializer

    @extend_schema(request=RouteInputSerializer, responses=RouteOutputSerializer)
    def post(self, request, pk: int):
        lead = lead_selectors.visible_lead_or_404(request.user, pk)
        require_role(request, Role.MANAGER, message="Only admins and managers route leads by hand.")
        data = RouteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.lead_route(
            lead_id=lead.pk, actor=actor_of(request), reason=data.validated_data.get("reason") or "Routed by hand"
        )
        return Response(RouteOutputSerializer(result).data)


class PartnerOfferList(APIView):
    serializer_class = PartnerOfferSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=OfferStatus.values, description="Only offers in this status.")],
        responses=PartnerOfferSerializer(many=True),
    )
    def get(self, request):
        qs = selectors.offers_visible_to(request.user)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        return Response(PartnerOfferSerializer(qs[:1000], many=True).data)


class PartnerOfferAccept(APIView):
    serializer_class = PartnerOfferSerializer

    @extend_schema(request=None, responses=PartnerOfferSerializer)
    def post(self, request, pk: int):
        offer = get_object_or_404(selectors.offers_visible_to(request.user), pk=pk)
        offer = services.partner_offer_accept(offer_id=offer.pk, actor=actor_of(request))
        return Response(PartnerOfferSerializer(offer).data)


class PartnerOfferDecline(APIView):
    serializer_class = DeclineInputSerializer

    @extend_schema(request=DeclineInputSerializer, responses=PartnerOfferSerializer)
    def post(self, request, pk: int):
        offer = get_object_or_404(selectors.offers_visible_to(request.user), pk=pk)
        data = DeclineInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        offer = services.partner_offer_decline(
            offer_id=offer.pk, actor=actor_of(request), reason=data.validated_data.get("reason", "")
        )
        return Response(PartnerOfferSerializer(offer).data)


class RouteUnassigned(APIView):
    """Route every open lead nobody owns (or one team's pool) in the background: 202 with
    the job and its status URL. Admins (any scope) and managers (their team's pool)."""

    serializer_class = RouteUnassignedInputSerializer

    @extend_schema(request=RouteUnassignedInputSerializer, responses={202: JobStartedSerializer})
    def post(self, request):
        require_role(request, Role.MANAGER, message="Only admins and managers route leads in bulk.")
        data = RouteUnassignedInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = data.validated_data.get("team")
        if not request.user.is_admin_role:
            if team is None:
                raise serializers.ValidationError({"team": ["A manager routes one of their teams' pool: name it."]})
            if not selectors.teams_managed_by(request.user).filter(pk=team.pk).exists():
                raise serializers.ValidationError({"team": ["Not a team you manage."]})
        job_request = services.route_unassigned_start(actor=actor_of(request), team=team)
        return job_started_response(request, job_request)


# --- reads for managers and the dashboard ---------------------------------------------------


class TeamLoad(APIView):
    @extend_schema(responses=TeamLoadSerializer)
    def get(self, request, pk: int):
        team = get_object_or_404(selectors.teams_managed_by(request.user), pk=pk)
        return Response(
            {
                "team": team.pk,
                "sellers": selectors.team_load(team=team),
                "pool": selectors.team_pool_count(team=team),
                "breaches": len(selectors.sla_breaches(team=team)),
            }
        )


class SlaCompliance(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=SlaComplianceSerializer)
    def get(self, request):
        teams = None if request.user.sees_all_leads else selectors.teams_managed_by(request.user)
        return Response(selectors.sla_compliance(teams=teams))

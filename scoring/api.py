"""Thin REST views for scoring (under /api/v1/scoring/): rule sets and rules, activation,
backtest, the predictive model. The services validate rules (400 with field errors)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.errors import ServiceError
from leadcrm.permissions import roles
from leads.selectors import leads_visible_to
from scoring import selectors, services
from scoring.models import RuleSet
from scoring.serializers import (
    BacktestSerializer,
    EngagementRuleInputSerializer,
    EngagementRuleSerializer,
    FitRuleInputSerializer,
    FitRuleSerializer,
    LeadScoreSerializer,
    PredictiveModelSerializer,
    RuleSetInputSerializer,
    RuleSetSerializer,
    RuleSetUpdateSerializer,
)

# Marketing runs scoring; managers read it (and admins do both).
PERMISSIONS = [IsAuthenticated, roles(read=(Role.MARKETING, Role.MANAGER), write=(Role.MARKETING,))]


def _body(request) -> dict:
    if not isinstance(request.data, dict):
        raise ServiceError({"non_field_errors": ["Expected a JSON object."]})
    return dict(request.data)


RULE_KIND = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["fit", "engagement"], description="The rule's kind."
)
RULE_INPUT = PolymorphicProxySerializer(
    component_name="RuleInput",
    serializers=[FitRuleInputSerializer, EngagementRuleInputSerializer],
    resource_type_field_name=None,
)
RULE_OUTPUT = PolymorphicProxySerializer(
    component_name="Rule",
    serializers=[FitRuleSerializer, EngagementRuleSerializer],
    resource_type_field_name=None,
)
RULESET_EXAMPLE = OpenApiExample(
    "Rule set",
    request_only=True,
    value={
        "name": "Q3 model",
        "mql_threshold": 60,
        "fit_rules": [
            {"field": "industry", "operator": "in", "value": ["software", "saas"], "points": 20},
            {"field": "company_size", "operator": "range", "value": {"min": 50, "max": 5000}, "points": 15},
        ],
        "engagement_rules": [
            {"event_type": "page_view", "url_pattern": "/pricing", "points": 5, "cap": 20, "half_life_days": 30}
        ],
    },
)


def _ruleset(pk: int) -> RuleSet:
    return get_object_or_404(selectors.rulesets(), pk=pk)


class RuleSetListCreate(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        parameters=[OpenApiParameter("group", OpenApiTypes.STR, description="Only this score group.")],
        responses=RuleSetSerializer(many=True),
    )
    def get(self, request):
        group = request.query_params.get("group")
        return Response(RuleSetSerializer(selectors.rulesets(group=group), many=True).data)

    @extend_schema(request=RuleSetInputSerializer, responses={201: RuleSetSerializer}, examples=[RULESET_EXAMPLE])
    def post(self, request):
        """A new inactive version with its `fit_rules` and `engagement_rules`."""
        ruleset = services.ruleset_create(data=_body(request), actor=actor_of(request))
        return Response(RuleSetSerializer(_ruleset(ruleset.pk)).data, status=status.HTTP_201_CREATED)


class RuleSetDetail(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=RuleSetSerializer)
    def get(self, request, pk: int):
        return Response(RuleSetSerializer(_ruleset(pk)).data)

    @extend_schema(request=RuleSetUpdateSerializer, responses=RuleSetSerializer)
    def patch(self, request, pk: int):
        _ruleset(pk)
        services.ruleset_update(ruleset_id=pk, data=_body(request), actor=actor_of(request))
        return Response(RuleSetSerializer(_ruleset(pk)).data)


class RuleSetActivate(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(request=None, responses=RuleSetSerializer)
    def post(self, request, pk: int):
        """Activate this version; every lead is rescored in the background."""
        _ruleset(pk)
        services.ruleset_activate(ruleset_id=pk, actor=actor_of(request))
        return Response(RuleSetSerializer(_ruleset(pk)).data)


class RuleSetCopy(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(request=None, responses={201: RuleSetSerializer})
    def post(self, request, pk: int):
        """A new draft version with the same rules."""
        _ruleset(pk)
        copy = services.ruleset_copy(ruleset_id=pk, actor=actor_of(request))
        return Response(RuleSetSerializer(_ruleset(copy.pk)).data, status=status.HTTP_201_CREATED)


class RuleSetBacktest(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=BacktestSerializer)
    def get(self, request, pk: int):
        """This version's scores over the closed history: conversion by score band, AUC."""
        _ruleset(pk)
        return Response(services.ruleset_backtest(ruleset_id=pk))


class RuleCreate(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(parameters=[RULE_KIND], request=RULE_INPUT, responses={201: RULE_OUTPUT})
    def post(self, request, pk: int, kind: str):
        """Add a rule: `/rulesets/{id}/rules/fit/` or `/rulesets/{id}/rules/engagement/`."""
        _ruleset(pk)
        rule = services.rule_create(ruleset_id=pk, kind=kind, data=_body(request), actor=actor_of(request))
        out = FitRuleSerializer if kind == "fit" else EngagementRuleSerializer
        return Response(out(rule).data, status=status.HTTP_201_CREATED)


class RuleDetail(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(parameters=[RULE_KIND], request=RULE_INPUT, responses=RULE_OUTPUT)
    def patch(self, request, kind: str, pk: int):
        rule = services.rule_update(kind=kind, rule_id=pk, data=_body(request), actor=actor_of(request))
        out = FitRuleSerializer if kind == "fit" else EngagementRuleSerializer
        return Response(out(rule).data)

    @extend_schema(parameters=[RULE_KIND], responses={204: None})
    def delete(self, request, kind: str, pk: int):
        services.rule_delete(kind=kind, rule_id=pk, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeadScores(APIView):
    @extend_schema(responses=LeadScoreSerializer(many=True))
    def get(self, request, pk: int):
        """The lead's score in every active score group, with each group's threshold."""
        lead = get_object_or_404(leads_visible_to(request.user), pk=pk)
        return Response(selectors.lead_scores(lead))


class PredictiveInfo(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        responses={200: PredictiveModelSerializer, 404: OpenApiResponse(description="No model trained yet.")}
    )
    def get(self, request):
        """The active model: hold-out AUC, calibration table, top features."""
        model = selectors.predictive_model_active()
        if model is None:
            return Response({"detail": "No predictive model trained yet."}, status=status.HTTP_404_NOT_FOUND)
        return Response(PredictiveModelSerializer(model).data)


class PredictiveTrain(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        request=None,
        responses={
            201: PredictiveModelSerializer,
            400: OpenApiResponse(description="Not enough closed history to train on."),
        },
    )
    def post(self, request):
        """Train on the closed leads (WO = 1, LOST/DISQUALIFIED = 0), store a new version,
        fill `conversion_probability` of the open leads."""
        model = services.predictive_train(actor=actor_of(request))
        return Response(PredictiveModelSerializer(model).data, status=status.HTTP_201_CREATED)

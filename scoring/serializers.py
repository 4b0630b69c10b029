"""Scoring's API shapes: output serializers render rule sets, rules, backtests, scores and
the predictive model; input serializers document what the services accept (the services
validate, with field errors such as `fit_rules[0].points`). None of them saves."""

from __future__ import annotations

from rest_framework import serializers

from leads.models import Grade, TouchpointType
from scoring import services
from scoring.models import EngagementRule, FitRule, Operator, PredictiveModel, RuleSet


class FitRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = FitRule
        fields = ["id", *services.FIT_RULE_FIELDS]


class EngagementRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = EngagementRule
        fields = ["id", *services.ENGAGEMENT_RULE_FIELDS]


class RuleSetSerializer(serializers.ModelSerializer):
    fit_rules = FitRuleSerializer(many=True, read_only=True)
    engagement_rules = EngagementRuleSerializer(many=True, read_only=True)

    class Meta:
        model = RuleSet
        fields = [
            "id",
            "group",
            "version",
            "name",
            "description",
            "is_active",
            "mql_threshold",
            "grade_a_min",
            "grade_b_min",
            "grade_c_min",
            "created_at",
            "activated_at",
            "fit_rules",
            "engagement_rules",
        ]
        read_only_fields = fields


class PredictiveModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = PredictiveModel
        fields = [
            "id",
            "version",
            "algorithm",
            "is_active",
            "auc",
            "n_train",
            "n_test",
            "positives",
            "calibration",
            "top_features",
            "created_at",
        ]
        read_only_fields = fields


class BacktestBandSerializer(serializers.Serializer):
    band = serializers.CharField()
    min = serializers.IntegerField()
    max = serializers.IntegerField()
    leads = serializers.IntegerField()
    won = serializers.IntegerField()
    conversion = serializers.FloatField(allow_null=True)


class BacktestSerializer(serializers.Serializer):
    ruleset = serializers.IntegerField()
    version = serializers.IntegerField()
    group = serializers.CharField()
    leads = serializers.IntegerField()
    won = serializers.IntegerField()
    auc = serializers.FloatField(allow_null=True, help_text="None when the history has one outcome only.")
    bands = BacktestBandSerializer(many=True)


class LeadScoreSerializer(serializers.Serializer):
    group = serializers.CharField()
    score = serializers.IntegerField()
    fit_score = serializers.IntegerField()
    engagement_score = serializers.IntegerField()
    grade = serializers.ChoiceField(choices=[("", "none"), *Grade.choices], allow_blank=True)
    mql_threshold = serializers.IntegerField()
    qualified = serializers.BooleanField()
    version = serializers.IntegerField(allow_null=True)
    reasons = serializers.ListField(child=serializers.DictField(), required=False)


# --- request bodies: they document what the services accept (the services validate, with
# field errors such as `fit_rules[0].points`) -------------------------------------------


class FitRuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    field = serializers.CharField(
        max_length=150, help_text="A lead field (`industry`, `company_size`, ...) or `properties.<key>`."
    )
    operator = serializers.ChoiceField(choices=Operator.choices)
    value = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text='`equals`/`contains`: one value; `in`: a list; `range`: {"min": n, "max": n}; `exists`: none.',
    )
    points = serializers.IntegerField(min_value=-100, max_value=100)


class EngagementRuleInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    event_type = serializers.ChoiceField(choices=TouchpointType.choices)
    url_pattern = serializers.CharField(
        max_length=500, required=False, allow_blank=True, help_text="A regular expression the event's URL matches."
    )
    property_key = serializers.CharField(max_length=100, required=False, allow_blank=True)
    property_value = serializers.JSONField(required=False, allow_null=True)
    points = serializers.IntegerField(min_value=-100, max_value=100)
    cap = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True)
    cap_period_days = serializers.IntegerField(
        min_value=1, max_value=3650, required=False, allow_null=True, help_text="Needs a `cap`."
    )
    half_life_days = serializers.FloatField(min_value=0, max_value=3650, required=False, allow_null=True)


class RuleSetUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    mql_threshold = serializers.IntegerField(min_value=0, max_value=100, required=False)
    grade_a_min = serializers.IntegerField(min_value=0, max_value=100, required=False, help_text="A ≥ B ≥ C.")
    grade_b_min = serializers.IntegerField(min_value=0, max_value=100, required=False)
    grade_c_min = serializers.IntegerField(min_value=0, max_value=100, required=False)


class RuleSetInputSerializer(RuleSetUpdateSerializer):
    group = serializers.RegexField(r"^[-a-zA-Z0-9_]{1,50}$", max_length=50, required=False, default="default")
    fit_rules = FitRuleInputSerializer(many=True, required=False)
    engagement_rules = EngagementRuleInputSerializer(many=True, required=False)

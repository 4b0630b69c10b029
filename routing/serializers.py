"""Routing's API shapes: input serializers check types and lengths, output serializers
render. None of them saves; a routing rule's target and conditions are checked once, by
`routing.rules.routing_rule_errors` (through `routing.services`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Role, Team, User
from routing.models import Partner, PartnerOffer, SlaPolicy, Territory


def _strings(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(min_length=1), min_length=1, required=False, help_text=help_text
    )


class RoutingConditionsSerializer(serializers.Serializer):
    """What a routing rule matches (all given conditions must hold; an empty object matches
    every lead). Validated by `routing.engine.validate_conditions`."""

    country = _strings("ISO country codes.")
    region = _strings("Territory names.")
    industry = _strings("Industries.")
    source = _strings("Lead sources.")
    grade = _strings("Grades (A-D).")
    stage = _strings("Lifecycle stages.")
    company_size_min = serializers.FloatField(required=False)
    company_size_max = serializers.FloatField(required=False)
    score_min = serializers.FloatField(required=False)
    score_max = serializers.FloatField(required=False)
    properties = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=1),
        required=False,
        help_text="Custom field → accepted values.",
    )


@extend_schema_field(RoutingConditionsSerializer)
class ConditionsField(serializers.JSONField):
    pass


class RoutingRuleSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=200)
    position = serializers.IntegerField(required=False, default=100, min_value=-1_000_000, max_value=1_000_000)
    conditions = ConditionsField(required=False, default=dict)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)
    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.all(), required=False, allow_null=True)
    partners_by_territory = serializers.BooleanField(required=False, default=False)
    active = serializers.BooleanField(required=False, default=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class TerritorySerializer(serializers.ModelSerializer):
    countries = serializers.ListField(child=serializers.RegexField(r"^[A-Za-z]{2}$"), allow_empty=True)

    class Meta:
        model = Territory
        fields = ("id", "name", "countries")

    def validate_countries(self, value):
        return sorted({c.upper() for c in value})


class PartnerSerializer(serializers.ModelSerializer):
    territories = serializers.PrimaryKeyRelatedField(queryset=Territory.objects.all(), many=True, required=False)

    class Meta:
        model = Partner
        fields = ("id", "name", "kind", "user", "territories", "email", "weight", "response_hours", "active")


class SlaPolicySerializer(serializers.ModelSerializer):
    weekdays = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=6), required=False)

    class Meta:
        model = SlaPolicy
        fields = (
            "id",
            "name",
            "grade",
            "stage",
            "minutes_to_first_touch",
            "reassign_after_minutes",
            "day_start",
            "day_end",
            "weekdays",
            "active",
        )

    def validate(self, attrs):
        start = attrs.get("day_start", getattr(self.instance, "day_start", None))
        end = attrs.get("day_end", getattr(self.instance, "day_end", None))
        if start and end and str(end) <= str(start):
            raise serializers.ValidationError({"day_end": ["Must be after day_start."]})
        return attrs


class RoutingSettingsSerializer(serializers.Serializer):
    route_on_mql = serializers.BooleanField(required=False)
    route_on_capture = serializers.BooleanField(required=False)
    default_team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)


class PartnerOfferSerializer(serializers.ModelSerializer):
    partner_name = serializers.CharField(source="partner.name", read_only=True)
    lead_email = serializers.CharField(source="lead.email", read_only=True)

    class Meta:
        model = PartnerOffer
        fields = (
            "id",
            "lead",
            "lead_email",
            "partner",
            "partner_name",
            "status",
            "offered_at",
            "deadline",
            "answered_at",
            "reason",
        )


class RouteInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RouteOutputSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    team = serializers.IntegerField(source="team_id", allow_null=True)
    partner = serializers.IntegerField(source="partner_id", allow_null=True)
    details = serializers.JSONField()


class TeamLoadSellerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    open_leads = serializers.IntegerField()
    capacity = serializers.IntegerField()
    weight = serializers.IntegerField()
    active = serializers.BooleanField()
    languages = serializers.ListField(child=serializers.CharField())
    skills = serializers.ListField(child=serializers.CharField())
    load_pct = serializers.IntegerField(allow_null=True, help_text="None when the capacity is 0.")
    full = serializers.BooleanField()


class TeamLoadSerializer(serializers.Serializer):
    team = serializers.IntegerField()
    sellers = TeamLoadSellerSerializer(many=True)
    pool = serializers.IntegerField(help_text="Open leads of the team with no owner.")
    breaches = serializers.IntegerField(help_text="Open SLA clocks past due.")


class SlaTeamRateSerializer(serializers.Serializer):
    team = serializers.IntegerField(allow_null=True)
    team_name = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    met = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class SlaSellerRateSerializer(serializers.Serializer):
    seller = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    team = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField()
    met = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class SlaComplianceSerializer(serializers.Serializer):
    teams = SlaTeamRateSerializer(many=True)
    sellers = SlaSellerRateSerializer(many=True)


class DeclineInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class RouteUnassignedInputSerializer(serializers.Serializer):
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(),
        required=False,
        allow_null=True,
        help_text="Only the leads waiting in this team's pool (a manager: required, one of theirs).",
    )

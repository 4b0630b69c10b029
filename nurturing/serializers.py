"""Input serializers check shapes; the segment filter's rules live in nurturing.segment_rules."""

from __future__ import annotations

from rest_framework import serializers

from nurturing.models import Segment, SegmentChangeKind, SegmentKind


class SegmentInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    filter = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The leads list's filter names plus team, consent, properties {key: [values]}, "
        "events [{type, within_days, min_count}] and segments [ids] (all must hold).",
    )


class SegmentOutputSerializer(serializers.ModelSerializer):
    count = serializers.SerializerMethodField(help_text="Members the caller may see.")

    class Meta:
        model = Segment
        fields = ["id", "name", "kind", "filter", "count", "evaluated_at", "created_at", "updated_at"]

    def get_count(self, segment: Segment) -> int:
        return self.context["counts"].get(segment.pk, 0)


class SegmentCountInputSerializer(serializers.Serializer):
    filter = serializers.JSONField()


class SegmentCountSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class MembersChangeSerializer(serializers.Serializer):
    add = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000
    )


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    company = serializers.CharField(source="company_name")
    stage = serializers.CharField()
    score = serializers.IntegerField()
    grade = serializers.CharField()
    owner = serializers.IntegerField(source="owner_id", allow_null=True)


class SegmentChangeSerializer(serializers.Serializer):
    lead = serializers.IntegerField(source="lead_id")
    kind = serializers.ChoiceField(choices=SegmentChangeKind.choices)
    cause = serializers.CharField()
    at = serializers.DateTimeField()

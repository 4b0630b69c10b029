"""Input serializers check shapes; the segment filter's rules live in nurturing.segment_rules."""

from __future__ import annotations

from rest_framework import serializers

from nurturing.models import EmailTemplate, Message, Segment, SegmentChangeKind, SegmentKind, TemplateKind


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


class EmailTemplateInputSerializer(serializers.Serializer):
    """Shapes only: what a template may contain is `nurturing.mail_render.template_errors`."""

    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=TemplateKind.choices, default=TemplateKind.MARKETING)
    subject = serializers.CharField(max_length=300)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=200_000)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=200_000)
    sender = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="A sender identity (none: the default one)."
    )
    topic = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, help_text="Its subscription topic (marketing e-mails)."
    )


class EmailTemplateOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmailTemplate
        fields = ["id", "name", "kind", "subject", "html", "text", "sender", "topic", "created_at", "updated_at"]
        read_only_fields = fields


class PreviewInputSerializer(serializers.Serializer):
    lead = serializers.IntegerField(min_value=1)


class PreviewSerializer(serializers.Serializer):
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = [
            "id", "lead", "template", "kind", "status", "to_email", "subject", "attempts", "last_error",
            "queued_at", "sent_at", "opened_at", "clicked_at", "unsubscribed_at",
            "bounced_at", "complained_at", "replied_at",
            "enrollment", "step", "variant",
        ]  # fmt: skip
        read_only_fields = fields

"""Shapes of the capture API (SPEC "Nurturing, capture and compliance API"); the rules of a
form's content are in capture.rules, judged by the services."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from capture.models import Form, Submission, SubmissionStatus
from capture.rules import UTM_KEYS


class FormInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    allowed_origins = serializers.JSONField(required=False)
    fields = serializers.JSONField()
    progressive = serializers.JSONField(required=False)
    consent_text = serializers.CharField(max_length=2000, required=False, allow_blank=True, trim_whitespace=False)
    double_opt_in = serializers.BooleanField(required=False)
    redirect_url = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    thank_you = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class FormOutputSerializer(serializers.ModelSerializer):
    hosted_url = serializers.SerializerMethodField()
    embed_url = serializers.SerializerMethodField()

    class Meta:
        model = Form
        fields = (
            "id",
            "name",
            "site_key",
            "allowed_origins",
            "fields",
            "progressive",
            "consent_text",
            "double_opt_in",
            "redirect_url",
            "thank_you",
            "hosted_url",
            "embed_url",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_hosted_url(self, form: Form) -> str:
        return reverse("capture-hosted", kwargs={"site_key": form.site_key})

    def get_embed_url(self, form: Form) -> str:
        return reverse("capture-embed", kwargs={"site_key": form.site_key})


class CaptureInputSerializer(serializers.Serializer):
    site_key = serializers.CharField(max_length=64)
    fields = serializers.JSONField()
    consent = serializers.BooleanField(required=False, default=False)
    visitor_id = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    referrer = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    page_url = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    # The render token issued with the form (capture.tokens): fill time and questions asked.
    token = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
    # Where the visitor first came from, as its browser kept it (UTM, referrer, page_url, at).
    first_touch = serializers.JSONField(required=False, default=dict)
    utm_source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_medium = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_campaign = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_term = serializers.CharField(max_length=200, required=False, allow_blank=True)
    utm_content = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def utm(self) -> dict:
        return {k: self.validated_data[k] for k in UTM_KEYS if self.validated_data.get(k)}


class CaptureAcceptedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    thank_you = serializers.CharField()
    redirect_url = serializers.CharField()


class SubmissionSerializer(serializers.ModelSerializer):
    form_name = serializers.CharField(source="form.name", read_only=True)

    class Meta:
        model = Submission
        fields = (
            "id",
            "form",
            "form_name",
            "status",
            "reason",
            "data",
            "consent",
            "visitor_key",
            "utm",
            "referrer",
            "page_url",
            "first_touch",
            "ip",
            "lead",
            "error",
            "created_at",
            "processed_at",
        )
        read_only_fields = fields


class ReviewInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=("release", "discard"))


class SubmissionListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=SubmissionStatus.values, required=False)

"""Shapes of the integrations API: what comes in is checked for type and size here; what a
URL or an event list may be is the services' business (their field errors come back as 400)."""

from __future__ import annotations

import json

from rest_framework import serializers

from integrations.models import ApiKey, Delivery, DeliveryAttempt, Scope, Webhook
from leadcrm.events import WEBHOOK_EVENTS


class ApiKeyInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices), min_length=1, max_length=4)


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiKey
        fields = ("id", "name", "prefix", "scopes", "user", "active", "created_at", "last_used_at", "revoked_at")


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once: only its prefix and a hash are kept.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = (*ApiKeyOutputSerializer.Meta.fields, "key")


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, trim_whitespace=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[(e, e) for e in WEBHOOK_EVENTS]), min_length=1, max_length=20
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    active = serializers.BooleanField(required=False, default=True)


class WebhookOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Webhook
        fields = (
            "id",
            "description",
            "url",
            "events",
            "active",
            "owner",
            "consecutive_failures",
            "failing_since",
            "disabled_at",
            "disabled_reason",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        )


class WebhookWithSecretSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(read_only=True, help_text="whsec_…: verify the signatures with it.")

    class Meta(WebhookOutputSerializer.Meta):
        fields = (*WebhookOutputSerializer.Meta.fields, "secret")


class ReplayRangeSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    failed_only = serializers.BooleanField(required=False, default=False)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ("number", "at", "url", "request_headers", "status_code", "response_excerpt", "duration_ms", "error")


class DeliverySerializer(serializers.ModelSerializer):
    payload = serializers.SerializerMethodField()
    duration_ms = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = (
            "id",
            "webhook",
            "lead",
            "event",
            "msg_id",
            "status",
            "attempts",
            "last_status_code",
            "duration_ms",
            "created_at",
            "next_attempt_at",
            "delivered_at",
            "replays",
            "payload",
        )

    def get_payload(self, obj: Delivery) -> dict:
        return json.loads(obj.body)

    def get_duration_ms(self, obj: Delivery) -> int | None:
        last = (self.context.get("last_attempts") or {}).get(obj.pk)
        return last.duration_ms if last is not None else None


class DeliveryDetailSerializer(DeliverySerializer):
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = (*DeliverySerializer.Meta.fields, "attempt_log")

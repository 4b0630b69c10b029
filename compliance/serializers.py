"""Shapes of the GDPR API (SPEC.md "Nurturing, capture and compliance API")."""

from __future__ import annotations

from rest_framework import serializers

from compliance.services import REASON_MAX_LENGTH


class EraseInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REASON_MAX_LENGTH, help_text="Why (e.g. the person's request).")


class ErasureOutputSerializer(serializers.Serializer):
    lead = serializers.IntegerField(source="lead_id")
    status = serializers.ChoiceField(choices=["erased", "already_erased"])
    erasure = serializers.IntegerField(source="erasure_id", help_text="The receipt's id.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Rows anonymised per table.")


class PersonExportSerializer(serializers.Serializer):
    format = serializers.CharField()
    generated_at = serializers.DateTimeField()
    lead = serializers.DictField(help_text="The lead's row.")
    tables = serializers.DictField(
        child=serializers.ListField(child=serializers.DictField()),
        help_text="Every table holding the person's data (app_label.Model) -> their rows.",
    )

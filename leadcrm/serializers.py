"""Output serializers of the project's own API: background jobs and the audit log."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from leadcrm.actors import ActorType
from leadcrm.models import Job, JobStatus

# --- jobs ---------------------------------------------------------------------------------


class JobSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=JobStatus.choices)
    counts = serializers.DictField(
        child=serializers.IntegerField(), help_text="What the committed chunks did so far, e.g. leads, changed."
    )
    error = serializers.CharField(help_text="The last failed attempt's message (empty when none).")

    class Meta:
        model = Job
        fields = ["id", "kind", "status", "counts", "attempts", "error", "created_at", "heartbeat_at", "finished_at"]
        read_only_fields = fields


class JobStartedSerializer(serializers.Serializer):
    """The answer (202) of an endpoint that started (or joined) a job."""

    job = JobSerializer()
    status_url = serializers.CharField(help_text="GET it for the job's progress.")
    joined = serializers.BooleanField(help_text="A job was already queued or running: this request joined it.")
    after_current_run = serializers.BooleanField(
        help_text="The job was already running: one more run follows it, for what changed meanwhile."
    )


# --- audit log ----------------------------------------------------------------------------


class AuditActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class AuditTargetSerializer(serializers.Serializer):
    type = serializers.CharField(source="target_type", help_text="The changed object's `app_label.model`.")
    id = serializers.CharField(source="target_id", allow_blank=True, help_text="Its id, as text.")
    label = serializers.CharField(
        source="target_repr", allow_blank=True, help_text="What it was called when it changed (may be blank)."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A lead field edit",
            value={
                "id": 812,
                "at": "2026-11-30T09:12:44.120000Z",
                "actor": {"id": 7, "username": "claire"},
                "actor_kind": "user",
                "action": "lead.update",
                "target": {"type": "leads.lead", "id": "123", "label": "ann@acme.example"},
                "changes": {"city": ["Paris", "Lyon"], "job_title": ["", "CTO"]},
                "details": {},
            },
            response_only=True,
        )
    ]
)
class AuditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = AuditActorSerializer(allow_null=True, help_text="The user who acted; null for automation.")
    actor_kind = serializers.ChoiceField(choices=ActorType.choices)
    action = serializers.CharField(
        help_text="The service, in the domain's words: `lead.update`, `routing.rule.create`."
    )
    target = AuditTargetSerializer(source="*")
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        help_text="Each changed field as `[old, new]` (null for a value that did not exist).",
    )
    details = serializers.DictField(
        child=serializers.JSONField(), help_text="Context: the reason given, the batch, the rule set..."
    )

"""Shapes of the workflow API. What a trigger, conditions and actions may say is the
workflow rules' business (nurturing.workflow_rules, applied by the services: their field
errors come back as 400s); here only the envelope: types, sizes, no NUL byte anywhere."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from nurturing.models import Workflow, WorkflowRun, WorkflowRunResult

MAX_JSON = 100_000  # characters of one serialised field


def _envelope(value: object) -> object:
    text = json.dumps(value)
    if len(text) > MAX_JSON:
        raise serializers.ValidationError(f"At most {MAX_JSON} characters.")
    if "\\u0000" in text:
        raise serializers.ValidationError("No NUL character.")
    return value


class WorkflowInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    active = serializers.BooleanField(default=True)
    trigger = serializers.DictField(
        help_text='What starts it: {"event": "lead.stage_changed", "to": "MQL"}, {"event": "lead.score_changed", '
        '"crosses": 70}, {"event": "lead.activity_recorded", "type": "form_submit"}, {"event": "lead.created"}, '
        '{"segment_entered": id}, {"segment_left": id}, {"event": "email.clicked", "template"?: id} '
        '(also email.opened, email.replied), {"inactive_days": N}, {"date_property": "renewal_date", '
        '"offset_days": -30}.'
    )
    conditions = serializers.DictField(
        default=dict,
        help_text='On the lead, as sequence branches: {"all": [...]}, {"any": [...]}, {"not": c}, '
        '{"field": "grade", "op": "in", "value": ["A", "B"]}, {"segment": id}; {} always holds.',
    )
    actions = serializers.ListField(
        child=serializers.DictField(),
        max_length=20,
        help_text='In order, as sequence steps: {"type": "email", "template": id}, {"type": "task", "kind": "call", '
        '"due_in_hours": 24, "title"?}, {"type": "update", "field": "city" | "properties.<key>", "value": v}, '
        '{"type": "notify_owner", "text"?}, {"type": "move_stage", "to": "SQL"}, {"type": "enroll", "sequence": id}, '
        '{"type": "assign", "user": id}, {"type": "route"}.',
    )

    def validate_trigger(self, value):
        return _envelope(value)

    def validate_conditions(self, value):
        return _envelope(value)

    def validate_actions(self, value):
        return _envelope(value)


class RunCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    skipped = serializers.IntegerField()
    loop = serializers.IntegerField()
    failed = serializers.IntegerField()
    last_run_at = serializers.DateTimeField(allow_null=True)


class WorkflowOutputSerializer(serializers.ModelSerializer):
    trigger = serializers.JSONField()
    conditions = serializers.JSONField()
    actions = serializers.JSONField()
    runs = serializers.SerializerMethodField(help_text="Runs by result among the leads the caller may see.")

    class Meta:
        model = Workflow
        fields = ["id", "name", "active", "trigger", "conditions", "actions", "runs", "created_at", "updated_at"]
        read_only_fields = fields

    @extend_schema_field(RunCountsSerializer)
    def get_runs(self, workflow: Workflow) -> dict:
        return self.context["counts"][workflow.pk]


@extend_schema_field(OpenApiTypes.OBJECT)
class _TraceStep(serializers.JSONField):
    pass


class WorkflowRunSerializer(serializers.ModelSerializer):
    lead = serializers.IntegerField(source="lead_id")
    result = serializers.ChoiceField(choices=WorkflowRunResult.choices)
    trigger = serializers.JSONField(help_text="The event and what happened (the stage change, the score move...).")
    trace = serializers.ListField(
        child=_TraceStep(), help_text="The trigger, the conditions' answer, each action's outcome, in order."
    )

    class Meta:
        model = WorkflowRun
        fields = ["id", "lead", "key", "trigger", "result", "trace", "depth", "error", "at"]
        read_only_fields = fields

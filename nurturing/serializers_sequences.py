"""Shapes of the sequence API. What a step tree may say is the sequence rules' business
(nurturing.sequence_rules, applied by the services: their field errors come back as 400s);
here only the envelope is checked: types, sizes, no NUL byte anywhere."""

from __future__ import annotations

import json
import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from nurturing import sequence_tree
from nurturing.models import Enrollment, EnrollmentState, Reentry, Sequence, StepRun

EXIT_REASONS = ("reply", "opt_out", "bounce", "stage_change", "converted")
REENTRY = re.compile(r"^(never|always|after_days:[1-9][0-9]{0,4})$")
MAX_STEPS_JSON = 200_000  # characters of the serialised tree
MAX_LEADS = 10_000


def reentry_text(sequence: Sequence) -> str:
    """The API's one-string form of the model's two fields: "after_days:30"."""
    if sequence.reentry == Reentry.AFTER_DAYS:
        return f"after_days:{sequence.reentry_days or 0}"
    return sequence.reentry


class SequenceInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    active = serializers.BooleanField(default=True)
    exit_on = serializers.ListField(
        child=serializers.ChoiceField(choices=EXIT_REASONS), default=list, max_length=len(EXIT_REASONS)
    )
    reentry = serializers.CharField(
        default="never", max_length=20, help_text='"never", "always" or "after_days:N" (N from 1 to 99999).'
    )
    steps = serializers.ListField(
        child=serializers.DictField(),
        default=list,
        max_length=200,
        help_text="The ordered steps (SPEC: wait, email, split, branch, task, update, notify_owner, "
        "move_stage, enroll); a PATCH with steps makes a new version.",
    )
    move_running = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text="With new steps: move the running enrollments to the new version (else they finish on theirs).",
    )

    def validate_reentry(self, value: str) -> str:
        if not REENTRY.match(value):
            raise serializers.ValidationError('One of "never", "always", "after_days:N".')
        return value

    def validate_steps(self, value: list) -> list:
        text = json.dumps(value)
        if len(text) > MAX_STEPS_JSON:
            raise serializers.ValidationError(f"At most {MAX_STEPS_JSON} characters of steps.")
        if "\\u0000" in text:
            raise serializers.ValidationError("No NUL character in a step.")
        return value


class SequenceOutputSerializer(serializers.ModelSerializer):
    reentry = serializers.SerializerMethodField(help_text='"never", "always" or "after_days:N".')
    version = serializers.SerializerMethodField(help_text="The current version's number.")
    steps = serializers.SerializerMethodField(help_text="The current version's steps.")
    enrollments = serializers.SerializerMethodField(
        help_text="Enrollments by state, among the leads the caller may see."
    )

    class Meta:
        model = Sequence
        fields = [
            "id", "name", "active", "exit_on", "reentry", "version", "steps", "enrollments",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_reentry(self, sequence: Sequence) -> str:
        return reentry_text(sequence)

    def get_version(self, sequence: Sequence) -> int | None:
        return sequence.current_version.number if sequence.current_version_id else None

    def get_steps(self, sequence: Sequence) -> list[dict]:
        return sequence.current_version.steps if sequence.current_version_id else []

    def get_enrollments(self, sequence: Sequence) -> dict[str, int]:
        return self.context.get("counts", {}).get(sequence.pk, {})


class EnrollInputSerializer(serializers.Serializer):
    leads = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=MAX_LEADS,
        help_text="Lead ids (or `segment`).",
    )
    segment = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="Enroll the segment's members."
    )

    def validate(self, attrs: dict) -> dict:
        if ("leads" in attrs) == ("segment" in attrs):
            raise serializers.ValidationError({"leads": ["Give either leads or a segment."]})
        if "leads" in attrs and not attrs["leads"]:
            raise serializers.ValidationError({"leads": ["At least one lead."]})
        return attrs


class EnrollResultSerializer(serializers.Serializer):
    results = serializers.DictField(
        child=serializers.CharField(),
        help_text='Per lead id: "enrolled" or why not ("no_consent", "already_enrolled", "reentry", '
        '"not_found", "inactive").',
    )
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="How many leads per answer.")


class StepRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepRun
        fields = ["id", "path", "type", "at", "outcome", "detail", "message"]
        read_only_fields = fields


class CurrentStepSerializer(serializers.Serializer):
    path = serializers.CharField()
    type = serializers.CharField()


class EnrollmentSerializer(serializers.ModelSerializer):
    sequence_name = serializers.CharField(source="sequence.name", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    state = serializers.ChoiceField(choices=EnrollmentState.choices, read_only=True)
    current_step = serializers.SerializerMethodField(help_text="The next step to run; null once done.")
    step_runs = StepRunSerializer(many=True, read_only=True)

    class Meta:
        model = Enrollment
        fields = [
            "id", "sequence", "sequence_name", "lead", "version", "state", "current_step", "next_run_at",
            "steps_run", "enrolled_at", "ended_at", "exit_reason", "enrolled_by", "last_error", "step_runs",
        ]  # fmt: skip
        read_only_fields = fields

    @staticmethod
    def current_step_of(enrollment: Enrollment) -> dict | None:
        if not enrollment.is_active or not enrollment.cursor:
            return None
        step = sequence_tree.step_at(enrollment.version.steps, enrollment.cursor)
        try:
            path = sequence_tree.to_str(enrollment.cursor)
        except sequence_tree.PathError:
            return None
        return {"path": path, "type": (step or {}).get("type", "")}

    @extend_schema_field(CurrentStepSerializer(allow_null=True))
    def get_current_step(self, enrollment: Enrollment) -> dict | None:
        return self.current_step_of(enrollment)


class EnrollmentStopSerializer(serializers.Serializer):
    stopped = serializers.IntegerField(help_text="1 when the enrollment was active and is now stopped, else 0.")
    enrollment = EnrollmentSerializer()


# --- the report -----------------------------------------------------------------------------


def _counts_field(help_text: str = "") -> serializers.DictField:
    return serializers.DictField(child=serializers.IntegerField(), help_text=help_text)


def _rates_field(help_text: str = "") -> serializers.DictField:
    return serializers.DictField(child=serializers.FloatField(allow_null=True), help_text=help_text)


class StepStatsSerializer(serializers.Serializer):
    path = serializers.CharField()
    type = serializers.CharField()
    depth = serializers.IntegerField()
    counts = _counts_field(
        "queued, sent, delivered, opened, clicked, replied, unsubscribed, bounced, complained, failed."
    )
    rates = _rates_field("delivered and bounced over sent; opened, clicked, replied, unsubscribed over delivered.")


class VariantStatsSerializer(serializers.Serializer):
    key = serializers.CharField(help_text='"<split path>:<index>", as messages name it.')
    index = serializers.IntegerField()
    weight = serializers.JSONField(allow_null=True)
    enrolled = serializers.IntegerField(help_text="Enrollments that took this variant.")
    mql = serializers.IntegerField(help_text="Of them, leads that reached MQL or beyond after enrolling.")
    recipients = serializers.IntegerField(help_text="Enrollments that were sent a message of this variant.")
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    replied = serializers.IntegerField()
    rates = _rates_field("opened, clicked, replied over recipients; mql over enrolled.")
    messages = _counts_field("The variant's messages, as for a step.")
    message_rates = _rates_field()


class SplitStatsSerializer(serializers.Serializer):
    path = serializers.CharField()
    variants = VariantStatsSerializer(many=True)
    p_values = _rates_field(
        "Chi-square p-value of the variants' difference per metric (opened, clicked, replied, mql)."
    )
    metric = serializers.CharField(help_text="The metric the winner is picked on.")
    winner = serializers.CharField(allow_null=True, help_text="The winning variant's key at 95 %, else null.")
    reason = serializers.CharField(help_text="winner, not_significant, too_few, no_data or single_variant.")
    p_value = serializers.FloatField(allow_null=True)
    pairwise = _rates_field("The best variant against each other (z-test p-values).")


class EnrollmentTotalsSerializer(serializers.Serializer):
    enrolled = serializers.IntegerField()
    by_state = _counts_field()
    mql = serializers.IntegerField(help_text="Enrolled leads that reached MQL or beyond after enrolling.")
    mql_rate = serializers.FloatField(allow_null=True)


class SequenceStatsSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    version = serializers.IntegerField(allow_null=True)
    enrollments = EnrollmentTotalsSerializer()
    steps = StepStatsSerializer(many=True)
    splits = SplitStatsSerializer(many=True)

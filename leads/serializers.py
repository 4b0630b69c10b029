"""Input serializers validate and normalise; output serializers render. None of them saves."""

from __future__ import annotations

from itertools import chain

from rest_framework import serializers

from accounts.models import User
from leadcrm import fields
from leads.fields import (
    ACTIVITY_FIELDS,
    CONSENT_FIELDS,
    CONSENT_TEXT_MAX_LENGTH,
    INPUT_FIELDS,
    LIFECYCLE_FIELDS,
    MAX_COMPANY_SIZE,
    SCORE_FIELDS,
    UTM_FIELDS,
    InputField,
)
from leads.models import (
    EVENT_TYPES,
    ConsentPurpose,
    Grade,
    Lead,
    LegalBasis,
    Stage,
    Task,
    TaskKind,
    Touchpoint,
    TouchpointType,
)
from leads.normalize import normalize_currency, normalize_properties
from leads.validation import clean_lead_row

# What the API answers for a lead: the inputs (with the company's id), then the read-only
# lifecycle, owner, scores, consent and activity.
OUTPUT_FIELDS = [
    "id",
    *chain.from_iterable((f.name, "company_id") if f.name == "company" else (f.name,) for f in INPUT_FIELDS),
    *LIFECYCLE_FIELDS,
    "owner",
    "team",
    *SCORE_FIELDS,
    *CONSENT_FIELDS,
    *ACTIVITY_FIELDS,
    "created_at",
    "updated_at",
]


class PropertiesField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return normalize_properties(super().to_internal_value(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


def _input_field(spec: InputField) -> serializers.Field:
    """The documented shape of one lead input (the rules themselves: `clean_lead_row`)."""
    if spec.kind == "email":
        return serializers.EmailField(max_length=spec.max_length)
    if spec.kind == "size":
        return serializers.IntegerField(min_value=0, max_value=MAX_COMPANY_SIZE, required=False, allow_null=True)
    if spec.kind == "properties":
        return PropertiesField(required=False)
    source = {"source": spec.attr} if spec.attr != spec.name else {}
    return serializers.CharField(max_length=spec.max_length, required=False, allow_blank=True, **source)


class ConsentInputSerializer(serializers.Serializer):
    """What the person agreed to (the rules: `leads.validation.clean_consent`). With
    `double_opt_in`, the lead stays pending until it clicks the confirmation e-mail, sent at
    once."""

    status = serializers.ChoiceField(choices=["opt_in", "opt_out"])
    source = serializers.CharField(max_length=200, required=False, allow_blank=True)
    text = serializers.CharField(max_length=CONSENT_TEXT_MAX_LENGTH, required=False, allow_blank=True)
    at = serializers.DateTimeField(required=False, allow_null=True)
    double_opt_in = serializers.BooleanField(required=False, default=False)
    ip = serializers.IPAddressField(required=False, allow_blank=True, help_text="The person's IP (else the caller's).")
    user_agent = serializers.CharField(max_length=500, required=False, allow_blank=True)
    purpose = serializers.ChoiceField(choices=ConsentPurpose.choices, required=False)
    legal_basis = serializers.ChoiceField(choices=LegalBasis.choices, required=False)


class LeadInputSerializer(serializers.Serializer):
    """The public lead fields of SPEC.md, normalised: country to ISO alpha-2, phone to E.164
    when it parses, e-mail lower-cased, `company` to the company name."""

    consent = ConsentInputSerializer(required=False, write_only=True)

    # The fields come from the one table, `leads.fields.INPUT_FIELDS`.

    def get_fields(self):
        return {**{spec.name: _input_field(spec) for spec in INPUT_FIELDS}, **super().get_fields()}

    def to_internal_value(self, data):
        """The fields document the shape; the rules live in `clean_lead_row`, shared with
        the bulk path, the CSV import and the admin."""
        clean, errors = clean_lead_row(data, partial=self.partial)
        if errors:
            raise serializers.ValidationError(errors)
        return clean


class LeadHistoryRowSerializer(LeadInputSerializer):
    """A bulk row; admins migrating history may also give the current stage, owner and
    closing date."""

    stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    owner = fields.IntegerField(required=False, allow_null=True)
    closed_at = fields.DateTimeField(required=False, allow_null=True)


class LeadBulkInputSerializer(serializers.Serializer):
    """Documents the body; rows are validated one by one with `clean_lead_row`."""

    leads = serializers.ListField(child=LeadHistoryRowSerializer(), allow_empty=False, max_length=10_000)


class LeadOutputSerializer(serializers.ModelSerializer):
    company = serializers.CharField(source="company_name")
    company_id = serializers.IntegerField(allow_null=True)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    team = serializers.IntegerField(source="team_id", allow_null=True)

    class Meta:
        model = Lead
        fields = OUTPUT_FIELDS
        read_only_fields = fields


class RecordedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["recorded"])


class BulkOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    recorded = serializers.IntegerField(help_text="Rows naming a lead the caller cannot see: kept as touchpoints.")
    failed = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField())


class TransitionInputSerializer(serializers.Serializer):
    to = serializers.ChoiceField(choices=Stage.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    override = serializers.BooleanField(required=False, default=False)


class BantSerializer(serializers.Serializer):
    budget = serializers.CharField(allow_blank=True, max_length=2000)
    authority = serializers.CharField(allow_blank=True, max_length=2000)
    need = serializers.CharField(allow_blank=True, max_length=2000)
    timeline = serializers.CharField(allow_blank=True, max_length=2000)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10000, default="")
    is_complete = serializers.BooleanField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="None until first saved.")


class OpportunityInputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    currency = serializers.CharField(min_length=3, max_length=3)
    expected_close = serializers.DateField()
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    def validate_currency(self, value: str) -> str:
        try:
            return normalize_currency(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


class OpportunityOutputSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    expected_close = serializers.DateField()
    status = serializers.CharField()
    lost_reason = serializers.CharField()
    closed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class EventInputSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    email = serializers.EmailField(required=False, max_length=254)
    lead_id = fields.IntegerField(required=False, min_value=1)
    visitor_id = serializers.CharField(required=False, max_length=100, allow_blank=False)
    url = serializers.URLField(required=False, allow_blank=True, max_length=2000)
    occurred_at = fields.DateTimeField(required=False)
    properties = PropertiesField(required=False)

    def get_fields(self):
        fields = super().get_fields()
        properties = fields.pop("properties")
        for name in UTM_FIELDS:  # as long as the touchpoint's columns
            max_length = Touchpoint._meta.get_field(name).max_length
            fields[name] = serializers.CharField(max_length=max_length, required=False, allow_blank=True)
        return {**fields, "properties": properties}

    def validate(self, attrs: dict) -> dict:
        if not (attrs.get("email") or attrs.get("lead_id") or attrs.get("visitor_id")):
            raise serializers.ValidationError(
                {"non_field_errors": ["Give the lead's `email` or `lead_id`, or an anonymous `visitor_id`."]}
            )
        return attrs


class HistoryItemSerializer(serializers.Serializer):
    """One row of a lead's history (`leads.selectors.lead_history`); `kind` says which of
    the optional fields are present."""

    kind = serializers.ChoiceField(
        choices=["stage_change", "assignment", "score_change", "touchpoint", "audit", "message"]
    )
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_null=True, required=False, help_text="The username, if a user acted.")
    actor_type = serializers.CharField(required=False, help_text="`user`, `api`, `system`, ...")
    reason = serializers.CharField(required=False, allow_blank=True)
    # stage_change
    from_stage = serializers.ChoiceField(choices=Stage.choices, allow_blank=True, required=False)
    to_stage = serializers.ChoiceField(choices=Stage.choices, required=False)
    # assignment
    from_owner = serializers.CharField(allow_null=True, required=False)
    to_owner = serializers.CharField(allow_null=True, required=False)
    team = serializers.IntegerField(allow_null=True, required=False)
    details = serializers.DictField(required=False)
    # score_change
    old_score = serializers.IntegerField(allow_null=True, required=False)
    new_score = serializers.IntegerField(allow_null=True, required=False)
    fit_score = serializers.IntegerField(allow_null=True, required=False)
    engagement_score = serializers.IntegerField(allow_null=True, required=False)
    grade = serializers.ChoiceField(choices=Grade.choices, allow_blank=True, required=False)
    reasons = serializers.ListField(child=serializers.DictField(), required=False)
    # touchpoint
    type = serializers.ChoiceField(choices=TouchpointType.choices, required=False)
    url = serializers.CharField(allow_blank=True, required=False)
    utm = serializers.DictField(child=serializers.CharField(), required=False)
    properties = serializers.DictField(required=False)
    # audit
    action = serializers.CharField(required=False)
    changes = serializers.DictField(required=False, help_text="{field: [old, new]}")
    # message (an e-mail of nurturing)
    message = serializers.IntegerField(required=False, help_text="The message's id (GET /api/v1/messages/).")
    subject = serializers.CharField(required=False, allow_blank=True)
    status = serializers.CharField(required=False, help_text="queued, sent, failed, bounced, opened, clicked...")
    template = serializers.IntegerField(allow_null=True, required=False)
    step = serializers.CharField(required=False, allow_blank=True)
    variant = serializers.CharField(required=False, allow_blank=True)


class EventsOutputSerializer(serializers.Serializer):
    class EventRecordedSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        lead_id = serializers.IntegerField(allow_null=True, help_text="None for an anonymous visitor's event.")

    recorded = serializers.IntegerField()
    events = EventRecordedSerializer(many=True)


class FunnelSerializer(serializers.Serializer):
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Leads per current stage.")
    reached = serializers.DictField(child=serializers.IntegerField(), help_text="Leads that ever reached each stage.")
    conversion = serializers.DictField(
        child=serializers.FloatField(allow_null=True), help_text="`MCL->MQL`: share of one stage reaching the next."
    )


class FunnelQuerySerializer(serializers.Serializer):
    created_after = fields.DateTimeField(required=False)
    created_before = fields.DateTimeField(required=False)
    source = serializers.CharField(required=False)
    campaign = serializers.CharField(required=False)


class UserRefField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return User.objects.filter(is_active=True)


class TaskInputSerializer(serializers.Serializer):
    """Shapes only: the rules of a task's fields and of its holder are the service's."""

    lead = serializers.IntegerField(min_value=1)
    kind = serializers.ChoiceField(choices=TaskKind.choices, default=TaskKind.TODO)
    title = serializers.CharField(required=False, allow_blank=True, max_length=200)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=5000, trim_whitespace=False)
    due_at = serializers.DateTimeField()
    assignee = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    done = serializers.BooleanField(required=False)


class TaskOutputSerializer(serializers.ModelSerializer):
    done = serializers.BooleanField(read_only=True)

    class Meta:
        model = Task
        fields = ["id", "lead", "assignee", "kind", "title", "notes", "due_at", "done", "done_at", "created_at"]
        read_only_fields = fields

from django.contrib import admin

from leadcrm.admin import ReadOnlyAdmin
from nurturing.models import (
    EmailTemplate,
    Enrollment,
    Message,
    Segment,
    SenderIdentity,
    Sequence,
    Suppression,
    Topic,
    Workflow,
    WorkflowRun,
)


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    """Segments are written through the API and pages (nurturing.services), which check the
    filter and keep the membership."""

    list_display = ("name", "kind", "member_count", "evaluated_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("name", "kind", "filter", "member_count", "evaluated_at", "created_by")


# The rest of nurturing is written through its API and pages (nurturing.services: checked,
# audited, versioned); the admin shows it for support and reading.


@admin.register(EmailTemplate)
class EmailTemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "subject", "sender", "topic", "updated_at")
    list_filter = ("kind", "topic")
    search_fields = ("name", "subject")


@admin.register(SenderIdentity)
class SenderIdentityAdmin(ReadOnlyAdmin):
    list_display = ("name", "from_email", "reply_to", "is_default")


@admin.register(Topic)
class TopicAdmin(ReadOnlyAdmin):
    list_display = ("key", "name", "name_fr")


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ("queued_at", "to_email", "subject", "kind", "status", "step", "variant", "attempts")
    list_filter = ("status", "kind")
    search_fields = ("to_email", "subject", "idempotency_key")
    raw_id_fields = ("lead", "template", "enrollment")
    list_select_related = ()
    date_hierarchy = "queued_at"


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ("email", "reason", "source", "created_at")
    list_filter = ("reason",)
    search_fields = ("email",)


@admin.register(Sequence)
class SequenceAdmin(ReadOnlyAdmin):
    list_display = ("name", "active", "reentry", "current_version", "updated_at")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "sequence", "lead", "state", "next_run_at", "steps_run", "exit_reason")
    list_filter = ("state", "sequence")
    raw_id_fields = ("lead", "sequence", "version")
    list_select_related = ("sequence", "lead")


@admin.register(Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ("name", "active", "updated_at")
    list_filter = ("active",)
    search_fields = ("name",)


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnlyAdmin):
    list_display = ("at", "workflow", "lead", "result", "depth", "error")
    list_filter = ("result", "workflow")
    raw_id_fields = ("lead", "workflow")
    list_select_related = ("workflow", "lead")

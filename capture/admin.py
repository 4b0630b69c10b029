from django.contrib import admin

from capture.models import Form, Submission
from leadcrm.admin import ReadOnlyAdmin

# Forms and submissions are written through the API and pages (capture.services: checked,
# audited); the admin shows them for support and reading.


@admin.register(Form)
class FormAdmin(ReadOnlyAdmin):
    list_display = ("name", "site_key", "double_opt_in", "updated_at")
    search_fields = ("name", "site_key")


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    list_display = ("id", "form", "status", "reason", "lead", "created_at", "processed_at")
    list_filter = ("status", "reason", "form")
    raw_id_fields = ("lead",)

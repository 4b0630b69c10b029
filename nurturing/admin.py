from django.contrib import admin

from leadcrm.admin import ReadOnlyAdmin
from nurturing.models import Segment


@admin.register(Segment)
class SegmentAdmin(ReadOnlyAdmin):
    """Segments are written through the API and pages (nurturing.services), which check the
    filter and keep the membership."""

    list_display = ("name", "kind", "member_count", "evaluated_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("name", "kind", "filter", "member_count", "evaluated_at", "created_by")

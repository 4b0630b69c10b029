from django.contrib import admin

from nurturing.models import Segment


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    """Read-only here: segments are written through the API and pages (nurturing.services),
    which check the filter and keep the membership."""

    list_display = ("name", "kind", "member_count", "evaluated_at", "updated_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    readonly_fields = ("name", "kind", "filter", "member_count", "evaluated_at", "created_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

from django.contrib import admin

from enrichment.models import EnrichmentChange


@admin.register(EnrichmentChange)
class EnrichmentChangeAdmin(admin.ModelAdmin):
    """Read-only: the record of what providers set (changes go through the service)."""

    list_display = ("lead", "field", "old", "new", "provider", "confidence", "created_at")
    list_filter = ("provider", "field")
    search_fields = ("lead__email", "field", "new")
    raw_id_fields = ("lead",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

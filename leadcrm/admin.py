"""The audit log in the admin: read-only (nobody edits history), filterable, exportable."""

from __future__ import annotations

import csv

from django.contrib import admin
from django.http import HttpResponse

from leadcrm.csvsafe import safe_row
from leadcrm.models import AuditEntry

EXPORT_COLUMNS = (
    "at",
    "actor",
    "actor_kind",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "changes",
    "details",
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown in the admin, written elsewhere: through the services, which check and audit."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "actor_kind", "action", "target_type", "target_id", "target_repr")
    list_filter = ("action", "actor_kind", "target_type", ("at", admin.DateFieldListFilter))
    search_fields = ("action", "target_repr", "target_id", "actor__username")
    date_hierarchy = "at"
    list_select_related = ("actor",)
    actions = ["export_csv"]

    def has_module_permission(self, request) -> bool:
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self.admin_site.has_permission(request)  # every admin reads the log

    @admin.action(description="Export the selected entries as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        writer = csv.writer(response)
        writer.writerow(EXPORT_COLUMNS)
        for e in queryset.select_related("actor").order_by("at", "id").iterator(chunk_size=2000):
            writer.writerow(
                safe_row(
                    [
                        e.at.isoformat(),
                        e.actor.username if e.actor else "",
                        e.actor_kind,
                        e.action,
                        e.target_type,
                        e.target_id,
                        e.target_repr,
                        _json(e.changes),
                        _json(e.details),
                    ]
                )
            )
        return response


def _json(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""

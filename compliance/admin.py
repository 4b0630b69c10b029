"""Read-only admin views of the consent log and the erasure receipts (nothing is edited or
deleted here: the consent log is append-only, receipts are evidence)."""

from __future__ import annotations

from django.contrib import admin

from compliance.models import ErasedIdentity, Erasure
from leads.models import ConsentRecord


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "lead", "purpose", "status", "channel", "legal_basis", "source")
    list_filter = ("purpose", "status", "channel", "legal_basis")
    search_fields = ("lead__id", "source")
    raw_id_fields = ("lead",)


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin):
    list_display = ("erased_at", "lead_ref", "actor_kind", "actor_id", "reason")


@admin.register(ErasedIdentity)
class ErasedIdentityAdmin(ReadOnlyAdmin):
    list_display = ("email_hash", "first_erased_at")
    search_fields = ("email_hash",)

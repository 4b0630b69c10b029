"""Read-only admin views: the pages and the API are where integrations are changed (audited)."""

from django.contrib import admin

from integrations.models import ApiKey, Delivery, Webhook


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnly):
    list_display = ("name", "prefix", "scopes", "user", "created_at", "last_used_at", "revoked_at")
    exclude = ("hashed_key",)


@admin.register(Webhook)
class WebhookAdmin(ReadOnly):
    list_display = ("url", "events", "owner", "active", "consecutive_failures", "disabled_reason")
    exclude = ("secret", "previous_secret")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnly):
    list_display = ("id", "webhook", "event", "lead_id", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event")
    raw_id_fields = ("webhook", "lead")

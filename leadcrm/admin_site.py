"""The Django admin is for admins only: each role's daily work has its own pages, which
apply the object rules (who sees and changes which lead); the admin does not."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminSite(admin.AdminSite):
    def has_permission(self, request) -> bool:
        user = request.user
        return bool(user.is_authenticated and user.is_active and user.uses_admin)


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with the admins-only site above (INSTALLED_APPS names this)."""

    default_site = "leadcrm.admin_site.AdminSite"

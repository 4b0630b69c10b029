"""Admin for users and teams: roles, teams and each seller's routing profile."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import Notification, Team, User
from leadcrm.errors import Conflict


class LastAdminGuardMixin:
    """The form refuses to demote or deactivate the last active admin (accounts.services)."""

    def clean(self):
        data = super().clean()
        user = self.instance
        if user.pk is not None:

            def value(name):
                return data[name] if name in data else getattr(user, name)

            try:
                with transaction.atomic():
                    services.ensure_not_last_admin(
                        user=user,
                        role=value("role"),
                        is_active=value("is_active"),
                        is_superuser=value("is_superuser"),
                    )
            except Conflict as exc:
                raise forms.ValidationError(str(exc), code=exc.guard) from exc
        return data


class UserAdminForm(LastAdminGuardMixin, UserChangeForm):
    pass


class MemberForm(LastAdminGuardMixin, forms.ModelForm):
    class Meta:
        model = User
        fields = ("capacity", "weight", "routing_active", "is_active")


admin.site.site_header = _("LeadCRM administration")
admin.site.site_title = _("LeadCRM admin")
admin.site.index_title = _("Leads, people and settings")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserAdminForm
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "role",
        "team",
        "capacity",
        "weight",
        "routing_active",
        "is_active",
        "is_staff",
    )
    list_filter = ("role", "team", "routing_active", "is_active", "is_staff", "is_superuser")
    list_select_related = ("team",)
    search_fields = ("username", "email", "first_name", "last_name")
    raw_id_fields = ("team",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Role and team"), {"fields": ("role", "team")}),
        (
            _("Routing"),
            {
                "fields": ("capacity", "weight", "routing_active", "languages", "skills"),
                "description": _(
                    "Capacity: the most open leads this seller holds. Weight: their share in the "
                    "team's round-robin. Routing active off: away, takes no new leads."
                ),
            },
        ),
        (
            _("Permissions"),
            {
                "classes": ("collapse",),
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
            },
        ),
        (_("Important dates"), {"classes": ("collapse",), "fields": ("last_login", "date_joined")}),
    )

    def delete_model(self, request, obj):
        self.delete_queryset(request, User.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        """Deleting the last active admin is refused like demoting them."""
        try:
            with transaction.atomic():
                for user in queryset:
                    services.ensure_not_last_admin(user=user, role="", is_active=False, is_superuser=False)
                    user.delete()
        except Conflict as exc:
            messages.error(request, str(exc))

    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "usable_password", "password1", "password2")}),
        (_("Role and team"), {"fields": ("email", "role", "team")}),
    )


class MemberInline(admin.TabularInline):
    model = User
    form = MemberForm
    fk_name = "team"
    fields = ("username", "role", "capacity", "weight", "routing_active", "is_active")
    readonly_fields = ("username", "role")
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("member")
    verbose_name_plural = _("members")

    def has_add_permission(self, request, obj=None):
        return False  # people join a team from their user page


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "timezone", "created_at")
    list_select_related = ("manager",)
    search_fields = ("name",)
    raw_id_fields = ("manager",)
    readonly_fields = ("created_at",)
    inlines = (MemberInline,)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "kind", "text", "lead_id", "read_at")
    list_filter = ("kind",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    search_fields = ("user__username", "text")

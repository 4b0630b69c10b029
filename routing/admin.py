"""Admin for routing: rules (ordered, editable in the list), territories, partners, SLA
policies and settings; clocks, offers and round-robin counters read-only (audit)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from routing import rules, selectors
from routing.models import (
    Partner,
    PartnerOffer,
    RoundRobinState,
    RoutingRule,
    RoutingSettings,
    SlaClock,
    SlaPolicy,
    Territory,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RoutingRuleForm(forms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = "__all__"
        help_texts = {
            "conditions": (
                'Every key must hold: "country", "region", "industry", "source", "grade", "stage" as lists; '
                '"company_size_min/max", "score_min/max" as numbers; "properties" as {key: [values]}. '
                "{} matches every lead (the default rule)."
            )
        }

    def clean(self):
        data = super().clean()
        errors = rules.routing_rule_errors(
            conditions=data.get("conditions") or {},
            team=data.get("team"),
            user=data.get("user"),
            partner=data.get("partner"),
            partners_by_territory=bool(data.get("partners_by_territory")),
            regions=selectors.territory_names(),
            user_changed=self.instance.pk is None or "user" in self.changed_data,
        )
        for name, messages in errors.items():
            self.add_error(name if name in self.fields else None, messages)
        return data


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = ("position", "name", "conditions", "team", "user", "partner", "partners_by_territory", "active")
    list_display_links = ("name",)
    list_editable = ("position", "active")
    list_select_related = ("team", "user", "partner")
    raw_id_fields = ("user",)
    search_fields = ("name",)


@admin.register(Territory)
class TerritoryAdmin(admin.ModelAdmin):
    list_display = ("name", "countries")
    search_fields = ("name",)


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "user", "weight", "response_hours", "active")
    list_filter = ("kind", "active")
    filter_horizontal = ("territories",)
    raw_id_fields = ("user",)


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "grade",
        "stage",
        "minutes_to_first_touch",
        "reassign_after_minutes",
        "day_start",
        "day_end",
        "active",
    )


@admin.register(RoutingSettings)
class RoutingSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "route_on_mql", "route_on_capture", "default_team")

    def has_add_permission(self, request):
        return not RoutingSettings.objects.exists()


@admin.register(SlaClock)
class SlaClockAdmin(ReadOnlyAdmin):
    list_display = ("lead", "owner", "team", "started_at", "due_at", "first_touch_at", "breached_at", "reassigned_at")
    list_filter = ("team",)
    list_select_related = ("lead", "owner", "team")
    date_hierarchy = "started_at"


@admin.register(PartnerOffer)
class PartnerOfferAdmin(ReadOnlyAdmin):
    list_display = ("lead", "partner", "status", "offered_at", "deadline", "answered_at")
    list_filter = ("status", "partner")
    list_select_related = ("lead", "partner")


@admin.register(RoundRobinState)
class RoundRobinStateAdmin(ReadOnlyAdmin):
    list_display = ("team", "user", "served", "updated_at")
    list_select_related = ("team", "user")

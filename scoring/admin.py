"""Admin for scoring: rule sets with their rules inline; writes go through the services
(validation, versioning, background rescore on change of the active set)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from leadcrm.errors import ServiceError
from leads.models import ActorType
from leads.services import Actor
from scoring import services
from scoring.models import EngagementRule, FitRule, PredictiveModel, RuleSet


def _actor(request) -> Actor:
    return Actor(user=request.user, kind=ActorType.USER)


class FitRuleInline(admin.TabularInline):
    model = FitRule
    extra = 0


class EngagementRuleInline(admin.TabularInline):
    model = EngagementRule
    extra = 0


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "group", "version", "is_active", "mql_threshold", "created_at", "activated_at")
    list_filter = ("group", "is_active")
    readonly_fields = ("version", "is_active", "created_by", "created_at", "activated_at")
    inlines = [FitRuleInline, EngagementRuleInline]
    actions = ["activate", "copy"]

    def save_model(self, request, obj, form, change):
        data = {k: form.cleaned_data[k] for k in services.RULESET_FIELDS if k in form.cleaned_data}
        try:
            if change:
                services.ruleset_update(ruleset_id=obj.pk, data=data, actor=_actor(request))
            else:
                created = services.ruleset_create(data={**data, "group": obj.group}, actor=_actor(request))
                obj.pk, obj.version = created.pk, created.version
        except ServiceError as exc:
            raise ValidationError(str(exc.errors)) from exc

    def save_formset(self, request, form, formset, change):
        kind = "fit" if formset.model is FitRule else "engagement"
        names = services.FIT_RULE_FIELDS if kind == "fit" else services.ENGAGEMENT_RULE_FIELDS
        for obj in formset.deleted_objects:
            services.rule_delete(kind=kind, rule_id=obj.pk, actor=_actor(request))
        for f in formset.forms:
            if not f.has_changed() or f in formset.deleted_forms or not f.cleaned_data:
                continue
            data = {k: f.cleaned_data.get(k) for k in names}
            try:
                if f.instance.pk:
                    services.rule_update(kind=kind, rule_id=f.instance.pk, data=data, actor=_actor(request))
                else:
                    services.rule_create(ruleset_id=form.instance.pk, kind=kind, data=data, actor=_actor(request))
            except ServiceError as exc:
                messages.error(request, f"{kind} rule refused: {exc.errors}")

    @admin.action(description="Activate (rescores every lead in the background)")
    def activate(self, request, queryset):
        for ruleset in queryset:
            services.ruleset_activate(ruleset_id=ruleset.pk, actor=_actor(request))
        messages.success(request, "Activated; leads are being rescored.")

    @admin.action(description="Copy as a new draft version")
    def copy(self, request, queryset):
        for ruleset in queryset:
            services.ruleset_copy(ruleset_id=ruleset.pk, actor=_actor(request))


@admin.register(PredictiveModel)
class PredictiveModelAdmin(admin.ModelAdmin):
    list_display = ("version", "algorithm", "is_active", "auc", "n_train", "n_test", "created_at")
    exclude = ("blob",)
    readonly_fields = [f.name for f in PredictiveModel._meta.fields if f.name != "blob"]

    def has_add_permission(self, request):
        return False

"""Admin for scoring: rule sets with their rules inline; writes go through the services
(validation, versioning, background rescore on change of the active set)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from scoring import services
from scoring.models import EngagementRule, FitRule, PredictiveModel, RuleSet


def _actor(request) -> Actor:
    return Actor(user=request.user, kind=ActorType.USER)


def _add_errors(form: forms.ModelForm, errors: dict[str, list[str]]) -> None:
    """Service validation messages on the admin form: on their field when it is shown."""
    for name, messages_ in errors.items():
        field = name.rsplit(".", 1)[-1]
        form.add_error(field if field in form.fields else None, messages_)


class FitRuleForm(forms.ModelForm):
    class Meta:
        model = FitRule
        fields = list(services.FIT_RULE_FIELDS)

    def clean(self):
        data = super().clean()
        _add_errors(self, services.validate_fit_rule(data))
        return data


class EngagementRuleForm(forms.ModelForm):
    class Meta:
        model = EngagementRule
        fields = list(services.ENGAGEMENT_RULE_FIELDS)

    def clean(self):
        data = super().clean()
        _add_errors(self, services.validate_engagement_rule(data))
        return data


class RuleSetForm(forms.ModelForm):
    class Meta:
        model = RuleSet
        fields = ["group", *services.RULESET_FIELDS]

    def clean(self):
        data = super().clean()
        _add_errors(self, services.validate_ruleset({k: v for k, v in data.items() if v is not None}))
        return data


class FitRuleInline(admin.TabularInline):
    model = FitRule
    form = FitRuleForm
    extra = 0


class EngagementRuleInline(admin.TabularInline):
    model = EngagementRule
    form = EngagementRuleForm
    extra = 0


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ("__str__", "group", "version", "is_active", "mql_threshold", "created_at", "activated_at")
    list_filter = ("group", "is_active")
    form = RuleSetForm
    readonly_fields = ("version", "is_active", "created_by", "created_at", "activated_at")
    inlines = [FitRuleInline, EngagementRuleInline]
    actions = ["activate", "copy"]

    def save_model(self, request, obj, form, change):
        """Validated by the form with the service's own checks."""
        data = {k: form.cleaned_data[k] for k in services.RULESET_FIELDS if k in form.cleaned_data}
        if change:
            services.ruleset_update(ruleset_id=obj.pk, data=data, actor=_actor(request))
        else:
            created = services.ruleset_create(data={**data, "group": obj.group}, actor=_actor(request))
            obj.pk, obj.version = created.pk, created.version

    def save_formset(self, request, form, formset, change):
        """Rules through the services (the active set is rescored in the background)."""
        kind = "fit" if formset.model is FitRule else "engagement"
        names = services.FIT_RULE_FIELDS if kind == "fit" else services.ENGAGEMENT_RULE_FIELDS
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for f in formset.deleted_forms:
            if f.instance.pk:
                services.rule_delete(kind=kind, rule_id=f.instance.pk, actor=_actor(request))
                formset.deleted_objects.append(f.instance)
        for f in formset.forms:
            if f in formset.deleted_forms or not f.has_changed() or not f.cleaned_data:
                continue
            data = {k: f.cleaned_data.get(k) for k in names}
            try:
                if f.instance.pk:
                    rule = services.rule_update(kind=kind, rule_id=f.instance.pk, data=data, actor=_actor(request))
                    formset.changed_objects.append((rule, f.changed_data))
                else:
                    rule = services.rule_create(
                        ruleset_id=form.instance.pk, kind=kind, data=data, actor=_actor(request)
                    )
                    formset.new_objects.append(rule)
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

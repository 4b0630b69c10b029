"""Admin for leads and their activity, used by marketing and admins.

The admin never writes the lifecycle: the stage, its dates and the scores are read-only,
and saving a lead, its owner or its BANT goes through `leads.services`, so the admin gets
the same normalisation, audit rows and domain events as the API. History (stage changes,
assignments, touchpoints, visitors) is shown read-only: it is an audit trail.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from leadcrm.actors import Actor, ActorType
from leadcrm.fields import JSONFormField
from leadcrm.permissions import may_own_leads
from leads import normalize, services
from leads.fields import (
    ACTIVITY_FIELDS,
    CONSENT_FIELDS,
    COUNTRY_INPUT_MAX_LENGTH,
    INPUT_FIELDS,
    LIFECYCLE_FIELDS,
    SCORE_FIELDS,
    UTM_FIELDS,
    WRITABLE_FIELDS,
)
from leads.models import (
    BANT_CRITERIA,
    BANT_FIELDS,
    Assignment,
    Bant,
    Campaign,
    Company,
    ImportJob,
    Lead,
    Opportunity,
    SavedFilter,
    StageChange,
    Touchpoint,
    Visitor,
)
from leads.validation import clean_lead_row

ADMIN_REASON = "Changed in the admin"


def _actor(request) -> Actor:
    return Actor(request.user, ActorType.USER)


def _reload(obj, fresh) -> None:
    """Give the admin's in-memory object the values a service just saved."""
    for field in type(obj)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(fresh, field.attname))
    obj._state.adding = False
    obj._state.db = fresh._state.db
    obj._state.fields_cache = {}


class ReadOnlyAdmin(admin.ModelAdmin):
    """An audit trail: anyone with the view permission reads it, nobody edits it here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- companies --------------------------------------------------------------------------


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "domain", "industry", "size", "country", "owner", "lead_count", "created_at")
    list_filter = ("country", "industry")
    search_fields = ("name", "domain")
    raw_id_fields = ("owner",)
    readonly_fields = ("created_at", "updated_at")
    list_select_related = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(lead_count=Count("leads"))

    @admin.display(description=_("leads"), ordering="lead_count")
    def lead_count(self, obj):
        return obj.lead_count

    def save_model(self, request, obj, form, change):
        obj.domain = normalize.normalize_domain(obj.domain or "") or None
        super().save_model(request, obj, form, change)


# --- leads ------------------------------------------------------------------------------


class LeadAdminForm(forms.ModelForm):
    """The admin's lead form reads its input with the API's and the imports' rules
    (`clean_lead_row`): the same e-mail, lengths, country, domain, phone and custom fields."""

    # Wider than the stored code: "France" or "Allemagne" are accepted and normalised to FR, DE.
    country = forms.CharField(
        max_length=COUNTRY_INPUT_MAX_LENGTH, required=False, help_text=_("ISO code or English / French name.")
    )
    properties = JSONFormField(
        required=False,
        help_text=_('Custom fields: a JSON object of strings, numbers and booleans, e.g. {"plan": "pro"}.'),
    )

    class Meta:
        model = Lead
        fields = "__all__"
        help_texts = {
            "team": _("The pool holding the lead while it has no owner; with an owner, the owner's team."),
        }

    def clean_owner(self):
        owner = self.cleaned_data.get("owner")
        if owner is not None and not may_own_leads(owner):
            raise forms.ValidationError(_("Leads can only be assigned to active sellers or managers."))
        return owner

    def clean(self):
        data = super().clean()
        # Only what the form read (a field it refused already has its error); the e-mail is
        # read-only once the lead exists, hence `partial`.
        row = {f.name: data[f.attr] for f in INPUT_FIELDS if f.attr in data}
        clean, errors = clean_lead_row(row, partial=True)
        attrs = {f.name: f.attr for f in INPUT_FIELDS}
        for name, messages in errors.items():
            self.add_error(attrs.get(name, None), messages)
        data.update(clean)
        return data


class StageChangeInline(admin.TabularInline):
    model = StageChange
    fields = ("created_at", "from_stage", "to_stage", "actor_type", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("stage history")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AssignmentInline(admin.TabularInline):
    model = Assignment
    fk_name = "lead"
    fields = ("created_at", "from_owner", "to_owner", "team", "actor_type", "actor", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("assignments")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    form = LeadAdminForm
    list_display = ("email", "name", "stage", "owner", "score", "grade", "source", "created_at")
    list_filter = ("stage", "grade", "source", "country")
    search_fields = ("email", "first_name", "last_name", "company_name", "company__name")
    raw_id_fields = ("owner", "team", "company")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    list_per_page = 50
    readonly_fields = (
        *LIFECYCLE_FIELDS,
        *SCORE_FIELDS,
        *CONSENT_FIELDS,
        "consent_source",
        "company",
        *ACTIVITY_FIELDS,
        "activity_link",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("email", "first_name", "last_name", "phone", "job_title")}),
        (
            _("Company"),
            {"fields": ("company_name", "company_domain", "company", "industry", "company_size", "country", "city")},
        ),
        (_("Source"), {"fields": ("source", *UTM_FIELDS, "properties")}),
        (
            _("Lifecycle"),
            {
                "fields": (*LIFECYCLE_FIELDS, "owner", "team"),
                "description": _(
                    "Stage moves are guarded and recorded: make them from the lead page or the API. "
                    "Changing the owner here is recorded as an assignment."
                ),
            },
        ),
        (_("Scores"), {"fields": SCORE_FIELDS}),
        (_("Consent"), {"fields": (*CONSENT_FIELDS, "consent_source")}),
        (_("Activity"), {"fields": (*ACTIVITY_FIELDS, "activity_link", "created_at", "updated_at")}),
    )
    inlines = (StageChangeInline, AssignmentInline)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        # A lead's e-mail is its identity (dedupe key): set once, at capture.
        return (*fields, "email") if obj is not None else fields

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()

    @admin.display(description=_("name"), ordering="last_name")
    def name(self, obj):
        return obj.full_name

    @admin.display(description=_("touchpoints"))
    def activity_link(self, obj):
        if obj is None or obj.pk is None:
            return "–"
        url = reverse("admin:leads_touchpoint_changelist") + f"?lead__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show this lead's touchpoints"))

    def save_model(self, request, obj, form, change):
        actor = _actor(request)
        cleaned = form.cleaned_data
        if not change:
            data = {f: cleaned[f] for f in WRITABLE_FIELDS if cleaned.get(f) not in ("", None)}
            data["email"] = cleaned["email"]
            data["properties"] = cleaned.get("properties") or {}
            lead, _created = services.lead_capture(data=data, actor=actor)
        else:
            data = {f: cleaned[f] for f in form.changed_data if f in WRITABLE_FIELDS}
            if "properties" in form.changed_data:
                old = form.initial.get("properties") or {}
                new = cleaned.get("properties") or {}
                # lead_update merges keys; a key set to None is removed.
                data["properties"] = {**{k: None for k in old if k not in new}, **new}
            lead = services.lead_update(lead_id=obj.pk, data=data, actor=actor) if data else obj
        owner, team = cleaned.get("owner"), cleaned.get("team")
        if (change and {"owner", "team"} & set(form.changed_data)) or (not change and (owner or team)):
            services.lead_assign(
                lead_id=lead.pk, owner=owner, actor=actor, reason=ADMIN_REASON, team_id=team.pk if team else None
            )
        _reload(obj, Lead.objects.get(pk=lead.pk))


# --- activity and history (read-only) ---------------------------------------------------


@admin.register(Visitor)
class VisitorAdmin(ReadOnlyAdmin):
    list_display = ("key", "lead", "first_seen_at", "identified_at")
    search_fields = ("key", "lead__email")
    raw_id_fields = ("lead",)
    list_select_related = ("lead",)


@admin.register(Touchpoint)
class TouchpointAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "type", "lead", "visitor", "url", "utm_source", "utm_campaign")
    list_filter = ("type", "utm_source", "utm_medium")
    search_fields = ("lead__email", "url", "utm_campaign")
    raw_id_fields = ("lead", "visitor", "author")
    list_select_related = ("lead", "visitor")
    date_hierarchy = "occurred_at"


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "lead", "from_stage", "to_stage", "actor_type", "actor", "reason")
    list_filter = ("to_stage", "from_stage", "actor_type")
    search_fields = ("lead__email", "reason")
    raw_id_fields = ("lead", "actor")
    list_select_related = ("lead", "actor")
    date_hierarchy = "created_at"


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "lead", "from_owner", "to_owner", "team", "actor_type", "actor", "reason")
    list_filter = ("actor_type", "team")
    search_fields = ("lead__email", "reason")
    raw_id_fields = ("lead", "from_owner", "to_owner", "team", "actor")
    list_select_related = ("lead", "from_owner", "to_owner", "team", "actor")
    date_hierarchy = "created_at"


# --- qualification and offers -----------------------------------------------------------


@admin.register(Bant)
class BantAdmin(admin.ModelAdmin):
    list_display = ("lead", "complete", *BANT_CRITERIA, "updated_by", "updated_at")
    search_fields = ("lead__email", "budget", "need")
    raw_id_fields = ("lead",)
    readonly_fields = ("updated_by", "updated_at")
    list_select_related = ("lead", "updated_by")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "lead") if obj is not None else fields

    @admin.display(description=_("complete"), boolean=True)
    def complete(self, obj):
        return obj.is_complete

    def save_model(self, request, obj, form, change):
        fields = {f: form.cleaned_data.get(f) or "" for f in BANT_FIELDS}
        bant = services.lead_bant_set(lead_id=obj.lead_id, actor=_actor(request), **fields)
        _reload(obj, bant)


class OpportunityAdminForm(forms.ModelForm):
    class Meta:
        model = Opportunity
        fields = "__all__"

    def clean_currency(self):
        try:
            return normalize.normalize_currency(self.cleaned_data.get("currency") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(Opportunity)
class OpportunityAdmin(admin.ModelAdmin):
    """Offers are created by the SAL → CO move and closed by WO / LOST; the admin only
    corrects the forecast (amount, currency, expected close) of an existing one."""

    form = OpportunityAdminForm
    list_display = ("lead", "amount", "currency", "expected_close", "status", "closed_at", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("lead__email", "lead__company_name")
    raw_id_fields = ("lead",)
    readonly_fields = ("lead", "status", "lost_reason", "closed_at", "created_by", "created_at", "updated_at")
    list_select_related = ("lead",)
    date_hierarchy = "expected_close"

    def has_add_permission(self, request):
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Spend per campaign: the dashboard's CPL divides it by the leads with this utm_campaign."""

    list_display = ("name", "utm_campaign", "source", "spend", "currency", "period_start", "period_end")
    list_filter = ("source",)
    search_fields = ("name", "utm_campaign")


@admin.register(SavedFilter)
class SavedFilterAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "page", "query")
    list_filter = ("page",)


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ("filename", "status", "dry_run", "total_rows", "created_count", "updated_count", "failed_count")
    list_filter = ("status",)
    exclude = ("data",)

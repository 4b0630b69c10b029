"""The leads-list filters, written once for the API (`GET /api/v1/leads/`, which answers 400
with field errors for a value it cannot read) and the pages (the leads list and the queue,
which ignore such a value and show the rest): both bind `LeadFilter` to the query string.

Values are read by the form fields (a bad owner or country is a field error), so that the
API refuses what the pages skip with the same rule."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KeyTransform

from accounts.models import User
from leadcrm import fields, inputs
from leads.models import Grade, Lead, Stage
from leads.normalize import normalize_country

PROPERTIES_PREFIX = "properties."
OWNER_HELP = "A user id, `me` or `none`."
MAX_SEARCH_WORDS = 8


class OwnerFormField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values or value in ("me", "none") or inputs.int_or_none(value) is not None:
            return value
        raise forms.ValidationError(OWNER_HELP, code="invalid")


class CountryFormField(forms.CharField):
    """A country code or name, as the lead input takes it, read to its ISO alpha-2 code."""

    def to_python(self, value):
        try:
            return normalize_country(super().to_python(value))
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class OwnerFilter(django_filters.CharFilter):
    field_class = OwnerFormField


class CountryFilter(django_filters.CharFilter):
    field_class = CountryFormField


class LeadFilter(django_filters.FilterSet):
    # Columns of the lead itself: no join, so no DISTINCT (which would sort every match).
    stage = django_filters.MultipleChoiceFilter(choices=Stage.choices, distinct=False)
    owner = OwnerFilter(method="filter_owner", help_text=OWNER_HELP)
    source = django_filters.CharFilter()
    campaign = django_filters.CharFilter(field_name="utm_campaign", help_text="The leads' `utm_campaign`.")
    score_min = fields.IntegerFilter(field_name="score", lookup_expr="gte")
    score_max = fields.IntegerFilter(field_name="score", lookup_expr="lte")
    grade = django_filters.MultipleChoiceFilter(choices=Grade.choices, distinct=False)
    country = CountryFilter()
    created_after = fields.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = fields.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="filter_q", help_text="Search name, e-mail and company.")

    class Meta:
        model = Lead
        fields: list[str] = []

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, user: User | None = None):
        super().__init__(data, queryset, request=request, prefix=prefix)
        # `owner=me`: the API's request user, or the page's.
        self.user = user if user is not None else getattr(request, "user", None)

    def filter_owner(self, qs, name, value):
        if value == "me":
            return qs.filter(owner=self.user)
        if value == "none":
            return qs.filter(owner__isnull=True)
        return qs.filter(owner_id=int(value))

    def filter_q(self, qs, name, value):
        """Every word must be found in the e-mail, a name or the company: "Nathalie Duval"
        finds the lead whose first name is Nathalie and last name Duval."""
        for word in value.split()[:MAX_SEARCH_WORDS]:
            qs = qs.filter(
                Q(email__icontains=word)
                | Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(company_name__icontains=word)
            )
        return qs

    def filter_queryset(self, queryset):
        """Custom fields filter as `properties.<key>=<value>` (numbers and booleans too)."""
        queryset = super().filter_queryset(queryset)
        wanted: dict[str, list] = {}
        for key in self.data:
            if key.startswith(PROPERTIES_PREFIX) and len(key) > len(PROPERTIES_PREFIX):
                values = self.data.getlist(key) if hasattr(self.data, "getlist") else [self.data[key]]
                wanted[key[len(PROPERTIES_PREFIX) :]] = values
        return properties_filtered(queryset, wanted)


def property_candidates(value: object) -> list:
    """The JSON values a custom-field value typed as text may stand for: "42" also finds the
    number 42 and "true" the boolean (a CSV import and an API client store them apart)."""
    if not isinstance(value, str):
        return [value]
    candidates: list = [value]
    if value in ("true", "false"):
        candidates.append(value == "true")
    try:
        candidates.append(float(value) if "." in value else int(value))
    except ValueError:
        pass
    return candidates


def properties_filtered(queryset: QuerySet[Lead], wanted: dict[str, list]) -> QuerySet[Lead]:
    """Leads whose custom field `key` holds one of its values, for every key: the one rule of
    the leads list, the API and segments. The key is one JSON key, never ORM lookups:
    `properties.x__regex=(` must not reach the database as a regex (a 500 on bad input)."""
    for n, (prop, values) in enumerate(wanted.items()):
        alias = f"_property_{n}"
        queryset = queryset.alias(**{alias: KeyTransform(prop, "properties")})
        cond = Q()
        for value in values:
            for candidate in property_candidates(value):
                cond |= Q(**{alias: candidate})
        queryset = queryset.filter(cond)
    return queryset


def filter_leads(qs: QuerySet[Lead], params, *, user: User) -> QuerySet[Lead]:
    """The pages' reading: `qs` narrowed by every filter of `params` it can read; a value it
    cannot read (an unknown stage, a score in words) is left out, not refused."""
    return LeadFilter(params, queryset=qs, user=user).qs

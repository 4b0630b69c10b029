"""The segment builder's form: the page's fields read into the filter the API takes.

Only the shape is read here; what a filter may say is `nurturing.segment_rules` and the
leads list's filter, both applied by the service on save."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from leads.models import ConsentStatus, Grade, Stage, TouchpointType
from nurturing.models import SegmentKind

BLANK = [("", "—")]


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    kind = forms.ChoiceField(choices=SegmentKind.choices, initial=SegmentKind.DYNAMIC, label=_("Kind"))
    q = forms.CharField(required=False, label=_("Search"))
    stage = forms.MultipleChoiceField(choices=Stage.choices, required=False, label=_("Stages"))
    grade = forms.MultipleChoiceField(choices=Grade.choices, required=False, label=_("Grades"))
    source = forms.CharField(required=False, max_length=100, label=_("Source"))
    country = forms.CharField(required=False, max_length=100, label=_("Country"))
    score_min = forms.IntegerField(required=False, min_value=0, max_value=100, label=_("Score ≥"))
    score_max = forms.IntegerField(required=False, min_value=0, max_value=100, label=_("Score ≤"))
    consent = forms.MultipleChoiceField(choices=ConsentStatus.choices, required=False, label=_("Consent"))
    property_key = forms.CharField(required=False, max_length=100, label=_("Custom field"))
    property_value = forms.CharField(required=False, max_length=200, label=_("equals"))
    event_type = forms.ChoiceField(choices=BLANK + list(TouchpointType.choices), required=False, label=_("Did"))
    event_min_count = forms.IntegerField(required=False, min_value=1, initial=1, label=_("at least (times)"))
    event_within_days = forms.IntegerField(required=False, min_value=1, initial=30, label=_("in the last (days)"))
    segments = forms.TypedMultipleChoiceField(coerce=int, required=False, label=_("And in every segment"))

    def __init__(self, *args, segment_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segments"].choices = list(segment_choices)

    def segment_filter(self) -> dict:
        """The filter as the API writes it (cleaned data only; empty fields are left out)."""
        data = self.cleaned_data
        out: dict = {}
        for key in ("q", "source", "country"):
            if data.get(key):
                out[key] = data[key]
        for key in ("score_min", "score_max"):
            if data.get(key) is not None:
                out[key] = data[key]
        for key in ("stage", "grade", "consent", "segments"):
            if data.get(key):
                out[key] = list(data[key])
        if data.get("property_key"):
            out["properties"] = {data["property_key"]: [data.get("property_value") or ""]}
        if data.get("event_type"):
            out["events"] = [
                {
                    "type": data["event_type"],
                    "min_count": data.get("event_min_count") or 1,
                    "within_days": data.get("event_within_days") or 30,
                }
            ]
        return out


def list_query_filter(params, *, names, multi) -> dict:
    """A leads-list query string as a segment filter: the names the leads list filters by,
    multi-valued ones as lists ("Save as segment" on the list)."""
    out: dict = {}
    for key in names:
        values = [v for v in params.getlist(key) if v != ""]
        if values:
            out[key] = values if key in multi else values[0]
    return out

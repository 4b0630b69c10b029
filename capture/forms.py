"""The form builder's page forms: the page's inputs read into the shapes the API takes.
Only the shape is read here; what a form may contain is capture.rules, applied by the
services on save."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from capture.models import LEAD_TARGETS, Form

PROPERTIES = "properties"
TARGET_CHOICES = [(t, t) for t in LEAD_TARGETS] + [(PROPERTIES, _("Custom field (properties)"))]


class FormCreateForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))


class FormSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    allowed_origins = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Allowed origins (one per line, e.g. https://www.example.com)"),
    )
    consent_text = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label=_("Consent text")
    )
    double_opt_in = forms.BooleanField(required=False, label=_("Double opt-in"))
    redirect_url = forms.CharField(required=False, max_length=2000, label=_("Redirect to (after submission)"))
    thank_you = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), label=_("Thank-you message")
    )

    @classmethod
    def initial_of(cls, form: Form) -> dict:
        return {
            "name": form.name,
            "allowed_origins": "\n".join(form.allowed_origins),
            "consent_text": form.consent_text,
            "double_opt_in": form.double_opt_in,
            "redirect_url": form.redirect_url,
            "thank_you": form.thank_you,
        }

    def settings(self) -> dict:
        data = dict(self.cleaned_data)
        data["allowed_origins"] = [line.strip() for line in data["allowed_origins"].splitlines() if line.strip()]
        return data


class FieldRowForm(forms.Form):
    position = forms.IntegerField(required=False, min_value=0, max_value=999, label=_("Order"))
    name = forms.CharField(required=False, max_length=50, label=_("Field name"))
    maps_to = forms.ChoiceField(choices=TARGET_CHOICES, required=False, label=_("Maps to"))
    property_key = forms.CharField(required=False, max_length=50, label=_("Custom field key"))
    required = forms.BooleanField(required=False, label=_("Required"))
    label_en = forms.CharField(required=False, max_length=200, label=_("Label (English)"))
    label_fr = forms.CharField(required=False, max_length=200, label=_("Label (French)"))
    help = forms.CharField(required=False, max_length=500, label=_("Help text"))
    delete = forms.BooleanField(required=False, label=_("Remove"))

    @classmethod
    def initial_of(cls, position: int, field: dict) -> dict:
        maps_to = field["maps_to"]
        is_property = maps_to.startswith("properties.")
        return {
            "position": position,
            "name": field["name"],
            "maps_to": PROPERTIES if is_property else maps_to,
            "property_key": maps_to.split(".", 1)[1] if is_property else "",
            "required": field["required"],
            "label_en": field["label"].get("en", ""),
            "label_fr": field["label"].get("fr", ""),
            "help": field.get("help", ""),
        }


FieldRows = forms.formset_factory(FieldRowForm, extra=2)


def rows_initial(fields: list[dict]) -> list[dict]:
    return [FieldRowForm.initial_of((i + 1) * 10, f) for i, f in enumerate(fields)]


def rows_to_fields(formset) -> list[dict]:
    """The builder's rows, in the order of their position, as the API's field objects
    (empty and removed rows left out)."""
    rows = []
    for i, row in enumerate(formset.forms):
        data = row.cleaned_data
        if not data or data.get("delete") or not data.get("name"):
            continue
        maps_to = data.get("maps_to") or "email"
        if maps_to == PROPERTIES:
            maps_to = f"properties.{data.get('property_key') or data['name']}"
        position = data.get("position")
        rows.append(
            (
                position if position is not None else 1000 + i,
                i,
                {
                    "name": data["name"],
                    "maps_to": maps_to,
                    "required": bool(data.get("required")),
                    "label": {"en": data.get("label_en", ""), "fr": data.get("label_fr", "")},
                    "help": data.get("help", ""),
                },
            )
        )
    return [field for _, _, field in sorted(rows, key=lambda r: (r[0], r[1]))]

"""Form, filter and serializer fields every app uses for numbers, ids and dates, so that
what Python parses but PostgreSQL or the calendar refuses (`²`, 20-digit ids, a `+22:24`
offset, year 9999 plus a day) answers 400 with a field error (leadcrm.inputs)."""

from __future__ import annotations

import django_filters
from django import forms
from rest_framework import serializers

from leadcrm import inputs


class SafeDateTimeFormField(forms.DateTimeField):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return inputs.parse_aware_datetime(value)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class SafeIntegerFormField(forms.IntegerField):
    def __init__(self, *, minimum: int = 0, maximum: int = inputs.MAX_BIGINT, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return inputs.parse_int(value, minimum=self.minimum, maximum=self.maximum)
        except ValueError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class JSONFormField(forms.JSONField):
    """forms.JSONField through inputs.loads: JSON nested thousands deep, `1e400` or `NaN`
    is a field error, not a RecursionError (a 500) or an infinity jsonb refuses."""

    def to_python(self, value):
        if self.disabled or value in self.empty_values or isinstance(value, (list, dict, int, float)):
            return super().to_python(value)
        try:
            converted = inputs.loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Enter a valid JSON: {exc}", code="invalid", params={"value": value}) from exc
        return forms.fields.JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data, initial):
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return inputs.loads(data)
        except ValueError:
            return forms.fields.InvalidJSONInput(data)


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = SafeDateTimeFormField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number in ASCII digits within the column's range (`score_min`, ids)."""

    field_class = SafeIntegerFormField


class DateTimeField(serializers.DateTimeField):
    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                value = inputs.parse_aware_datetime(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from exc
        elif not hasattr(value, "utcoffset"):
            raise serializers.ValidationError("Enter a datetime in ISO 8601, e.g. 2024-05-01T10:00:00Z.")
        return super().to_internal_value(value)


class IntegerField(serializers.IntegerField):
    """Whole numbers in ASCII digits within bigint range (DRF's takes '²'-like text and any size)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", inputs.MAX_BIGINT)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = inputs.parse_int(data, minimum=-inputs.MAX_BIGINT, maximum=inputs.MAX_BIGINT)
            except ValueError as exc:
                raise serializers.ValidationError("A valid integer is required.") from exc
        return super().to_internal_value(data)

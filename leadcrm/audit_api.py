"""`GET /api/v1/audit/`: the audit log for integrators and reviewers, filtered by target,
actor, action and period, in cursor pages. Who sees which entry is
`leadcrm.selectors.audit_entries_visible_to`; this view only reads the filters."""

from __future__ import annotations

import re

import django_filters
from django.apps import apps
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView

from leadcrm import fields, inputs, selectors
from leadcrm.actors import ActorType
from leadcrm.api import StableCursorPagination
from leadcrm.models import AuditEntry
from leadcrm.serializers import AuditEntrySerializer

_TYPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_ID = re.compile(r"^[\w-]{1,64}$", re.ASCII)
_USERNAME = re.compile(r"^[\w.@+-]{1,150}$", re.ASCII)
_ACTION = re.compile(r"^[\w.-]{1,100}$", re.ASCII)

TARGET_HELP = (
    "`type:id` (`leads.lead:123`, or by the model's name alone, `lead:123`), or a type alone "
    "(`scoring.ruleset`, `user`) for every entry about that kind of object. The type is the "
    "changed object's `app_label.model`, as `target.type` answers it."
)


def parse_target(value: str) -> tuple[str, str | None]:
    """(`app_label.model`, id or None) from `type[:id]`; ValueError for anything else."""
    kind, sep, pk = value.strip().partition(":")
    kind = kind.lower()
    if not _TYPE.match(kind):
        raise ValueError("Expected `type:id`, e.g. `lead:123` or `leads.lead:123`.")
    if "." not in kind:
        labels = sorted({m._meta.label_lower for m in apps.get_models() if m._meta.model_name == kind})
        if len(labels) != 1:
            known = f" (one of {', '.join(labels)})" if labels else ""
            raise ValueError(f"Unknown target type {kind!r}{known}: give it as `app_label.model`.")
        kind = labels[0]
    if sep and not _ID.match(pk):
        raise ValueError("The id after `:` is 1 to 64 letters, digits, `_` or `-`.")
    return kind, (pk if sep else None)


def _invalid(name: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({name: [message]})


class AuditFilter(django_filters.FilterSet):
    target = django_filters.CharFilter(method="filter_target", help_text=TARGET_HELP)
    actor = django_filters.CharFilter(
        method="filter_actor", help_text="The acting user: their id or their username (case-insensitive)."
    )
    actor_kind = django_filters.ChoiceFilter(
        choices=ActorType.choices, help_text="Who acted: a person on the web app, an API client, automation, an import."
    )
    action = django_filters.CharFilter(
        method="filter_action",
        help_text="An action (`lead.update`), or a family of them ending with `.*` (`scoring.*`).",
    )
    since = fields.IsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="Entries at or after (ISO 8601).")
    until = fields.IsoDateTimeFilter(field_name="at", lookup_expr="lt", help_text="Entries before (ISO 8601).")

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_target(self, qs, name, value):
        try:
            kind, pk = parse_target(value)
        except ValueError as exc:
            raise _invalid("target", str(exc)) from exc
        qs = qs.filter(target_type=kind)
        return qs if pk is None else qs.filter(target_id=pk)

    def filter_actor(self, qs, name, value):
        value = value.strip()
        if value.isascii() and value.isdigit():
            try:
                return qs.filter(actor_id=inputs.parse_int(value))
            except ValueError as exc:
                raise _invalid("actor", str(exc)) from exc
        if not _USERNAME.match(value):
            raise _invalid("actor", "A user id or a username.")
        return qs.filter(actor__username__iexact=value)

    def filter_action(self, qs, name, value):
        value = value.strip()
        family = value.endswith(".*")
        word = value[:-1] if family else value
        if not _ACTION.match(word):
            raise _invalid("action", "An action such as `lead.update`, or a family such as `scoring.*`.")
        return qs.filter(action__startswith=word) if family else qs.filter(action=word)


class AuditPagination(StableCursorPagination):
    ordering = ("-at", "-id")


class AuditList(GenericAPIView):
    """Audit entries, newest first. Admins read all; everyone else the entries about the
    leads they can see and the history of the configuration their role writes (marketing:
    scoring and nurturing; a manager: their teams' members)."""

    serializer_class = AuditEntrySerializer
    pagination_class = AuditPagination
    filterset_class = AuditFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self):
        return selectors.audit_entries_visible_to(self.request.user)

    @extend_schema(operation_id="audit_list", responses=AuditEntrySerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AuditEntrySerializer(page, many=True).data)

"""Where a person's data lives: every table the GDPR export reads and the erasure anonymises.

Two ways in, so a new table is covered without touching this app:

1. Introspection (`discover`): every model with a ForeignKey/OneToOne to `leads.Lead`, and,
   recursively (up to `MAX_DEPTH` hops), every model pointing at one of those (a step run
   through its enrollment or message). Its rows are the ones whose FK path reaches the
   person's lead; its text and JSON columns are scrubbed of the person's identifiers.
2. Registration (`register`, re-exported as `compliance.services.personal_data_register`)
   for what no FK reaches: a plain lead id column, an e-mail column, a JSON payload searched
   for the address. One line in the owning app's `AppConfig.ready()`, e.g.
   `personal_data_register("integrations.WebhookDelivery", lead_id_field="lead_id", search=("payload",))`.
   A registration may also add blanking rules or searches to a discovered model.

`uncovered()` lists the models that look personal (a lead id, an e-mail, an IP, a user agent
or a payload column) yet are neither discovered, registered nor declared `exempt` with a
reason: tests/compliance/test_coverage.py fails on any of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Q, TextField
from django.db.models.functions import Cast

MAX_DEPTH = 3
ERASED = "[erased]"
TEXT_TYPES = (models.CharField, models.TextField, models.JSONField)
# Column names that, outside a discovered model, say "this may hold a person's data".
SUSPICIOUS_NAMES = re.compile(r"(^|_)(lead|lead_id|email|e_mail|payload|user_agent|ip|ip_address)($|_)")


@dataclass(frozen=True)
class Source:
    """One table holding a person's data and how to find and anonymise their rows."""

    label: str  # app_label.ModelName
    lookups: tuple[str, ...] = ()  # ORM paths ending at the lead (FK): "lead", "enrollment__lead"
    lead_id_field: str = ""  # a plain column holding the lead's id
    email_fields: tuple[str, ...] = ()  # columns holding the address (exact, case-insensitive)
    search: tuple[str, ...] = ()  # text/JSON columns searched for the address
    extra: Callable[[list], Q] | None = None  # more rows: fn(leads) -> Q
    blank: dict[str, Any] = field(default_factory=dict)  # column -> value, or fn(row, ctx) -> value
    not_exported: tuple[str, ...] = ()  # columns left out of the export (e.g. other people's data)
    scrub: bool = True  # replace the person's identifiers in every text/JSON column
    delete: bool = False  # erase by deleting the rows (only what no report counts)
    custom_erase: Callable | None = None  # fn(queryset, ctx) -> int, instead of the above
    note: str = ""

    @property
    def model(self) -> type[models.Model]:
        return apps.get_model(self.label)

    def q(self, leads: list) -> Q | None:
        """The rows of these leads (None: none can be found this way)."""
        ids = [lead.pk for lead in leads]
        emails = sorted({lead.email.lower() for lead in leads if lead.email})
        parts = [Q(**{f"{path}__in": ids}) for path in self.lookups]
        if self.lead_id_field:
            parts.append(Q(**{f"{self.lead_id_field}__in": ids}))
        for name in self.email_fields:
            parts.extend(Q(**{f"{name}__iexact": email}) for email in emails)
        for name in self.search:
            parts.extend(Q(**{f"_search_{name}__icontains": email}) for email in emails)
        if self.extra is not None:
            parts.append(self.extra(leads))
        if not parts:
            return None
        q = parts[0]
        for part in parts[1:]:
            q |= part
        return q

    def rows(self, leads: list) -> models.QuerySet:
        model = self.model
        q = self.q(leads)
        if q is None:
            return model.objects.none()
        qs = model._base_manager.all()
        if self.search:
            qs = qs.annotate(**{f"_search_{name}": Cast(name, TextField()) for name in self.search})
        return qs.filter(q).distinct().order_by("pk")


_registered: dict[str, dict[str, Any]] = {}
_exempt: dict[str, str] = {}


def register(
    label: str,
    *,
    lead_id_field: str = "",
    email_fields: Iterable[str] = (),
    search: Iterable[str] = (),
    extra: Callable[[list], Q] | None = None,
    blank: dict[str, Any] | None = None,
    not_exported: Iterable[str] = (),
    scrub: bool = True,
    delete: bool = False,
    custom_erase: Callable | None = None,
    note: str = "",
) -> None:
    """Declare (or complete) a table holding personal data; call it from `AppConfig.ready()`."""
    _registered[label] = {
        "lead_id_field": lead_id_field,
        "email_fields": tuple(email_fields),
        "search": tuple(search),
        "extra": extra,
        "blank": dict(blank or {}),
        "not_exported": tuple(not_exported),
        "scrub": scrub,
        "delete": delete,
        "custom_erase": custom_erase,
        "note": note,
    }


def exempt(label: str, *, reason: str) -> None:
    """Declare that a model whose columns look personal holds no data about leads."""
    if not reason.strip():
        raise ValueError("An exemption needs its reason.")
    _exempt[label] = reason


def exemptions() -> dict[str, str]:
    return dict(_exempt)


def _concrete(all_models: Iterable[type[models.Model]] | None) -> list[type[models.Model]]:
    found = apps.get_models() if all_models is None else all_models
    return [m for m in found if not m._meta.proxy and not m._meta.abstract]


def discover(all_models: Iterable[type[models.Model]] | None = None) -> dict[str, tuple[str, ...]]:
    """label -> ORM paths to the lead, for every model reaching `leads.Lead` by FK chains."""
    lead_model = apps.get_model("leads", "Lead")
    candidates = _concrete(all_models)
    paths: dict[type[models.Model], list[str]] = {lead_model: [""]}
    for _depth in range(MAX_DEPTH):
        grown = False
        for model in candidates:
            if model is lead_model:
                continue
            for f in model._meta.concrete_fields:
                target = f.related_model if f.is_relation and (f.many_to_one or f.one_to_one) else None
                if target is None or target not in paths or target is model:
                    continue
                for path in list(paths[target]):
                    lookup = f.name if path == "" else f"{f.name}__{path}"
                    if lookup.count("__") >= MAX_DEPTH:
                        continue
                    known = paths.setdefault(model, [])
                    if lookup not in known:
                        known.append(lookup)
                        grown = True
        if not grown:
            break
    return {m._meta.label: tuple(p) for m, p in paths.items() if m is not lead_model}


def sources(all_models: Iterable[type[models.Model]] | None = None) -> list[Source]:
    """Every table to export and erase, discovered and registered, in a stable order."""
    found = discover(all_models)
    labels = {m._meta.label for m in _concrete(all_models)}
    out = []
    for label in sorted(set(found) | (set(_registered) & labels)):
        base = Source(label=label, lookups=found.get(label, ()))
        extra = _registered.get(label)
        out.append(replace(base, **extra) if extra else base)
    return out


def covered(all_models: Iterable[type[models.Model]] | None = None) -> set[str]:
    return {s.label for s in sources(all_models)} | set(_exempt)


def suspicious(model: type[models.Model]) -> list[str]:
    """Columns of a model that may hold a person's data when no FK says whose."""
    names = []
    for f in model._meta.concrete_fields:
        if f.is_relation:
            continue
        if isinstance(f, models.GenericIPAddressField) or SUSPICIOUS_NAMES.search(f.name):
            names.append(f.name)
    return names


def uncovered(all_models: Iterable[type[models.Model]] | None = None) -> dict[str, list[str]]:
    """label -> suspicious columns, for the models neither discovered, registered nor exempt."""
    done = covered(all_models)
    out = {}
    for model in _concrete(all_models):
        label = model._meta.label
        if label == "leads.Lead" or label in done:
            continue
        columns = suspicious(model)
        if columns:
            out[label] = columns
    return out


# --- anonymising values ---------------------------------------------------------------------


def token_pattern(tokens: Iterable[str]) -> re.Pattern | None:
    """One case-insensitive pattern for the identifiers to remove, longest first."""
    clean = sorted({t.strip() for t in tokens if t and len(t.strip()) >= 3}, key=len, reverse=True)
    if not clean:
        return None
    return re.compile("|".join(re.escape(t) for t in clean), re.IGNORECASE)


def scrub_value(value: Any, pattern: re.Pattern | None) -> Any:
    """The value with every identifier replaced, JSON structures walked (keys too)."""
    if pattern is None or value is None:
        return value
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [scrub_value(v, pattern) for v in value]
    if isinstance(value, dict):
        return {scrub_value(k, pattern): scrub_value(v, pattern) for k, v in value.items()}
    return value


def text_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if not f.is_relation and not f.primary_key and isinstance(f, (*TEXT_TYPES, models.GenericIPAddressField))
    ]

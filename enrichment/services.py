"""Enrichment's writes: fill a lead's blank fields with what providers propose.

Providers are asked outside any transaction (an external one may take its timeout); then,
per lead, under the lead's row lock, what is still blank is written through the leads' own
update service (`leads.services.lead_update`: its cleaning, audit and `lead.updated` event)
and each filled field is recorded (`EnrichmentChange`). A known value is never replaced, so a
second run, a redelivered message or a retry changes nothing: the run is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from enrichment.models import EnrichmentChange
from enrichment.providers import PROPERTY_PREFIX, Proposal, Provider, ProviderError, configured_providers
from leadcrm import audit
from leadcrm.actors import Actor
from leads import services as leads_services
from leads.models import Lead

log = logging.getLogger(__name__)

# Below this confidence a proposal is not applied.
MIN_CONFIDENCE = 0.5
# Public name → model attribute where they differ (SPEC.md "Lead fields").
_ATTRS = {"company": "company_name"}
KNOWN_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "city",
)


@dataclass
class EnrichResult:
    changes: list[EnrichmentChange] = field(default_factory=list)
    # (provider, lead id, message) of each provider that could not answer
    failures: list[tuple[str, int, str]] = field(default_factory=list)
    # leads whose failures were transient: worth another run later
    retry_ids: list[int] = field(default_factory=list)


def known_data(lead: Lead) -> dict[str, object]:
    """What a lead says, by public field name: what providers are given."""
    data: dict[str, object] = {name: getattr(lead, _ATTRS.get(name, name)) for name in KNOWN_FIELDS}
    data["properties"] = dict(lead.properties or {})
    return data


def _is_blank(value: object) -> bool:
    return value is None or value == ""


def _current(lead: Lead, name: str) -> object:
    if name.startswith(PROPERTY_PREFIX):
        return (lead.properties or {}).get(name[len(PROPERTY_PREFIX) :])
    return getattr(lead, _ATTRS.get(name, name))


def _clean(proposal: Proposal) -> tuple[str, object] | None:
    """The proposal's value cleaned by the leads' input rules (a country name becomes its
    code, lengths hold...), or None when they refuse it."""
    if proposal.field.startswith(PROPERTY_PREFIX):
        key = proposal.field[len(PROPERTY_PREFIX) :]
        clean, errors = leads_services.clean_lead_row({"properties": {key: proposal.value}}, partial=True)
        return None if errors else (proposal.field, clean["properties"][key])
    clean, errors = leads_services.clean_lead_row({proposal.field: proposal.value}, partial=True)
    attr = _ATTRS.get(proposal.field, proposal.field)
    if errors or _is_blank(clean.get(attr)):
        return None
    return proposal.field, clean[attr]


def _ask(providers: Sequence[Provider], known: dict, lead_id: int, result: EnrichResult) -> list[tuple[str, Proposal]]:
    """Every provider's proposals for one lead; a provider that fails is noted, not fatal."""
    proposals: list[tuple[str, Proposal]] = []
    for provider in providers:
        try:
            proposals += [(provider.name, p) for p in provider.propose(known)]
        except ProviderError as exc:
            result.failures.append((provider.name, lead_id, str(exc)))
            if exc.transient and lead_id not in result.retry_ids:
                result.retry_ids.append(lead_id)
            log.warning("enrichment provider %s failed for lead %s: %s", provider.name, lead_id, exc)
        except Exception as exc:  # a provider's bug never costs the lead or the others' answers
            result.failures.append((provider.name, lead_id, f"{type(exc).__name__}: {exc}"))
            log.exception("enrichment provider %s crashed for lead %s", provider.name, lead_id)
    return proposals


def _apply(*, lead_id: int, proposals: list[tuple[str, Proposal]], actor: Actor) -> list[EnrichmentChange]:
    """Write what is still blank under the lead's lock: the most confident proposal per field
    (the earlier provider on a tie)."""
    best: dict[str, tuple[str, Proposal, object]] = {}
    for provider_name, proposal in proposals:
        if proposal.confidence < MIN_CONFIDENCE:
            continue
        cleaned = _clean(proposal)
        if cleaned is None:
            continue
        name, value = cleaned
        if name not in best or proposal.confidence > best[name][1].confidence:
            best[name] = (provider_name, proposal, value)
    if not best:
        return []
    with transaction.atomic():
        lead = Lead.objects.select_for_update().filter(pk=lead_id).first()
        if lead is None:  # merged or erased since
            return []
        now = timezone.now()
        data: dict[str, object] = {}
        properties: dict[str, object] = {}
        changes: list[EnrichmentChange] = []
        for name, (provider_name, proposal, value) in best.items():
            old = _current(lead, name)
            if not _is_blank(old):
                continue
            if name.startswith(PROPERTY_PREFIX):
                properties[name[len(PROPERTY_PREFIX) :]] = value
            else:
                data[_ATTRS.get(name, name)] = value
            changes.append(
                EnrichmentChange(
                    lead=lead,
                    provider=provider_name,
                    field=name,
                    old="" if old is None else str(old),
                    new=str(value),
                    confidence=proposal.confidence,
                    created_at=now,
                )
            )
        if not changes:
            return []
        if properties:
            data["properties"] = properties
        leads_services.lead_update(lead_id=lead.pk, data=data, actor=actor)
        EnrichmentChange.objects.bulk_create(changes)
    return changes


def leads_enrich(*, lead_ids: list[int], actor: Actor, providers: Sequence[Provider] | None = None) -> EnrichResult:
    """Ask the providers (the configured ones by default) about each lead and fill its blank
    fields with their proposals; record what each provider set. Idempotent."""
    providers = configured_providers() if providers is None else providers
    result = EnrichResult()
    for lead_id in dict.fromkeys(lead_ids):
        lead = Lead.objects.filter(pk=lead_id).first()
        if lead is None:
            continue
        proposals = _ask(providers, known_data(lead), lead_id, result)
        result.changes += _apply(lead_id=lead_id, proposals=proposals, actor=actor)
    return result


def lead_enrich_request(*, lead_id: int, actor: Actor, providers: Sequence[Provider] | None = None) -> EnrichResult:
    """Enrichment run again on demand (admins, marketing): who asked is audited with what it
    filled; the run itself is `leads_enrich`."""
    result = leads_enrich(lead_ids=[lead_id], actor=actor, providers=providers)
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is not None:
        audit.record(
            actor=actor,
            action="enrichment.request",
            target=lead,
            changes={c.field: [c.old, c.new] for c in result.changes},
            details={"failed": sorted({name for name, _, _ in result.failures})},
        )
    return result

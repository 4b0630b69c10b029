"""Enrichment after capture: the reaction to `lead.created` fills blank fields through the
leads' update service, records what each provider set, never replaces a known value, and a
second run (a redelivery) changes nothing."""

from __future__ import annotations

import pytest

from enrichment import services, tasks
from enrichment.models import EnrichmentChange
from enrichment.providers import Proposal, ProviderError
from leadcrm import events
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


class Fixed:
    """A provider answering given proposals (or raising)."""

    def __init__(self, name: str, proposals=(), error: Exception | None = None):
        self.name, self.proposals, self.error, self.calls = name, list(proposals), error, 0

    def propose(self, known):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return list(self.proposals)


def _changes(lead) -> dict[str, tuple[str, str, str, float]]:
    return {c.field: (c.old, c.new, c.provider, c.confidence) for c in EnrichmentChange.objects.filter(lead=lead)}


def test_enrichment_reacts_to_lead_created():
    assert "enrichment.tasks.leads_enrich" in events.REACTIONS[events.LEAD_CREATED]


def test_a_captured_lead_is_enriched_after_capture(people, auth_client, django_capture_on_commit_callbacks):
    client = auth_client(people.marketing)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/v1/leads/",
            {"email": "jane@acme-robotics.de", "phone": "+33 6 12 34 56 78", "job_title": "Directrice marketing"},
            format="json",
        )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(email="jane@acme-robotics.de")
    assert lead.company_name == "Acme Robotics" and lead.company.name == "Acme Robotics"
    assert lead.company_domain == "acme-robotics.de"  # set by the capture itself
    assert lead.country == "FR"  # the phone's prefix
    assert lead.properties == {"seniority": "director", "department": "marketing"}
    assert _changes(lead) == {
        "company": ("", "Acme Robotics", "builtin", 0.6),
        "country": ("", "FR", "builtin", 0.9),
        "properties.seniority": ("", "director", "builtin", 0.8),
        "properties.department": ("", "marketing", "builtin", 0.8),
    }
    update = AuditEntry.objects.get(action="lead.update", target_id=str(lead.pk))
    assert update.actor_kind == "automation" and update.changes["country"] == ["", "FR"]


def test_only_blank_fields_are_filled_and_a_second_run_changes_nothing():
    lead = LeadFactory(
        email="x@initech.fr", company_name="", company_domain="", country="DE", job_title="CTO", properties={}
    )
    first = services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation())
    lead.refresh_from_db()
    assert lead.country == "DE"  # known: never replaced by the domain's FR
    assert (lead.company_name, lead.company_domain) == ("Initech", "initech.fr")
    assert lead.properties == {"seniority": "c_level", "department": "engineering"}
    assert {c.field for c in first.changes} == {
        "company",
        "company_domain",
        "properties.seniority",
        "properties.department",
    }
    updates = AuditEntry.objects.filter(action="lead.update", target_id=str(lead.pk)).count()
    again = services.leads_enrich(lead_ids=[lead.pk, lead.pk], actor=Actor.automation())
    assert again.changes == []
    assert EnrichmentChange.objects.filter(lead=lead).count() == 4
    assert AuditEntry.objects.filter(action="lead.update", target_id=str(lead.pk)).count() == updates


def test_a_task_delivered_twice_has_one_effect():
    lead = LeadFactory(email="y@globex.co.uk", company_name="", country="", job_title="")
    assert tasks.leads_enrich.apply(kwargs={"lead_ids": [lead.pk]}).get() == 2  # name and country
    assert tasks.leads_enrich.apply(kwargs={"lead_ids": [lead.pk]}).get() == 0
    lead.refresh_from_db()
    assert (lead.company_name, lead.country) == ("Globex", "GB")


def test_the_most_confident_proposal_wins_and_weak_or_invalid_ones_are_dropped():
    lead = LeadFactory(email="z@gmail.com", industry="", city="", company_size=None, country="", properties={})
    unsure = Fixed("a", [Proposal("industry", "Retail", 0.6), Proposal("city", "Lyon", 0.3)])
    sure = Fixed(
        "b",
        [
            Proposal("industry", "Software", 0.95),
            Proposal("country", "Allemagne", 0.8),  # a name: cleaned to its code by the leads' rules
            Proposal("company_size", "lots", 0.9),  # refused by the leads' rules
            Proposal("properties.tier", "gold", 0.7),
        ],
    )
    result = services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation(), providers=[unsure, sure])
    lead.refresh_from_db()
    assert (lead.industry, lead.country, lead.city, lead.company_size) == ("Software", "DE", "", None)
    assert lead.properties == {"tier": "gold"}
    assert {c.field: (c.provider, c.new) for c in result.changes} == {
        "industry": ("b", "Software"),
        "country": ("b", "DE"),
        "properties.tier": ("b", "gold"),
    }


def test_a_failing_provider_blocks_neither_the_lead_nor_the_others():
    lead = LeadFactory(email="w@umbrella.fr", company_name="", country="", industry="")
    broken = Fixed("down", error=ProviderError("HTTP 503", transient=True))
    crashing = Fixed("buggy", error=KeyError("oops"))
    working = Fixed("ok", [Proposal("industry", "Pharma", 0.9)])
    result = services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation(), providers=[broken, crashing, working])
    lead.refresh_from_db()
    assert lead.industry == "Pharma"
    assert [name for name, _, _ in result.failures] == ["down", "buggy"]
    assert result.retry_ids == [lead.pk]  # the 503 is worth another try; the bug is not


def test_a_deleted_lead_is_skipped():
    lead = LeadFactory(company_name="")
    lead_id = lead.pk
    lead.delete()
    assert services.leads_enrich(lead_ids=[lead_id], actor=Actor.automation()).changes == []


def test_the_gdpr_export_lists_what_was_set_and_the_erasure_deletes_it(people):
    from compliance import services as compliance

    lead = LeadFactory(email="erase.me@umbrella.fr", company_name="", country="", job_title="CFO")
    services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation())
    assert EnrichmentChange.objects.filter(lead=lead).count() == 4
    export = compliance.person_export(lead_id=lead.pk, actor=Actor(people.admin, "user"))
    rows = export["tables"]["enrichment.EnrichmentChange"]
    assert len(rows) == 4 and "Umbrella" in str(rows)
    compliance.leads_erase(lead_ids=[lead.pk], reason="GDPR request", actor=Actor(people.admin, "user"))
    assert not EnrichmentChange.objects.filter(lead_id=lead.pk).exists()

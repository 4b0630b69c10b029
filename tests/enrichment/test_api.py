"""`GET/POST /api/v1/leads/{id}/enrichment/` (what providers set; run again on demand) and the
lead page's Enrichment panel."""

from __future__ import annotations

import pytest

from enrichment import services
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _url(lead) -> str:
    return f"/api/v1/leads/{lead.pk}/enrichment/"


@pytest.fixture
def lead(people):
    return LeadFactory(
        email="jane@acme-robotics.de", company_name="", country="", job_title="Head of Sales", owner=people.sdr_a
    )


def test_what_providers_set_is_listed(lead, people, auth_client):
    services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation())
    body = auth_client(people.sdr_a).get(_url(lead)).json()
    assert {(r["field"], r["old"], r["new"], r["provider"], r["confidence"]) for r in body} == {
        ("company", "", "Acme Robotics", "builtin", 0.6),
        ("country", "", "DE", "builtin", 0.7),
        ("properties.seniority", "", "director", "builtin", 0.8),
        ("properties.department", "", "sales", "builtin", 0.8),
    }
    assert all(r["created_at"] for r in body)


def test_marketing_runs_it_again_on_demand(lead, people, auth_client):
    client = auth_client(people.marketing)
    first = client.post(_url(lead))
    assert first.status_code == 200, first.content
    assert {c["field"] for c in first.json()["changes"]} == {
        "company",
        "country",
        "properties.seniority",
        "properties.department",
    }
    assert first.json()["failed"] == []
    again = client.post(_url(lead)).json()
    assert again["changes"] == []  # blanks only: nothing left to fill
    requests = AuditEntry.objects.filter(action="enrichment.request", target_id=str(lead.pk)).order_by("at", "id")
    assert [e.actor_id for e in requests] == [people.marketing.pk] * 2
    assert requests[0].changes["country"] == ["", "DE"]


def test_roles_and_visibility(lead, people, auth_client, api_client):
    assert api_client.get(_url(lead)).status_code == 401
    assert auth_client(people.sdr_a).post(_url(lead)).status_code == 403  # sees it, may not run it
    assert auth_client(people.manager_a).post(_url(lead)).status_code == 403
    assert auth_client(people.sdr_b).get(_url(lead)).status_code == 404  # another team's lead
    assert auth_client(people.sdr_b).post(_url(lead)).status_code == 404
    assert auth_client(people.admin).post(_url(lead)).status_code == 200
    assert auth_client(people.admin).get("/api/v1/leads/999999999/enrichment/").status_code == 404


def test_the_lead_page_shows_the_panel(lead, people, client):
    client.force_login(people.sdr_a)
    html = client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'id="enrichment-panel"' in html and "No field filled by enrichment yet." in html
    services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation())
    html = client.get(f"/leads/{lead.pk}/").content.decode()
    assert 'data-field="country"' in html and "Acme Robotics" in html and "builtin" in html
    client.post("/i18n/setlang/", {"language": "fr", "next": "/"})
    html = client.get(f"/leads/{lead.pk}/").content.decode()
    assert "Enrichissement" in html and "Fournisseur" in html

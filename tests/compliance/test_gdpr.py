"""GDPR export and erasure, end to end through the API: every row of a person exported, no
personal data left in any column of any table after erasure (searched through
information_schema, so a table added tomorrow is searched too), aggregates kept, receipts
audited without personal data, idempotence, and the object-level authorisation."""

from __future__ import annotations

import pytest
from django.db import connection

from compliance.models import ErasedIdentity, Erasure
from compliance.selectors import email_hash
from leadcrm.models import AuditEntry
from leads.models import ConsentRecord, ImportJob, Lead, StageChange, Touchpoint
from nurturing.models import Message
from tests.compliance.seed import make_person, seed_person

pytestmark = pytest.mark.django_db


def _columns() -> list[tuple[str, str]]:
    """Every text, JSON and address column of every table of the public schema."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name FROM information_schema.columns c
            JOIN information_schema.tables t ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb', 'inet', 'cidr')
            ORDER BY 1, 2
            """
        )
        return cursor.fetchall()


def _found(tokens: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, token) for every column holding one of the tokens (case-insensitive)."""
    hits = []
    with connection.cursor() as cursor:
        for table, column in _columns():
            for token in tokens:
                cursor.execute(
                    f'SELECT 1 FROM "{table}" WHERE lower("{column}"::text) LIKE %s LIMIT 1',  # noqa: S608
                    ["%" + token.lower().replace("%", r"\%").replace("_", r"\_") + "%"],
                )
                if cursor.fetchone():
                    hits.append((table, column, token))
    return hits


@pytest.fixture
def world(people):
    person = seed_person(make_person("zed"), user=people.admin)
    other = seed_person(make_person("ory"), user=people.admin)
    return person, other


def test_the_seed_reaches_every_discovered_table_and_its_identifiers_are_found(world):
    """The search can fail: before erasure the person's identifiers are in many columns."""
    person, _ = world
    hits = _found(person.tokens)
    tables = {t for t, _, _ in hits}
    assert {"leads_lead", "leads_touchpoint", "nurturing_message", "leadcrm_auditentry"} <= tables
    assert {tok for _, _, tok in hits} == set(person.tokens)


def test_export_contains_every_row_of_the_person_and_none_of_another(world, people, auth_client):
    person, other = world
    answer = auth_client(people.marketing).get(f"/api/v1/leads/{person.lead.pk}/export/")
    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["lead"]["email"] == person.email
    exported = {label: {row["id"] for row in rows} for label, rows in data["tables"].items()}
    for label, pks in person.rows.items():
        assert pks, label
        assert pks <= exported.get(label, set()), f"{label}: rows {pks - exported.get(label, set())} not exported"
    for label, pks in other.rows.items():
        if label == "leadcrm.AuditEntry":
            continue  # an audit entry may be about both (none here, but entries are shared)
        assert not (pks & exported.get(label, set())), f"{label}: another person's rows exported"
    # the receipt: who exported whom, no personal data in it
    receipt = AuditEntry.objects.get(action="compliance.export", target_id=str(person.lead.pk))
    assert receipt.actor_id == people.marketing.pk
    assert person.email not in f"{receipt.target_repr} {receipt.details} {receipt.changes}"
    assert receipt.details["rows"]["leads.Touchpoint"] >= 1
    # an import's file holds other people's lines: listed, never exported
    assert all("data" not in row for row in data["tables"]["leads.ImportJob"])


def test_erase_leaves_no_personal_data_in_any_table_and_keeps_the_aggregates(world, people, auth_client):
    person, other = world
    lead_id = person.lead.pk
    stage_changes = StageChange.objects.filter(lead_id=lead_id).count()
    touchpoints = Touchpoint.objects.filter(lead_id=lead_id).count()
    messages = Message.objects.filter(lead_id=lead_id).count()
    answer = auth_client(people.admin).post(
        f"/api/v1/leads/{lead_id}/erase/", {"reason": f"Request by {person.email} on 2026-12-01"}, format="json"
    )
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["status"] == "erased" and body["counts"]["leads.Lead"] == 1

    assert _found(person.tokens) == []
    # another person's data is untouched
    assert {tok for _, _, tok in _found(other.tokens)} == set(other.tokens)
    # the lead and its aggregates stay
    lead = Lead.objects.get(pk=lead_id)
    assert (
        lead.email == f"erased-{lead_id}@erased.invalid" and lead.first_name == "" and lead.consent_status == "opt_out"
    )
    assert StageChange.objects.filter(lead_id=lead_id).count() == stage_changes
    assert Touchpoint.objects.filter(lead_id=lead_id).count() == touchpoints
    assert Message.objects.filter(lead_id=lead_id).count() == messages
    # the hash outlives the address; the receipt names no one
    assert ErasedIdentity.objects.filter(email_hash=email_hash(person.email)).exists()
    erasure = Erasure.objects.get(lead_id=lead_id)
    assert erasure.reason == "Request by [erased] on 2026-12-01"
    receipt = AuditEntry.objects.get(action="compliance.erase", target_id=str(lead_id))
    assert receipt.actor_id == people.admin.pk and receipt.details["erasure"] == erasure.pk
    assert ConsentRecord.objects.filter(lead_id=lead_id, ip__isnull=False).count() == 0
    # the uploaded CSV (bytes, not searched above): the person's line scrubbed, the others kept
    (job,) = ImportJob.objects.filter(pk__in=person.rows["leads.ImportJob"])
    assert bytes(job.data) == b"email,first_name,phone\nkeep@example.net,Keep,\n[erased],[erased],[erased]\n"


def test_erase_is_idempotent(world, people, auth_client):
    person, _ = world
    client = auth_client(people.marketing)
    first = client.post(f"/api/v1/leads/{person.lead.pk}/erase/", {"reason": "request"}, format="json").json()
    second = client.post(f"/api/v1/leads/{person.lead.pk}/erase/", {"reason": "again"}, format="json").json()
    assert second["status"] == "already_erased" and second["erasure"] == first["erasure"]
    assert Erasure.objects.filter(lead_id=person.lead.pk).count() == 1
    assert AuditEntry.objects.filter(action="compliance.erase", target_id=str(person.lead.pk)).count() == 1


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 5 * "x" * 300}, [1], {"reason": None}]
)
def test_erase_needs_a_reason(people, auth_client, body):
    lead = Lead.objects.create(email="reason@example.org")
    answer = auth_client(people.admin).post(f"/api/v1/leads/{lead.pk}/erase/", body, format="json")
    assert answer.status_code == 400
    assert not Erasure.objects.exists() and Lead.objects.get(pk=lead.pk).email == "reason@example.org"


def test_who_may_export_and_erase(people, auth_client, api_client):
    """Admins and marketing; a seller or manager who sees the lead: 403; one who does not see
    it: 404 (its existence is not disclosed); anonymous: 401."""
    own = Lead.objects.create(email="own@example.org", owner=people.sdr_a, team=people.team_a)
    hidden = Lead.objects.create(email="hidden@example.org", owner=people.sdr_b, team=people.team_b)
    cases = [
        (people.admin, own, 200),
        (people.marketing, own, 200),
        (people.manager_a, own, 403),
        (people.sdr_a, own, 403),
        (people.sdr_a, hidden, 404),
        (people.manager_a, hidden, 404),
        (people.sdr_a2, own, 404),
    ]
    for user, lead, code in cases:
        client = auth_client(user)
        assert client.get(f"/api/v1/leads/{lead.pk}/export/").status_code == code, (user.role, lead.email)
        erase = client.post(f"/api/v1/leads/{lead.pk}/erase/", {}, format="json").status_code
        assert erase == (400 if code == 200 else code), (user.role, lead.email)
    assert api_client.get(f"/api/v1/leads/{own.pk}/export/").status_code == 401
    assert api_client.post(f"/api/v1/leads/{own.pk}/erase/", {"reason": "x"}, format="json").status_code == 401
    assert not Erasure.objects.exists()
    assert not AuditEntry.objects.filter(action="compliance.export", target_id=str(hidden.pk)).exists()


def test_pages_follow_the_same_rules(people, client):
    own = Lead.objects.create(email="page@example.org", owner=people.sdr_a, team=people.team_a)
    hidden = Lead.objects.create(email="page-hidden@example.org", owner=people.sdr_b, team=people.team_b)
    client.force_login(people.sdr_a)
    assert client.get(f"/leads/{own.pk}/privacy/export/").status_code == 403
    assert client.get(f"/leads/{hidden.pk}/privacy/export/").status_code == 404
    assert client.post(f"/leads/{own.pk}/privacy/erase/", {"reason": "x", "confirm": "erase"}).status_code == 403
    client.force_login(people.marketing)
    page = client.get(f"/leads/{own.pk}/")
    assert b'id="privacy-panel"' in page.content and b"privacy-export" in page.content
    download = client.get(f"/leads/{own.pk}/privacy/export/")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    assert b"page@example.org" in download.content
    unconfirmed = client.post(f"/leads/{own.pk}/privacy/erase/", {"reason": "asked"})
    assert unconfirmed.status_code == 302 and not Erasure.objects.exists()
    done = client.post(f"/leads/{own.pk}/privacy/erase/", {"reason": "asked", "confirm": "erase"})
    assert done.status_code == 302 and Erasure.objects.filter(lead_id=own.pk).exists()
    assert b"page@example.org" not in client.get(f"/leads/{own.pk}/").content

"""The consent log: written where consent is recorded (API capture with the caller's IP and
browser, bulk, unsubscribe and double opt-in sources), append-only in the database, and an
erased person's address never opted in again (capture, bulk import, double opt-in)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance import services as compliance_services
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry, OutboxMessage
from leads import services as lead_services
from leads.models import ConsentRecord, Lead
from leads.validation import clean_consent

pytestmark = pytest.mark.django_db
TEXT = "Yes, e-mail me LeadCRM news. I can unsubscribe at any time."


def test_api_capture_logs_the_consent_with_the_callers_ip_and_browser(people, auth_client):
    client = auth_client(people.marketing)
    answer = client.post(
        "/api/v1/leads/",
        {"email": "ana@example.org", "consent": {"status": "opt_in", "source": "form:webinar", "text": TEXT}},
        format="json",
        REMOTE_ADDR="192.0.2.10",
        HTTP_USER_AGENT="Mozilla/5.0 Test",
    )
    assert answer.status_code == 201, answer.content
    (record,) = ConsentRecord.objects.filter(lead_id=answer.json()["id"])
    assert (record.status, record.channel, record.source) == ("opt_in", "form", "form:webinar")
    assert (record.ip, record.user_agent) == ("192.0.2.10", "Mozilla/5.0 Test")
    assert record.text == TEXT and record.text_sha256 == hashlib.sha256(TEXT.encode()).hexdigest()
    assert (record.purpose, record.legal_basis) == ("marketing_email", "consent")
    assert (record.actor_kind, record.actor_id) == ("api", people.marketing.pk)


def test_the_persons_own_ip_given_by_a_relaying_server_wins(people, auth_client):
    consent = {"status": "opt_in", "ip": "2001:db8::7", "user_agent": "Their browser", "legal_basis": "consent"}
    answer = auth_client(people.marketing).post(
        "/api/v1/leads/", {"email": "bo@example.org", "consent": consent}, format="json", REMOTE_ADDR="192.0.2.10"
    )
    record = ConsentRecord.objects.get(lead_id=answer.json()["id"])
    assert (record.ip, record.user_agent, record.channel) == ("2001:db8::7", "Their browser", "api")


@pytest.mark.parametrize(
    "consent",
    [
        {"status": "opt_in", "ip": "999.1.1.1"},
        {"status": "opt_in", "ip": 5},
        {"status": "opt_in", "purpose": "telemarketing"},
        {"status": "opt_in", "legal_basis": "because"},
        {"status": "opt_in", "user_agent": "x" * 501},
    ],
)
def test_bad_evidence_is_a_field_error(people, auth_client, consent):
    answer = auth_client(people.marketing).post("/api/v1/leads/", {"email": "c@example.org", "consent": consent})
    assert answer.status_code == 400 and "consent" in answer.json()
    assert not Lead.objects.exists()


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["ip", "user_agent", "purpose", "legal_basis"]), st.from_type(object) | st.text())
)
def test_clean_consent_never_raises_anything_but_value_error(extra):
    try:
        clean_consent({"status": "opt_in", **extra})
    except ValueError:
        pass


def test_every_word_is_logged_with_its_channel_and_double_opt_in_proof(people):
    lead = Lead.objects.create(email="dee@example.org")
    actor = Actor.automation()
    lead_services.leads_consent_record(
        items=[(lead.pk, clean_consent({"status": "opt_in", "double_opt_in": True, "source": "form:demo"}))],
        actor=Actor(people.marketing, "api"),
    )
    lead_services.lead_consent_set(
        lead_id=lead.pk, status="opt_in", source="double_opt_in:confirmed:message:42", actor=actor
    )
    lead_services.lead_consent_set(lead_id=lead.pk, status="opt_out", source="unsubscribe:message:43", actor=actor)
    lead_services.lead_consent_set(lead_id=lead.pk, status="opt_out", source="unsubscribe:message:44", actor=actor)
    rows = list(ConsentRecord.objects.filter(lead=lead).order_by("id"))
    assert [(r.status, r.channel) for r in rows] == [
        ("pending", "form"),
        ("opt_in", "double_opt_in"),
        ("opt_out", "unsubscribe"),
        ("opt_out", "unsubscribe"),  # the same word again is still evidence
    ]
    assert rows[1].proof_reference == "message:42" and rows[1].proof_at is not None
    lead.refresh_from_db()
    assert lead.consent_status == "opt_out"


def test_the_log_is_append_only_in_the_database():
    lead = Lead.objects.create(email="fay@example.org")
    lead_services.lead_consent_set(
        lead_id=lead.pk, status="opt_in", source="form:x", actor=Actor.automation(), ip="192.0.2.1", user_agent="UA"
    )
    record = ConsentRecord.objects.get(lead=lead)
    rows = ConsentRecord.objects.filter(pk=record.pk)
    for change in (
        lambda: rows.update(status="opt_out"),
        lambda: rows.update(text="Something else"),
        lambda: rows.update(ip=None, user_agent="", erased_at=timezone.now(), status="opt_out"),
        lambda: rows.delete(),
        lambda: Lead.objects.filter(pk=lead.pk).delete(),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            change()
    record.refresh_from_db()
    assert (record.status, record.ip) == ("opt_in", "192.0.2.1")
    # the erasure's one update is allowed, once
    assert rows.update(ip=None, user_agent="", erased_at=timezone.now()) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(erased_at=timezone.now())


def _erase(email: str, user) -> None:
    lead = Lead.objects.create(email=email)
    compliance_services.leads_erase(lead_ids=[lead.pk], reason="request", actor=Actor(user, "user"))


def test_an_erased_address_is_not_opted_in_again_by_capture_bulk_or_double_opt_in(people, auth_client):
    _erase("gone@example.org", people.admin)
    client = auth_client(people.marketing)
    consent = {"status": "opt_in", "source": "form:webinar", "text": TEXT}
    answer = client.post("/api/v1/leads/", {"email": "Gone@Example.org", "consent": consent}, format="json")
    assert answer.status_code == 201 and answer.json()["consent_status"] == "none"
    lead_id = answer.json()["id"]
    bulk = client.post(
        "/api/v1/leads/bulk/",
        {"leads": [{"email": "gone@example.org", "consent": {**consent, "double_opt_in": True}}]},
        format="json",
    )
    assert bulk.status_code in (200, 201, 207), bulk.content
    lead = Lead.objects.get(pk=lead_id)
    assert lead.consent_status == "none"
    assert not ConsentRecord.objects.filter(lead=lead).exists()
    assert not OutboxMessage.objects.filter(
        event="lead.consent_requested", payload__lead_ids__contains=[lead_id]
    ).exists()
    assert AuditEntry.objects.filter(action="lead.consent_refused", target_id=str(lead_id)).count() == 2
    # an opt-out is still recorded (the person's word against marketing always counts)
    lead_services.lead_consent_set(lead_id=lead_id, status="opt_out", source="unsubscribe:message:1", actor=Actor())
    assert ConsentRecord.objects.filter(lead=lead, status="opt_out").count() == 1


def test_another_address_is_opted_in_as_usual(people, auth_client):
    _erase("gone2@example.org", people.admin)
    answer = auth_client(people.marketing).post(
        "/api/v1/leads/", {"email": "kept@example.org", "consent": {"status": "opt_in"}}, format="json"
    )
    assert answer.json()["consent_status"] == "opt_in"

"""The `consent` a capture or an edit carries (SPEC "Lead fields"): recorded in the consent log
as given, a double opt-in leaving the lead pending with its confirmation e-mail sent right
after commit (not at the next beat), on the single, bulk and PATCH paths alike; a bad
consent is a field error, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadcrm.models import AuditEntry
from leads.models import ConsentStatus, Lead
from leads.validation import clean_lead_row
from nurturing import tasks
from nurturing.models import Message, TemplateKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(api_client, make_user):
    api_client.force_authenticate(make_user("marketing"))
    return api_client


def _create(client, consent, email="ada@example.com"):
    return client.post("/api/v1/leads/", {"email": email, "consent": consent}, format="json")


def test_an_opt_in_with_its_words_is_logged(marketing):
    consent = {"status": "opt_in", "source": "webinar form", "text": "Send me the news", "at": "2026-11-02T10:00:00Z"}
    response = _create(marketing, consent)
    assert response.status_code == 201, response.json()
    assert response.json()["consent_status"] == "opt_in"
    assert "consent" not in response.json()  # write-only
    lead = Lead.objects.get()
    assert lead.consent_source == "webinar form" and lead.consent_at.isoformat().startswith("2026-11-02T10:00")
    entry = AuditEntry.objects.get(action="lead.consent", target_id=str(lead.pk))
    assert entry.changes["consent_status"] == ["none", "opt_in"] and entry.details == {"text": "Send me the news"}


def test_a_double_opt_in_is_pending_and_its_confirmation_goes_at_once(marketing, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = _create(marketing, {"status": "opt_in", "double_opt_in": True, "source": "landing"})
    assert response.status_code == 201 and response.json()["consent_status"] == "pending"
    (message,) = Message.objects.all()
    assert message.kind == TemplateKind.TRANSACTIONAL and message.lead_id == response.json()["id"]
    assert message.status == "sent"  # the outbox's reaction ran after commit, the send after it


def test_a_redelivered_confirmation_request_sends_nothing_more(marketing, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        lead_id = _create(marketing, {"status": "opt_in", "double_opt_in": True}).json()["id"]
    from leadcrm.models import OutboxMessage

    row = OutboxMessage.objects.filter(task="nurturing.tasks.consent_confirmation_request").latest("pk")
    tasks.consent_confirmation_request(**row.payload)  # delivered a second time
    assert Message.objects.filter(lead_id=lead_id).count() == 1


def test_an_opted_in_lead_asked_again_for_a_double_opt_in_stays_opted_in(marketing):
    _create(marketing, {"status": "opt_in"})
    response = _create(marketing, {"status": "opt_in", "double_opt_in": True})
    assert response.status_code == 200 and response.json()["consent_status"] == "opt_in"
    assert not Message.objects.exists()


def test_an_opt_out_by_patch_and_in_bulk(api_client, make_user):
    admin = make_user("admin")
    api_client.force_authenticate(admin)
    lead_id = _create(api_client, {"status": "opt_in"}).json()["id"]
    response = api_client.patch(f"/api/v1/leads/{lead_id}/", {"consent": {"status": "opt_out"}}, format="json")
    assert response.status_code == 200 and response.json()["consent_status"] == "opt_out"
    rows = [{"email": "b@example.com", "consent": {"status": "opt_in"}}, {"email": "c@example.com"}]
    body = api_client.post("/api/v1/leads/bulk/", {"leads": rows}, format="json").json()
    assert body["created"] == 2
    assert Lead.objects.get(email="b@example.com").consent_status == ConsentStatus.OPT_IN
    assert Lead.objects.get(email="c@example.com").consent_status == ConsentStatus.NONE


@pytest.mark.parametrize(
    "consent",
    [
        "yes",
        {},
        {"status": "maybe"},
        {"status": "opt_in", "colour": "blue"},
        {"status": "opt_out", "double_opt_in": True},
        {"status": "opt_in", "double_opt_in": "yes"},
        {"status": "opt_in", "text": "x" * 2001},
        {"status": "opt_in", "source": "a\x00b"},
        {"status": "opt_in", "at": "yesterday"},
    ],
)
def test_a_bad_consent_is_a_field_error(marketing, consent):
    response = _create(marketing, consent)
    assert response.status_code == 400 and "consent" in response.json(), response.content
    assert not Lead.objects.exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda c: st.dictionaries(st.text(), c)))
def test_any_consent_value_is_clean_or_a_field_error(value):
    clean, errors = clean_lead_row({"email": "x@example.com", "consent": value})
    assert ("consent" in errors) != ("consent" in clean)

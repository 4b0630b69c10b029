"""The external provider's contract, against a real HTTP server on loopback: what it is sent
(the key, the lead's data), what it answers, and every way it can fail (slow, down, 5xx,
garbage): its failure never blocks or loses the lead, and a passing failure is tried again."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from enrichment import services, tasks
from enrichment.models import EnrichmentChange
from enrichment.providers import BuiltinProvider, HttpProvider, ProviderError, configured_providers
from leadcrm.actors import Actor
from leads.models import Lead
from tests.factories import LeadFactory

OK_BODY = {"proposals": [{"field": "industry", "value": "Aerospace", "confidence": 0.85}]}


class Receiver:
    """A loopback enrichment service: answers the scripted (status, body, delay) replies in
    turn (the last one again when they run out) and keeps every request."""

    def __init__(self):
        self.replies: list[tuple[int, bytes, float]] = [(200, json.dumps(OK_BODY).encode(), 0.0)]
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append({"headers": dict(self.headers), "body": json.loads(self.rfile.read(length))})
                index = min(len(receiver.requests), len(receiver.replies)) - 1
                status, body, delay = receiver.replies[index]
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/enrich"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_off_by_default(settings):
    settings.LEADCRM_ENRICHMENT_URL = ""
    assert [type(p) for p in configured_providers()] == [BuiltinProvider]


def test_the_request_and_the_answer(receiver):
    provider = HttpProvider(receiver.url, "s3cret", timeout=2)
    proposals = provider.propose({"email": "jane@acme.example", "job_title": "CTO", "properties": {}})
    assert [(p.field, p.value, p.confidence) for p in proposals] == [("industry", "Aerospace", 0.85)]
    (request,) = receiver.requests
    assert request["headers"]["Authorization"] == "Bearer s3cret"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"lead": {"email": "jane@acme.example", "job_title": "CTO", "properties": {}}}


def test_bad_proposals_are_dropped_one_by_one(receiver):
    body = {
        "proposals": [
            {"field": "email", "value": "other@x.example", "confidence": 1},  # never enriched
            {"field": "stage", "value": "WO", "confidence": 1},
            {"field": "city", "value": "Lyon", "confidence": 1.5},
            {"field": "city", "value": ["Lyon"], "confidence": 0.9},
            {"field": "properties.", "value": "x", "confidence": 0.9},
            "garbage",
            {"field": "city", "value": "Lyon", "confidence": 0.9},
            {"field": "properties.tier", "value": "gold", "confidence": 0.7},
        ]
    }
    receiver.replies = [(200, json.dumps(body).encode(), 0.0)]
    proposals = HttpProvider(receiver.url, timeout=2).propose({})
    assert [(p.field, p.value) for p in proposals] == [("city", "Lyon"), ("properties.tier", "gold")]


@pytest.mark.parametrize(
    "status, body, transient",
    [
        (503, b"{}", True),
        (429, b"{}", True),
        (401, b"{}", False),
        (200, b"<html>not json</html>", False),
        (200, b'{"fields": []}', False),
        (200, b"[1, 2]", False),
        (200, b'{"proposals": []}' + b" " * (70 * 1024), False),  # over 64 KB
    ],
)
def test_failures_are_provider_errors(receiver, status, body, transient):
    receiver.replies = [(status, body, 0.0)]
    with pytest.raises(ProviderError) as caught:
        HttpProvider(receiver.url, timeout=2).propose({})
    assert caught.value.transient is transient


def test_a_slow_service_times_out(receiver):
    receiver.replies = [(200, json.dumps(OK_BODY).encode(), 1.5)]
    with pytest.raises(ProviderError) as caught:
        HttpProvider(receiver.url, timeout=0.3).propose({})
    assert caught.value.transient


def test_a_service_down_is_a_transient_failure():
    with pytest.raises(ProviderError) as caught:
        HttpProvider(f"http://127.0.0.1:{_closed_port()}/enrich", timeout=1).propose({})
    assert caught.value.transient


@pytest.mark.django_db
def test_a_capture_with_the_service_down_keeps_the_lead(
    settings, people, auth_client, django_capture_on_commit_callbacks, receiver
):
    """The service answers 503 every time: the lead is created, the built-in provider's
    fields are filled, the task tries the service again (eagerly here) and then gives up."""
    settings.LEADCRM_ENRICHMENT_URL, settings.LEADCRM_ENRICHMENT_TIMEOUT = receiver.url, 1
    receiver.replies = [(503, b"{}", 0.0)]
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(people.marketing).post(
            "/api/v1/leads/", {"email": "ann@initech.fr", "job_title": "Sales Manager"}, format="json"
        )
    assert response.status_code == 201, response.content
    lead = Lead.objects.get(email="ann@initech.fr")
    assert (lead.company_name, lead.country, lead.industry) == ("Initech", "FR", "")
    assert len(receiver.requests) == 1 + tasks.PROVIDER_RETRIES  # the first run and each retry
    assert not EnrichmentChange.objects.filter(lead=lead, provider="http").exists()


@pytest.mark.django_db
def test_the_task_tries_again_and_gets_the_answer(settings, receiver):
    """Two failures (a 503, then a timeout), then the answer: applied once."""
    settings.LEADCRM_ENRICHMENT_URL, settings.LEADCRM_ENRICHMENT_TIMEOUT = receiver.url, 0.5
    settings.LEADCRM_ENRICHMENT_API_KEY = "k"
    body = json.dumps(OK_BODY).encode()
    receiver.replies = [(503, b"{}", 0.0), (200, body, 1.5), (200, body, 0.0)]
    lead = LeadFactory(email="bob@globex.example", industry="", company_name="")
    assert tasks.leads_enrich.apply(kwargs={"lead_ids": [lead.pk]}).get() == 1  # the industry
    lead.refresh_from_db()
    assert lead.industry == "Aerospace"
    assert len(receiver.requests) == 3
    assert receiver.requests[-1]["body"]["lead"]["email"] == "bob@globex.example"
    change = EnrichmentChange.objects.get(lead=lead, provider="http")
    assert (change.field, change.old, change.new, change.confidence) == ("industry", "", "Aerospace", 0.85)
    # the built-in provider's name was applied on the first run, not again
    assert EnrichmentChange.objects.filter(lead=lead, field="company").count() == 1
    assert services.leads_enrich(lead_ids=[lead.pk], actor=Actor.automation()).changes == []

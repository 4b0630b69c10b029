"""API keys: created by admins (shown once, stored as prefix + hash, audited), sent as
`Authorization: Api-Key <key>`, limited to their scopes across the API, revocable, with a
last-used time; refused keys spend the anonymous quota like refused tokens."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from integrations import scopes as scope_rules
from integrations.models import ApiKey
from leadcrm.models import AuditEntry
from leadcrm.urls import urlpatterns as root_patterns  # noqa: F401 - the URL conf is loaded
from leads.models import Lead
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db

KEYS = "/api/v1/api-keys/"
LEADS = "/api/v1/leads/"
EVENTS = "/api/v1/events/"
_addresses = itertools.count(1)


def _client(key: str | None = None) -> APIClient:
    n = uuid.uuid4().int
    client = APIClient(REMOTE_ADDR=f"10.{n % 250}.{(n >> 8) % 250}.{next(_addresses) % 250 + 1}")
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def admin():
    return UserFactory(role="admin")


@pytest.fixture
def make_key(admin, auth_client):
    client = auth_client(admin)

    def make(*scopes: str, name: str = "Connector") -> str:
        response = client.post(KEYS, {"name": name, "scopes": list(scopes)}, format="json")
        assert response.status_code == 201, response.content
        return response.json()["key"]

    return make


def test_an_admin_creates_a_key_shown_once_and_stored_as_a_hash(admin, auth_client):
    client = auth_client(admin)
    response = client.post(KEYS, {"name": "Ads connector", "scopes": ["capture"]}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw = body["key"]
    key = ApiKey.objects.get(pk=body["id"])
    assert raw.startswith(key.prefix) and body["prefix"] == key.prefix
    assert raw not in (key.hashed_key, key.prefix) and len(raw) > 40
    assert not ApiKey.objects.filter(hashed_key__contains=raw).exists()
    listed = client.get(KEYS).json()
    assert [k["name"] for k in listed] == ["Ads connector"] and "key" not in listed[0]
    assert raw not in client.get(KEYS).content.decode()
    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.actor_id == admin.pk and raw not in str(entry.changes)


@pytest.mark.parametrize("role", ["marketing", "manager", "sdr"])
def test_only_admins_manage_keys(role, auth_client):
    client = auth_client(UserFactory(role=role))
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "x", "scopes": ["read"]}, format="json").status_code == 403


def test_bad_input_is_a_field_error(admin, auth_client):
    client = auth_client(admin)
    assert "scopes" in client.post(KEYS, {"name": "x", "scopes": ["root"]}, format="json").json()
    assert "scopes" in client.post(KEYS, {"name": "x", "scopes": []}, format="json").json()
    assert "name" in client.post(KEYS, {"scopes": ["read"]}, format="json").json()


def test_a_read_key_reads_leads_but_cannot_write_them(make_key):
    lead = LeadFactory(email="read-me@example.com")
    client = _client(make_key("read"))
    assert client.get(LEADS).status_code == 200
    assert client.get(f"{LEADS}{lead.pk}/").json()["email"] == "read-me@example.com"
    assert client.get(f"{LEADS}{lead.pk}/history/").status_code == 200
    assert client.post(LEADS, {"email": "new@example.com"}, format="json").status_code == 403
    assert client.patch(f"{LEADS}{lead.pk}/", {"city": "Lyon"}, format="json").status_code == 403
    assert client.post(EVENTS, {"type": "page_view", "lead_id": lead.pk}, format="json").status_code == 403
    assert client.get("/api/v1/users/").status_code == 403  # not a lead endpoint
    assert client.get(KEYS).status_code == 403


def test_a_capture_key_sends_leads_and_events_in_but_cannot_read_leads(make_key):
    lead = LeadFactory()
    client = _client(make_key("capture"))
    assert client.post(LEADS, {"email": "captured@example.com"}, format="json").status_code == 201
    assert Lead.objects.filter(email="captured@example.com").exists()
    assert client.post(EVENTS, {"type": "page_view", "lead_id": lead.pk}, format="json").status_code == 201
    assert client.get(LEADS).status_code == 403
    assert client.get(f"{LEADS}{lead.pk}/").status_code == 403
    assert client.patch(f"{LEADS}{lead.pk}/", {"city": "Lyon"}, format="json").status_code == 403
    assert client.get("/api/v1/metrics/funnel/").status_code == 403


def test_a_write_key_writes_leads_but_not_configuration(make_key):
    lead = LeadFactory()
    client = _client(make_key("write"))
    assert client.patch(f"{LEADS}{lead.pk}/", {"city": "Lyon"}, format="json").status_code == 200
    assert client.get(LEADS).status_code == 200
    assert client.get("/api/v1/webhooks/").status_code == 403
    assert client.post("/api/v1/users/", {}, format="json").status_code == 403


def test_an_admin_key_reaches_the_api_but_not_the_keys(make_key):
    client = _client(make_key("admin"))
    assert client.get("/api/v1/users/").status_code == 200
    assert client.get("/api/v1/webhooks/").status_code == 200
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "more", "scopes": ["admin"]}, format="json").status_code == 403


def test_a_keys_writes_are_audited_as_an_api_client_of_its_creator(make_key, admin):
    lead = LeadFactory()
    _client(make_key("write")).patch(f"{LEADS}{lead.pk}/", {"city": "Nantes"}, format="json")
    entry = AuditEntry.objects.filter(target_id=str(lead.pk)).latest("id")
    assert entry.actor_id == admin.pk and entry.actor_kind == "api"


def test_a_revoked_key_is_refused(make_key, admin, auth_client):
    raw = make_key("read")
    client = _client(raw)
    assert client.get(LEADS).status_code == 200
    key = ApiKey.objects.get(prefix=raw[:13])
    response = auth_client(admin).post(f"/api/v1/api-keys/{key.pk}/revoke/")
    assert response.status_code == 200 and response.json()["active"] is False
    assert client.get(LEADS).status_code == 401
    assert AuditEntry.objects.filter(action="api_key.revoke", target_id=str(key.pk)).count() == 1


def test_a_key_whose_creator_was_deactivated_is_refused(make_key, admin):
    client = _client(make_key("read"))
    admin.is_active = False
    admin.save(update_fields=["is_active"])
    assert client.get(LEADS).status_code == 401


def test_unknown_and_malformed_keys_are_refused(make_key):
    raw = make_key("read")
    for header in (f"Api-Key {raw[:-1]}x", "Api-Key lcrm_nothing", "Api-Key", f"Api-Key {raw} extra", "Api-Key é"):
        client = _client()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get(LEADS)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"] == "Token"


def test_the_token_scheme_still_works(auth_client, admin):
    assert auth_client(admin).get(LEADS).status_code == 200


def test_last_used_is_written_at_most_once_a_minute(make_key):
    raw = make_key("read")
    key = ApiKey.objects.get(prefix=raw[:13])
    assert key.last_used_at is None
    client = _client(raw)
    client.get(LEADS)
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None and timezone.now() - first < dt.timedelta(seconds=30)
    with CaptureQueriesContext(connection) as queries:
        client.get(LEADS)
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE") and "apikey" in q["sql"]]
    key.refresh_from_db()
    assert key.last_used_at == first
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first - dt.timedelta(minutes=2))
    client.get(LEADS)
    key.refresh_from_db()
    assert key.last_used_at > first


@pytest.fixture
def anon_rate(monkeypatch):
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "anon": "4/day"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return 4


def test_refused_keys_spend_the_anonymous_quota(anon_rate):
    client = _client("lcrm_" + "A" * 43)
    codes = [client.get(LEADS).status_code for _ in range(anon_rate + 2)]
    assert codes == [401] * anon_rate + [429] * 2


def test_a_scope_refusal_is_403_and_never_reveals_a_lead(make_key):
    lead = LeadFactory(email="hidden@example.com")
    response = _client(make_key("capture")).get(f"{LEADS}{lead.pk}/")
    assert response.status_code == 403 and b"hidden@example.com" not in response.content


# --- the scope table, over every operation of the API ---------------------------------------

API_NAMES = sorted({p.name for p in __import__("leadcrm.api_urls", fromlist=["urlpatterns"]).urlpatterns if p.name})
METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]


@given(
    st.sets(st.sampled_from(["capture", "read", "write", "admin"])),
    st.sampled_from(API_NAMES),
    st.sampled_from(METHODS),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_scope_table_grants_no_more_than_each_scope_says(granted, name, method):
    allowed = scope_rules.allows(granted, "api", name, method)
    if name in scope_rules.KEY_ADMIN:
        assert not allowed
    elif "admin" in granted:
        assert allowed
    elif allowed:
        reads = method in ("GET", "HEAD", "OPTIONS")
        if reads:
            assert granted & {"read", "write"} and name in scope_rules.LEAD_READS
        else:
            capture = name in ("lead-list", "events") or name.startswith("capture")
            assert "write" in granted or (method == "POST" and capture)
    # A key alone (no scope) and another namespace never pass.
    assert not scope_rules.allows(set(), "api", name, method)
    assert not scope_rules.allows(granted, "", name, method)


@given(st.text(min_size=0, max_size=80))
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_api_key_header_is_refused_cleanly(text):
    client = _client()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {text}".encode("utf-8", "replace").decode("latin-1"))
    assert client.get(reverse("api:lead-list")).status_code in (401, 429)

"""The admins' integration pages: API keys (shown once, revoked), webhooks (subscribe with
the SSRF check, switch off/on, rotate, the delivery log, replay), in English and French;
every other role gets 403."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from integrations import services
from integrations.models import ApiKey, Delivery, DeliveryStatus, Webhook
from leadcrm import events
from tests.factories import LeadFactory, UserFactory, WebhookFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_page():
    client = Client()
    client.force_login(UserFactory(role="admin"))
    return client


@pytest.mark.parametrize("role", ["marketing", "manager", "sdr"])
def test_other_roles_get_403(role):
    client = Client()
    client.force_login(UserFactory(role=role))
    hook = WebhookFactory()
    for url in ("/integrations/api-keys/", "/integrations/webhooks/", f"/integrations/webhooks/{hook.pk}/"):
        assert client.get(url).status_code == 403


def test_an_api_key_is_shown_once_then_revoked(admin_page):
    response = admin_page.post("/integrations/api-keys/", {"name": "Fair scanner", "scopes": ["capture"]})
    assert response.status_code == 200
    key = ApiKey.objects.get(name="Fair scanner")
    raw = response.context["created"]["raw"]
    assert raw.startswith(key.prefix) and raw in response.content.decode()
    page = admin_page.get("/integrations/api-keys/").content.decode()
    assert "Fair scanner" in page and raw not in page
    response = admin_page.post(f"/integrations/api-keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_a_private_target_is_refused_on_the_page(admin_page):
    response = admin_page.post("/integrations/webhooks/", {"url": "http://10.0.0.1/x", "events": ["lead.created"]})
    assert response.status_code == 200 and response.context["form"].errors["url"]
    assert not Webhook.objects.exists()
    response = admin_page.post(
        "/integrations/webhooks/", {"url": "https://93.184.215.14/x", "events": ["lead.created", "email.opened"]}
    )
    hook = Webhook.objects.get()
    assert hook.secret in response.content.decode() and hook.events == ["lead.created", "email.opened"]


def test_the_detail_page_shows_the_log_and_replays(admin_page, django_capture_on_commit_callbacks):
    hook = WebhookFactory()
    services.deliveries_write(
        event=events.LEAD_CREATED, occurrences=[services.Occurrence("p1", timezone.now(), [LeadFactory().pk])]
    )
    delivery = Delivery.objects.get()
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, attempts=9)
    page = admin_page.get(f"/integrations/webhooks/{hook.pk}/")
    assert page.status_code == 200 and "lead.created" in page.content.decode()
    assert admin_page.get(f"/integrations/webhooks/{hook.pk}/?status=delivered").context["rows"] == []

    response = admin_page.post(f"/integrations/deliveries/{delivery.pk}/replay/")
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.replays == 1

    now = timezone.now()
    response = admin_page.post(
        f"/integrations/webhooks/{hook.pk}/",
        {
            "action": "replay",
            "since": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
            "until": (now + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        },
    )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.replays == 2

    old = hook.secret
    rotated = admin_page.post(f"/integrations/webhooks/{hook.pk}/", {"action": "rotate"})
    hook.refresh_from_db()
    assert hook.secret != old and hook.secret in rotated.content.decode()
    admin_page.post(f"/integrations/webhooks/{hook.pk}/", {"action": "toggle"})
    hook.refresh_from_db()
    assert not hook.active


def test_the_pages_speak_french(admin_page):
    WebhookFactory()
    page = admin_page.get("/integrations/api-keys/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Clés d&#x27;API" in page or "Clés d'API" in page
    assert "Nouveau webhook" in admin_page.get("/integrations/webhooks/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()

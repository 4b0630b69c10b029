"""An admin creates an API key on its page (shown once), then subscribes a webhook and sees
its signing secret and, after an event, the delivery in the log."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations import services
from integrations.models import ApiKey, Webhook
from leadcrm import events
from tests.browser.fixtures import login, shot
from tests.factories import PASSWORD, LeadFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_an_admin_creates_a_key_and_a_webhook(page, receiver, allow_private):
    UserFactory(role="admin", username="integrator")
    login(page, "integrator", PASSWORD)
    page.goto(f"{page.live}/integrations/api-keys/")
    page.fill("#api-key-new input[name=name]", "Ads connector")
    page.check("#api-key-new input[value=capture]")
    page.click("#api-key-new button[type=submit]")
    raw = page.locator("#api-key-value").inner_text()
    assert raw.startswith(ApiKey.objects.get(name="Ads connector").prefix)
    page.goto(f"{page.live}/integrations/api-keys/")
    expect(page.locator("#api-keys")).to_contain_text("Ads connector")
    expect(page.locator("#api-key-value")).to_have_count(0)

    page.goto(f"{page.live}/integrations/webhooks/")
    page.fill("#webhook-new input[name=url]", receiver.url)
    page.check("#webhook-new input[value='lead.created']")
    page.click("#webhook-new button[type=submit]")
    hook = Webhook.objects.get()
    expect(page.locator("#webhook-secret")).to_have_text(hook.secret)

    services.deliveries_write(
        event=events.LEAD_CREATED, occurrences=[services.Occurrence("b1", timezone.now(), [LeadFactory().pk])]
    )
    services.deliveries_send_due()
    page.click(f"#webhooks a[href='/integrations/webhooks/{hook.pk}/']")
    expect(page.locator("#webhook-deliveries")).to_contain_text("lead.created")
    expect(page.locator("#webhook-deliveries")).to_contain_text("200")
    assert len(receiver.accepted()) == 1
    assert page.errors == [] and page.external == []
    shot(page, "integrations-webhook-log")

"""A marketer answers a GDPR request from the lead page: the Privacy panel shows the consent
log, "Export personal data" downloads the JSON of everything held, and "Erase this person"
(reason and confirmation) anonymises the lead."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from compliance.models import Erasure
from leadcrm.actors import Actor
from leads import services as lead_services
from leads.models import Lead
from tests.browser.fixtures import login, shot
from tests.factories import PASSWORD, LeadFactory, TouchpointFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_marketer_exports_then_erases_a_person(page):
    UserFactory(role=Role.MARKETING, username="gdpr")
    lead = LeadFactory(email="zoe.request@example.org", first_name="Zoeline", last_name="Requester")
    TouchpointFactory(lead=lead, url="https://www.example.com/?ref=zoe.request@example.org")
    lead_services.lead_consent_set(
        lead_id=lead.pk, status="opt_in", source="form:newsletter", actor=Actor.automation(), ip="192.0.2.44"
    )
    login(page, "gdpr", PASSWORD)
    page.goto(f"{page.live}/leads/{lead.pk}/")
    panel = page.locator("#privacy-panel")
    expect(panel.locator("[data-consent-record]")).to_have_count(1)
    expect(panel).to_contain_text("192.0.2.44")

    with page.expect_download() as download:
        page.click("[data-action=privacy-export]")
    data = json.loads(open(download.value.path()).read())  # noqa: PTH123, SIM115
    assert data["lead"]["email"] == "zoe.request@example.org"
    assert len(data["tables"]["leads.Touchpoint"]) == 1 and len(data["tables"]["leads.ConsentRecord"]) == 1

    page.click("#privacy-erase summary")
    page.fill("#privacy-erase textarea[name=reason]", "Their e-mail of 2026-12-05")
    page.click("[data-action=privacy-erase]")  # not confirmed: the browser refuses the form
    assert not Erasure.objects.exists()
    page.check("#privacy-erase input[name=confirm]")
    page.click("[data-action=privacy-erase]")
    expect(page.locator("#privacy-panel [data-erased]")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("zoe.request@example.org")
    expect(page.locator("body")).not_to_contain_text("Zoeline")
    shot(page, "lead-erased")
    lead = Lead.objects.get(pk=lead.pk)
    assert lead.email == f"erased-{lead.pk}@erased.invalid" and Erasure.objects.filter(lead=lead).exists()
    assert not page.external and not page.errors

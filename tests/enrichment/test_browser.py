"""A lead is captured (committed: its `lead.created` reactions run, enrichment among them);
a marketer opens its page and sees, in the Enrichment panel, the fields the built-in
provider filled, with no script error and nothing fetched off the site."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from leadcrm.actors import Actor
from leads import services as leads_services
from tests.browser.fixtures import login, shot
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_lead_page_shows_what_enrichment_set(page):
    UserFactory(role=Role.MARKETING, username="mona")
    lead, _ = leads_services.lead_capture(
        data={"email": "jane@acme-robotics.de", "phone": "+33 6 12 34 56 78", "job_title": "Head of Sales"},
        actor=Actor.automation(),
    )
    login(page, "mona", PASSWORD)
    page.goto(f"{page.live}/leads/{lead.pk}/")
    panel = page.locator("#enrichment-panel")
    expect(panel.locator("h2")).to_have_text("Enrichment")
    expect(panel.locator("tr[data-field=company]")).to_contain_text("Acme Robotics")
    expect(panel.locator("tr[data-field=country]")).to_contain_text("FR")
    expect(panel.locator("tr[data-field='properties.seniority']")).to_contain_text("director")
    expect(panel.locator("tr[data-field='properties.department']")).to_contain_text("sales")
    expect(panel.locator("tr[data-field=country]")).to_contain_text("90 %")
    # the lead itself was filled
    expect(page.locator("section[aria-labelledby=co-title] dl")).to_contain_text("Acme Robotics")
    shot(page, "enrichment-panel")
    assert page.errors == [] and page.external == []

"""A marketer builds a segment in the browser: the live count follows the form, the segment
is created with its members."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD, LeadFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_marketer_builds_a_segment_with_a_live_count(page):
    UserFactory(role=Role.MARKETING, username="mia")
    for n in range(3):
        LeadFactory(email=f"web{n}@x.example", source="webinar")
    LeadFactory(email="seo@x.example", source="seo")
    login(page, "mia", PASSWORD)
    page.click("nav.mainnav >> text=Segments")
    page.fill("#id_name", "Webinar people")
    page.fill("#id_source", "webinar")
    page.locator("#id_source").dispatch_event("change")
    expect(page.locator("#segment-count [data-count]")).to_have_attribute("data-count", "3")
    page.click("text=Create segment")
    expect(page.locator("#member-count")).to_have_text("3 members")
    expect(page.locator("#members tbody tr")).to_have_count(3)
    shot(page, "segment-created")
    assert not page.external and not page.errors

"""A marketer writes an e-mail template in the browser: the preview follows the editor on a
chosen lead (htmx, under the CSP), the test send reaches the marketer, the dashboard loads
its e-mail panel."""

from __future__ import annotations

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Role
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD, LeadFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_marketer_writes_previews_and_tests_a_template(page):
    mia = UserFactory(role=Role.MARKETING, username="mia")
    lead = LeadFactory(email="ada@client.example", first_name="Ada")
    login(page, "mia", PASSWORD)
    page.click("nav.mainnav >> text=E-mails")
    page.fill("#email-template-new #id_name", "Welcome")
    page.fill("#email-template-new #id_subject", "Hello {{ lead.first_name }}")
    page.fill("#email-template-new #id_text", "Dear {{ lead.first_name|default:'you' }}")
    page.click("text=Create template")
    expect(page.locator("h1")).to_have_text("Welcome")
    page.fill("#preview-lead", lead.email)
    page.click("#email-preview-form button")
    expect(page.locator("#preview-subject")).to_have_text("Hello Ada")
    page.fill("#email-template-editor #id_subject", "Hi again {{ lead.first_name }}")
    page.locator("#email-template-editor #id_subject").dispatch_event("change")
    expect(page.locator("#preview-subject")).to_have_text("Hi again Ada")  # the unsaved editor, previewed
    page.click("#email-test-form button")
    expect(page.locator("#test-sent")).to_contain_text(mia.email)
    assert [m.subject for m in mail.outbox] == ["[TEST] Hello Ada"]  # the saved version
    shot(page, "email-template-editor")
    page.goto(page.live + "/")
    expect(page.locator("#email-performance h2")).to_have_text("E-mail performance")
    assert not page.external and not page.errors

"""A marketer builds a form on the pages, embeds its script snippet in a plain HTML page of
another site (its own http.server on loopback, so the origin is foreign and must be
allowed), a visitor submits it twice (progressive profiling asks other questions the second
time), and the lead appears with its UTM."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from capture.models import Form
from leads.models import Lead, Touchpoint, TouchpointType
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def foreign_site(tmp_path: Path):
    """A plain static site on another port: write `index.html`, get its origin."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _row(page, prefix: str, i: int, name: str, maps_to: str, en: str, fr: str, required: bool = False) -> None:
    page.fill(f"#id_{prefix}-{i}-name", name)
    page.select_option(f"#id_{prefix}-{i}-maps_to", maps_to)
    page.fill(f"#id_{prefix}-{i}-label_en", en)
    page.fill(f"#id_{prefix}-{i}-label_fr", fr)
    page.fill(f"#id_{prefix}-{i}-position", str((i + 1) * 10))
    if required:
        page.check(f"#id_{prefix}-{i}-required")


def test_a_form_embedded_on_another_site_captures_a_lead_with_progressive_profiling(
    page, browser, live_server, settings, foreign_site
):
    settings.LEADCRM_CAPTURE_MIN_FILL_SECONDS = 0  # the robot fills faster than any person
    site_dir, site_origin = foreign_site
    UserFactory(role=Role.MARKETING, username="mona")
    login(page, "mona", PASSWORD)

    page.click("nav.mainnav >> text=Forms")
    page.fill("#id_name", "Launch sign-up")
    page.click("text=Create form")
    expect(page.locator("h1")).to_have_text("Launch sign-up")
    page.fill("#id_allowed_origins", site_origin)
    page.fill("#id_thank_you", "Welcome aboard!")
    _row(page, "fields", 1, "first_name", "first_name", "First name", "Prénom", required=True)
    _row(page, "fields", 2, "company", "company", "Company", "Société")
    _row(page, "progressive", 0, "job_title", "job_title", "Job title", "Fonction")
    _row(page, "progressive", 1, "phone", "phone", "Phone", "Téléphone")
    page.click("#form-save")
    expect(page.locator(".msg.success")).to_contain_text("Form saved")
    form = Form.objects.get(name="Launch sign-up")
    assert [f["name"] for f in form.fields] == ["email", "first_name", "company"]
    assert form.allowed_origins == [site_origin]
    snippet = page.input_value("#embed-snippet")
    assert live_server.url in snippet
    shot(page, "capture-form-builder")

    (site_dir / "index.html").write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Partner</title></head>'
        f"<body><h1>Our launch</h1>{snippet}</body></html>"
    )
    visitor = browser.new_context(locale="en-US")
    try:
        site = visitor.new_page()
        site.set_default_timeout(15_000)
        errors: list[str] = []
        site.on("pageerror", lambda exc: errors.append(str(exc)))
        site.goto(f"{site_origin}/?utm_source=partner&utm_medium=referral&utm_campaign=launch")
        expect(site.locator(".leadcrm-form input[name=first_name]")).to_be_visible()
        expect(site.locator(".leadcrm-form input[name=job_title]")).to_have_count(0)
        site.fill(".leadcrm-form input[name=email]", "vera@visitor.example")
        site.fill(".leadcrm-form input[name=first_name]", "Vera")
        site.fill(".leadcrm-form input[name=company]", "Visitor Ltd")
        site.click(".leadcrm-form button[type=submit]")
        expect(site.locator(".leadcrm-thanks")).to_have_text("Welcome aboard!")

        site.goto(f"{site_origin}/")  # a second visit of the same browser
        expect(site.locator(".leadcrm-form input[name=job_title]")).to_be_visible()
        expect(site.locator(".leadcrm-form input[name=phone]")).to_be_visible()
        expect(site.locator(".leadcrm-form input[name=first_name]")).to_have_count(0)
        site.fill(".leadcrm-form input[name=email]", "vera@visitor.example")
        site.fill(".leadcrm-form input[name=job_title]", "Head of Growth")
        site.click(".leadcrm-form button[type=submit]")
        expect(site.locator(".leadcrm-thanks")).to_be_visible()
        shot(site, "capture-embedded-second-visit")
        assert not errors
    finally:
        visitor.close()

    lead = Lead.objects.get(email="vera@visitor.example")
    assert (lead.first_name, lead.company_name, lead.job_title) == ("Vera", "Visitor Ltd", "Head of Growth")
    assert (lead.utm_source, lead.utm_medium, lead.utm_campaign) == ("partner", "referral", "launch")
    assert Touchpoint.objects.filter(lead=lead, type=TouchpointType.FORM_SUBMIT).count() == 2

    page.goto(f"{page.live}/leads/{lead.pk}/")  # the marketer sees it, with its campaign
    expect(page.locator("body")).to_contain_text("vera@visitor.example")
    expect(page.locator("body")).to_contain_text("launch")
    assert not page.external and not page.errors

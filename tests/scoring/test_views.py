"""The marketing scoring page."""

from __future__ import annotations

import pytest

from scoring.models import FitRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, make_user):
    def login(role):
        user = make_user(role)
        client.force_login(user)
        return client

    return login


def test_login_required(client):
    resp = client.get("/scoring/")
    assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_marketing_only(logged_in):
    assert logged_in("sdr").get("/scoring/").status_code == 403


def test_page_shows_rules_backtest_and_edits(logged_in, active_ruleset, settings):
    settings.SECURE_SSL_REDIRECT = False
    c = logged_in("marketing")
    resp = c.get("/scoring/")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert "Mid-market" in body and "Demo request" in body and 'href="/scoring/"' in body
    assert c.get(f"/scoring/?ruleset={active_ruleset.pk}&backtest=1").status_code == 200
    resp = c.post(
        "/scoring/",
        {
            "action": "add_fit",
            "ruleset": active_ruleset.pk,
            "field": "city",
            "operator": "equals",
            "value": "Lyon",
            "points": "5",
        },
    )
    assert resp.status_code == 302
    assert FitRule.objects.filter(ruleset=active_ruleset, field="city", value="Lyon").exists()
    resp = c.post(
        "/scoring/",
        {
            "action": "add_fit",
            "ruleset": active_ruleset.pk,
            "field": "shoe",
            "operator": "equals",
            "value": "x",
            "points": "5",
        },
        follow=True,
    )
    assert "Unknown field" in resp.content.decode()


def test_bad_ids_are_messages_not_errors(logged_in, active_ruleset, settings):
    settings.SECURE_SSL_REDIRECT = False
    c = logged_in("admin")
    for data in (
        {"action": "activate", "ruleset": "abc"},
        {"action": "activate", "ruleset": "99999"},
        {"action": "delete_fit", "ruleset": active_ruleset.pk, "rule": "x"},
    ):
        resp = c.post("/scoring/", data, follow=True)
        assert resp.status_code == 200 and "Unknown rule set or rule." in resp.content.decode()

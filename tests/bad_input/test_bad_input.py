"""Bad input answers a clear 4xx with field errors, never a 500 and never a hang (issue 14).
Each test is one example of a class the kernel (leadcrm.inputs, parsers, middleware,
errorpages) handles for every app."""

from __future__ import annotations

import pytest
from django.test import Client

from leads.models import Lead
from tests.bad_input import assert_json_4xx, post_json

pytestmark = pytest.mark.django_db


# --- text PostgreSQL cannot store ---------------------------------------------------------


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff"])
def test_nul_or_lone_surrogate_in_a_lead_field_names_the_field(api, escape):
    r = post_json(api, "/api/v1/leads/", f'{{"email": "a@example.com", "first_name": "x{escape}y"}}')
    assert "first_name" in assert_json_4xx(r)
    assert not Lead.objects.exists()


@pytest.mark.parametrize("body", ['{{"k{e}": 1}}', '{{"k": "v{e}"}}'])
@pytest.mark.parametrize("e", ["\\u0000", "\\ud83d"])
def test_nul_or_surrogate_in_a_property_key_or_value(api, body, e):
    r = post_json(api, "/api/v1/leads/", f'{{"email": "a@example.com", "properties": {body.format(e=e)}}}')
    assert "properties" in assert_json_4xx(r)


def test_a_surrogate_pair_is_text_and_is_stored(api):
    r = post_json(api, "/api/v1/leads/", '{"email": "a@example.com", "first_name": "\\ud83d\\ude00"}')
    assert r.status_code == 201
    assert Lead.objects.get().first_name == "\U0001f600"


def test_nul_in_a_bulk_row_and_an_event(api):
    r = post_json(api, "/api/v1/leads/bulk/", '{"leads": [{"email": "a@example.com", "city": "\\u0000"}]}')
    assert assert_json_4xx(r)["leads"][0].startswith("leads[0].city: ")
    r = post_json(api, "/api/v1/events/", '{"type": "page_view", "visitor_id": "v\\u0000"}')
    assert "visitor_id" in assert_json_4xx(r)


def test_nul_in_a_query_string_a_form_and_a_path(api, make_user):
    assert "q" in assert_json_4xx(api.get("/api/v1/leads/", {"q": "a\x00b"}))
    assert "source" in assert_json_4xx(api.get("/api/v1/leads/?source=%00"))
    assert_json_4xx(api.get("/api/v1/scoring/rules/fit%00/1/"))
    browser = Client()
    browser.force_login(make_user("admin"))
    r = browser.get("/leads/", {"q": "\x00"})
    assert r.status_code == 400 and b"<html" in r.content.lower()
    r = browser.post("/scoring/", {"action": "fit", "name": "a\x00"})
    assert r.status_code == 400


# --- JSON the parser must refuse ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "[" * 5000 + "]" * 5000,
        '{"email": "a@example.com", "company_size": 1e400}',
        '{"email": "a@example.com", "properties": {"x": NaN}}',
        '{"email": "a@example.com", "properties": {"x": -Infinity}}',
        '{"email": "a@example.com", "company_size": 1' + "0" * 5000 + "}",
        '{"email": "a@example.com"',
        '{"leads": ' + "{" * 3000,
    ],
    ids=["deep", "1e400", "nan", "infinity", "5000-digit-int", "truncated", "deep-unclosed"],
)
@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/leads/bulk/", "/api/v1/events/"])
def test_json_the_parser_refuses(api, body, url):
    assert "detail" in assert_json_4xx(post_json(api, url, body))


def test_invalid_utf8_body(api):
    r = api.generic("POST", "/api/v1/leads/", b'{"email": "\xff\xfe"}', content_type="application/json")
    assert_json_4xx(r)


# --- errors are JSON under /api/, a page elsewhere ------------------------------------------


def test_unknown_api_path_is_json_404(api):
    assert_json_4xx(api.get("/api/v1/nothing-here/"), 404)
    assert_json_4xx(Client().get("/api/v9/"), 404)


def test_wrong_method_is_json_405(api):
    assert_json_4xx(api.put("/api/v1/events/", {}, format="json"), 405)


def test_disallowed_host_is_json_400_under_api():
    assert_json_4xx(Client(HTTP_HOST="evil.example").get("/api/v1/leads/"), 400)
    r = Client(HTTP_HOST="evil.example").get("/leads/")
    assert r.status_code == 400 and b"<html" in r.content.lower()


def test_a_crash_under_api_answers_json_500(api, monkeypatch):
    from leads import selectors

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "funnel_counts", boom)
    api.raise_request_exception = False
    r = api.get("/api/v1/metrics/funnel/")
    assert r.status_code == 500 and r.json()["detail"]


def test_a_page_404_is_styled(browser):
    r = browser.get("/no-such-page/")
    assert r.status_code == 404 and b"LeadCRM" in r.content

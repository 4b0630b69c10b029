"""Capture pages: marketing's form list, builder and review; the public hosted form that
works without JavaScript, its no-JavaScript post, the embed script and snippets."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from capture.models import Form, Submission, SubmissionStatus
from leads.models import Lead, Touchpoint, TouchpointType
from tests.factories import CaptureFormFactory

pytestmark = pytest.mark.django_db


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _rows(prefix: str, rows: list[dict], extra: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows) + extra), f"{prefix}-INITIAL_FORMS": "0"}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def test_a_marketer_builds_a_form_on_the_pages(people):
    client = _logged_in(people.marketing)
    assert b'href="/forms/"' in client.get("/").content  # in the main navigation
    created = client.post("/forms/", {"name": "Demo request"})
    form = Form.objects.get(name="Demo request")
    assert created.status_code == 302 and created["Location"] == f"/forms/{form.pk}/"
    page = client.get(f"/forms/{form.pk}/").content.decode()
    assert form.site_key in page and "embed.js" in page and "/submit/" in page
    saved = client.post(
        f"/forms/{form.pk}/",
        {
            "name": "Demo request",
            "allowed_origins": "https://www.example.com\nhttp://127.0.0.1:9000",
            "consent_text": "Yes, e-mail me.",
            "double_opt_in": "on",
            "redirect_url": "",
            "thank_you": "We'll call you.",
            **_rows(
                "fields",
                [
                    {
                        "position": "20",
                        "name": "email",
                        "maps_to": "email",
                        "label_en": "E-mail",
                        "label_fr": "Courriel",
                    },
                    {
                        "position": "10",
                        "name": "first_name",
                        "maps_to": "first_name",
                        "required": "on",
                        "label_en": "First name",
                        "label_fr": "Prénom",
                    },
                    {
                        "position": "30",
                        "name": "seats",
                        "maps_to": "properties",
                        "property_key": "seats",
                        "label_en": "Seats",
                    },
                    {"position": "40", "name": "city", "maps_to": "city", "delete": "on"},
                ],
                extra=1,
            ),
            **_rows("progressive", [{"position": "1", "name": "job_title", "maps_to": "job_title"}]),
        },
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    form.refresh_from_db()
    assert [f["name"] for f in form.fields] == ["first_name", "email", "seats"]  # reordered, one removed
    assert form.fields[0]["label"] == {"en": "First name", "fr": "Prénom"}
    assert form.fields[2]["maps_to"] == "properties.seats"
    assert form.progressive[0]["maps_to"] == "job_title"
    assert form.allowed_origins == ["https://www.example.com", "http://127.0.0.1:9000"]
    assert form.double_opt_in and form.thank_you == "We'll call you."

    refused = client.post(
        f"/forms/{form.pk}/",
        {"name": "Demo request", "allowed_origins": "not an origin", **_rows("fields", []), **_rows("progressive", [])},
    )
    assert refused.status_code == 400
    form.refresh_from_db()
    assert form.allowed_origins == ["https://www.example.com", "http://127.0.0.1:9000"]


def test_forms_pages_are_marketings(people):
    form = CaptureFormFactory()
    for user in (people.sdr_a, people.manager_a):
        client = _logged_in(user)
        for url in ("/forms/", f"/forms/{form.pk}/", "/forms/submissions/"):
            assert client.get(url).status_code == 403
    assert Client().get("/forms/").status_code == 302  # to the login page


def test_the_hosted_form_works_without_javascript(settings, django_capture_on_commit_callbacks):
    settings.LEADCRM_CAPTURE_MIN_FILL_SECONDS = 0
    form = CaptureFormFactory(redirect_url="")
    client = Client()
    page = client.get(f"/f/{form.site_key}/?utm_source=flyer&utm_campaign=fair", HTTP_REFERER="https://ref.example/")
    text = page.content.decode()
    assert page.status_code == 200 and "<script" not in text and "style=" not in text
    token = re.search(r'name="_token" value="([^"]+)"', text).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', text))
    assert hidden["utm_campaign"] == "fair" and hidden["_referrer"] == "https://ref.example/"
    with django_capture_on_commit_callbacks(execute=True):
        posted = client.post(
            f"/f/{form.site_key}/submit/",
            {**hidden, "_token": token, "email": "nojs@example.com", "first_name": "No", "_consent": "on"},
        )
    assert posted.status_code == 302 and posted["Location"] == f"/f/{form.site_key}/thanks/"
    assert "Thanks!" in client.get(posted["Location"]).content.decode()
    lead = Lead.objects.get(email="nojs@example.com")
    assert (lead.utm_source, lead.utm_campaign) == ("flyer", "fair")
    touch = Touchpoint.objects.get(lead=lead, type=TouchpointType.FORM_SUBMIT)
    assert touch.properties["referrer"] == "https://ref.example/"
    assert touch.properties["first_touch"]["utm_campaign"] == "fair"

    # The next visit of this browser (its cookie) gets the next questions.
    again = client.get(f"/f/{form.site_key}/").content.decode()
    assert 'name="job_title"' in again and 'name="first_name"' not in again

    # A wrong answer shows the form again with the error; nothing kept.
    bad = client.post(f"/f/{form.site_key}/submit/", {"_token": token, "email": "nope", "first_name": "X"})
    assert bad.status_code == 400 and "valid email" in bad.content.decode()
    assert Submission.objects.count() == 1


def test_the_plain_post_checks_origin_and_throttle(settings):
    settings.LEADCRM_CAPTURE_RATE_IP = "2/minute"
    form = CaptureFormFactory()
    client = Client()
    evil = client.post(f"/f/{form.site_key}/submit/", {"email": "e@example.com"}, HTTP_ORIGIN="https://evil.example")
    assert evil.status_code == 403
    answers = [
        client.post(
            f"/f/{form.site_key}/submit/",
            {"email": f"t{i}@example.com", "first_name": "T"},
            HTTP_ORIGIN="https://www.example.com",
        ).status_code
        for i in range(3)
    ]
    assert answers == [302, 302, 429]
    # Without a render token (a bot posting directly): kept aside.
    assert set(Submission.objects.values_list("status", flat=True)) == {SubmissionStatus.HELD}
    assert client.get("/f/no-such-key/").status_code == 404


def test_the_embed_script_and_the_html_snippet(people):
    form = CaptureFormFactory()
    script = Client().get(f"/f/{form.site_key}/embed.js")
    body = script.content.decode()
    assert script["Content-Type"].startswith("application/javascript")
    assert f'"site_key": "{form.site_key}"' in body and "__CONFIG__" not in body
    page = html.unescape(_logged_in(people.marketing).get(f"/forms/{form.pk}/").content.decode())
    assert f'data-leadcrm-form="{form.site_key}"' in page
    assert f"/f/{form.site_key}/submit/" in page and "homepage" in page


def test_held_submissions_are_released_or_discarded_on_the_review_page(
    people, settings, django_capture_on_commit_callbacks
):
    form = CaptureFormFactory()
    client = Client()
    for email in ("r1@example.com", "r2@example.com"):
        client.post(f"/f/{form.site_key}/submit/", {"email": email, "first_name": "R"})  # no token: held
    one, two = Submission.objects.order_by("pk")
    marketer = _logged_in(people.marketing)
    page = marketer.get("/forms/submissions/").content.decode()
    assert "r1@example.com" in page and "no_render_token" in page
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post("/forms/submissions/", {"ids": [str(one.pk)], "action": "release"})
    marketer.post("/forms/submissions/", {"ids": [str(two.pk), "junk"], "action": "discard"})
    assert list(Lead.objects.values_list("email", flat=True)) == ["r1@example.com"]
    two.refresh_from_db()
    assert two.status == SubmissionStatus.DISCARDED

"""The public capture (`POST /api/v1/capture/`): a submission is kept first and becomes a
lead after commit, once; bots are set aside; origins, keys and throttles are enforced; the
broker being down delays the lead, never loses the submission; progressive profiling asks
new questions on a known visitor's next visit."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from capture import tasks, tokens
from capture.models import Submission, SubmissionStatus
from leadcrm import outbox
from leadcrm.models import AuditEntry, OutboxMessage
from leads.models import ConsentStatus, Lead, Touchpoint, TouchpointType, Visitor
from nurturing.models import Message
from tests.factories import CaptureFormFactory

pytestmark = pytest.mark.django_db

ORIGIN = "https://www.example.com"


@pytest.fixture
def form():
    return CaptureFormFactory()


@pytest.fixture
def quick(settings):
    """No minimum fill time (the tests submit at once); the too-fast test sets its own."""
    settings.LEADCRM_CAPTURE_MIN_FILL_SECONDS = 0
    return settings


def shown(client: APIClient, form, visitor_id: str = "", **params: str) -> dict:
    """The form as the embed script gets it (questions and render token) for this visitor."""
    query = {"visitor_id": visitor_id, **params} if visitor_id else params
    response = client.get(f"/f/{form.site_key}/form.json", query, HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    return response.json()


def submit(client: APIClient, form, fields: dict, *, token: str | None = None, origin: str | None = ORIGIN, **extra):
    body = {"site_key": form.site_key, "fields": fields, **extra}
    if token is None:
        token = shown(client, form)["token"]
    if token:
        body["token"] = token
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.post("/api/v1/capture/", body, format="json", **headers)


def test_a_submission_becomes_a_lead_with_its_form_submit_touchpoint(quick, form, django_capture_on_commit_callbacks):
    client = APIClient()
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client,
            form,
            {"email": "Ada@Example.com", "first_name": "Ada", "company": "Analytical Engines"},
            consent=True,
            visitor_id="vis-1",
            utm_source="newsletter",
            utm_campaign="spring",
            referrer="https://news.example.org/",
            page_url="https://www.example.com/pricing?utm_campaign=spring",
            first_touch={"utm_source": "google", "page_url": "https://www.example.com/", "at": "2026-01-01T00:00:00Z"},
        )
    assert response.status_code == 202, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    submission = Submission.objects.get(pk=response.json()["id"])
    lead = Lead.objects.get(email="ada@example.com")
    assert submission.status == SubmissionStatus.PROCESSED and submission.lead == lead
    assert (lead.first_name, lead.company_name, lead.utm_source, lead.utm_campaign) == (
        "Ada",
        "Analytical Engines",
        "newsletter",
        "spring",
    )
    assert lead.consent_status == ConsentStatus.OPT_IN and lead.consent_source == f"form:{form.name}"
    [touch] = Touchpoint.objects.filter(lead=lead, type=TouchpointType.FORM_SUBMIT)
    assert touch.url == "https://www.example.com/pricing?utm_campaign=spring"
    assert (touch.utm_source, touch.utm_campaign) == ("newsletter", "spring")
    assert touch.properties["referrer"] == "https://news.example.org/"
    assert touch.properties["first_touch"]["utm_source"] == "google"
    assert touch.properties["last_touch"]["utm_campaign"] == "spring"
    assert Visitor.objects.get(key="vis-1").lead == lead  # the visitor is now known


def test_double_opt_in_leaves_consent_pending_and_asks_for_the_confirmation(quick, django_capture_on_commit_callbacks):
    form = CaptureFormFactory(double_opt_in=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(APIClient(), form, {"email": "doi@example.com", "first_name": "D"}, consent=True)
    assert response.status_code == 202
    lead = Lead.objects.get(email="doi@example.com")
    assert lead.consent_status == ConsentStatus.PENDING
    assert OutboxMessage.objects.filter(task="nurturing.tasks.consent_confirmation_request").exists()
    assert Message.objects.filter(lead=lead).count() == 1  # the confirmation e-mail (nurturing's)


def test_without_consent_ticked_no_consent_is_recorded(quick, form, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert submit(APIClient(), form, {"email": "no@example.com", "first_name": "N"}).status_code == 202
    assert Lead.objects.get(email="no@example.com").consent_status != ConsentStatus.OPT_IN


def test_a_bad_key_or_a_disallowed_origin_is_refused(quick, form):
    client = APIClient()
    fields = {"email": "x@example.com", "first_name": "X"}
    bad_key = client.post("/api/v1/capture/", {"site_key": "nope", "fields": fields}, format="json", HTTP_ORIGIN=ORIGIN)
    assert bad_key.status_code == 403
    evil = submit(client, form, fields, origin="https://evil.example")
    assert evil.status_code == 403 and "Access-Control-Allow-Origin" not in evil
    assert not Submission.objects.exists() and not Lead.objects.exists()
    # No Origin at all (a server-side integration): the site key decides.
    assert submit(client, form, fields, origin=None).status_code == 202


def test_the_preflight_is_answered_for_allowed_origins_only(form):
    client = APIClient()
    ok = client.options("/api/v1/capture/", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert ok["Access-Control-Allow-Origin"] == ORIGIN and "POST" in ok["Access-Control-Allow-Methods"]
    refused = client.options(
        "/api/v1/capture/", HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "Access-Control-Allow-Origin" not in refused
    definition = client.get(f"/f/{form.site_key}/form.json", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in definition


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("honeypot", "honeypot"),
        ("too_fast", "too_fast"),
        ("no_token", "no_render_token"),
        ("forged", "no_render_token"),
    ],
)
def test_bot_like_submissions_are_held_not_turned_into_leads(
    settings, form, case, reason, django_capture_on_commit_callbacks
):
    settings.LEADCRM_CAPTURE_MIN_FILL_SECONDS = 0 if case != "too_fast" else 3
    fields = {"email": "bot@example.com", "first_name": "B"}
    token = None
    if case == "honeypot":
        fields["homepage"] = "http://spam.example"
    elif case == "no_token":
        token = ""
    elif case == "forged":
        token = tokens.render_token(form_id=form.pk + 1, asked=["email"])  # another form's
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(APIClient(), form, fields, token=token)
    assert response.status_code == 202  # a bot learns nothing
    submission = Submission.objects.get()
    assert (submission.status, submission.reason) == (SubmissionStatus.HELD, reason)
    assert not Lead.objects.exists()
    assert not OutboxMessage.objects.filter(task="capture.tasks.submissions_process").exists()


def test_marketing_releases_or_discards_held_submissions(
    quick, form, people, auth_client, django_capture_on_commit_callbacks
):
    client = APIClient()
    for email in ("one@example.com", "two@example.com"):
        submit(client, form, {"email": email, "first_name": "H", "homepage": "x"})
    one, two = Submission.objects.order_by("pk")
    marketing = auth_client(people.marketing)
    listed = marketing.get("/api/v1/form-submissions/", {"status": "held"})
    assert {r["id"] for r in listed.json()["results"]} == {one.pk, two.pk}
    assert auth_client(people.sdr_a).get("/api/v1/form-submissions/").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        released = marketing.post(f"/api/v1/form-submissions/{one.pk}/review/", {"action": "release"}, format="json")
    assert released.status_code == 200
    discarded = marketing.post(f"/api/v1/form-submissions/{two.pk}/review/", {"action": "discard"}, format="json")
    assert discarded.json()["status"] == SubmissionStatus.DISCARDED
    assert list(Lead.objects.values_list("email", flat=True)) == ["one@example.com"]
    one.refresh_from_db()
    assert one.status == SubmissionStatus.PROCESSED
    assert AuditEntry.objects.filter(action="capture.submission.release", target_id=str(one.pk)).exists()
    bad = marketing.post(f"/api/v1/form-submissions/{two.pk}/review/", {"action": "nuke"}, format="json")
    assert bad.status_code == 400 and "action" in bad.json()


def test_answers_are_checked_as_the_leads_api_checks_them(quick, form):
    client = APIClient()
    bad_email = submit(client, form, {"email": "not-an-email", "first_name": "X"})
    assert bad_email.status_code == 400 and "email" in bad_email.json()
    missing = submit(client, form, {"email": "x@example.com"})
    assert missing.status_code == 400 and missing.json()["first_name"] == ["This field is required."]
    not_object = submit(client, form, ["email"])
    assert not_object.status_code == 400 and "fields" in not_object.json()
    nested = submit(client, form, {"email": "x@example.com", "first_name": {"a": 1}})
    assert nested.status_code == 400 and "first_name" in nested.json()
    long_utm = submit(client, form, {"email": "x@example.com", "first_name": "X"}, utm_source="u" * 201)
    assert long_utm.status_code == 400 and "utm_source" in long_utm.json()
    assert not Submission.objects.exists()


def test_throttled_per_ip_and_per_site_key(quick, form):
    quick.LEADCRM_CAPTURE_RATE_IP = "3/minute"
    quick.LEADCRM_CAPTURE_RATE_SITE_KEY = "1000/minute"
    client = APIClient()
    token = shown(client, form)["token"]
    answers = [
        submit(client, form, {"email": f"ip{i}@example.com", "first_name": "I"}, token=token).status_code
        for i in range(4)
    ]
    assert answers == [202, 202, 202, 429]

    quick.LEADCRM_CAPTURE_RATE_IP = "1000/minute"
    quick.LEADCRM_CAPTURE_RATE_SITE_KEY = "2/minute"
    other = CaptureFormFactory()
    answers = [
        APIClient()
        .post(
            "/api/v1/capture/",
            {"site_key": other.site_key, "fields": {"email": f"k{i}@example.com", "first_name": "K"}, "token": token},
            format="json",
            REMOTE_ADDR=f"10.0.0.{i + 1}",
        )
        .status_code
        for i in range(3)
    ]
    assert answers == [202, 202, 429]

    quick.LEADCRM_CAPTURE_THROTTLE = False
    assert submit(client, form, {"email": "free@example.com", "first_name": "F"}, token=token).status_code == 202


class _DownBroker:
    def __init__(self, real):
        self.real, self.up = real, False

    def __call__(self, task, kwargs, ids):
        if not self.up:
            raise ConnectionRefusedError("broker down")
        self.real(task, kwargs, ids)


def test_submissions_while_the_broker_is_down_are_kept_and_become_leads_after(
    quick, form, monkeypatch, django_capture_on_commit_callbacks
):
    broker = _DownBroker(outbox._publish)
    monkeypatch.setattr(outbox, "_publish", broker)
    client = APIClient()
    token = shown(client, form)["token"]
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = submit(client, form, {"email": f"down{i}@example.com", "first_name": "D"}, token=token)
        assert response.status_code == 202
    assert Submission.objects.filter(status=SubmissionStatus.ACCEPTED).count() == 3
    assert not Lead.objects.exists()
    owed = OutboxMessage.objects.filter(task="capture.tasks.submissions_process", sent_at__isnull=True)
    assert owed.count() == 3 and all("broker down" in m.last_error for m in owed)

    broker.up = True
    OutboxMessage.objects.update(available_at=timezone.now() - dt.timedelta(seconds=1))
    assert outbox.relay().failed == 0
    assert Lead.objects.filter(email__startswith="down").count() == 3
    assert Submission.objects.filter(status=SubmissionStatus.PROCESSED).count() == 3


def test_a_redelivered_processing_task_makes_one_lead_and_one_touchpoint(quick, form, monkeypatch):
    sent: list = []
    monkeypatch.setattr(outbox, "_publish", lambda task, kwargs, ids: sent.append(kwargs))
    response = submit(APIClient(), form, {"email": "twice@example.com", "first_name": "T"})
    submission_id = response.json()["id"]
    tasks.submissions_process.run(submission_ids=[submission_id])
    tasks.submissions_process.run(submission_ids=[submission_id])  # the broker delivers it again
    lead = Lead.objects.get(email="twice@example.com")
    assert Touchpoint.objects.filter(lead=lead, type=TouchpointType.FORM_SUBMIT).count() == 1
    assert AuditEntry.objects.filter(action="lead.create", target_id=str(lead.pk)).count() == 1


def test_a_known_visitor_is_asked_new_questions_on_the_next_visit(quick, form, django_capture_on_commit_callbacks):
    client = APIClient()
    first = shown(client, form, "vis-42")
    assert [f["name"] for f in first["fields"]] == ["email", "first_name", "company"]
    with django_capture_on_commit_callbacks(execute=True):
        submit(
            client,
            form,
            {"email": "grace@example.com", "first_name": "Grace", "company": "Navy"},
            token=first["token"],
            visitor_id="vis-42",
        )
    second = shown(client, form, "vis-42")
    assert [f["name"] for f in second["fields"]] == ["email", "job_title", "phone"]
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client,
            form,
            {"email": "grace@example.com", "job_title": "Rear Admiral", "phone": "+33 1 23 45 67 89"},
            token=second["token"],
            visitor_id="vis-42",
        )
    assert response.status_code == 202  # first_name, required on the form, was not asked this time
    lead = Lead.objects.get(email="grace@example.com")
    assert (lead.first_name, lead.job_title) == ("Grace", "Rear Admiral")
    third = shown(client, form, "vis-42")
    assert [f["name"] for f in third["fields"]] == ["email", "team_size", "company"]  # queue spent: asked again
    # A stranger still gets the form's own questions; a signed e-mail link is recognised.
    assert [f["name"] for f in shown(client, form, "someone-else")["fields"]] == ["email", "first_name", "company"]
    by_link = shown(client, form, lt=tokens.link_token(lead_id=lead.pk))
    assert [f["name"] for f in by_link["fields"]] == ["email", "team_size", "company"]
    assert [f["name"] for f in shown(client, form, lt="forged")["fields"]][1] == "first_name"


def test_a_required_question_not_shown_is_not_required(quick, form):
    """The render token says what was asked; without one the form's own questions apply."""
    client = APIClient()
    token = tokens.render_token(form_id=form.pk, asked=["email", "job_title", "phone"])
    assert submit(client, form, {"email": "p@example.com"}, token=token).status_code == 202
    assert submit(client, form, {"email": "p@example.com"}, token="").status_code == 400


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(["email", "first_name", "company", "job_title", "phone", "team_size", "homepage", "x"])


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=JSON | st.dictionaries(FIELD_NAMES, JSON, max_size=6),
    extra=st.dictionaries(
        st.sampled_from(["consent", "visitor_id", "utm_source", "referrer", "page_url", "token", "first_touch"]),
        JSON,
        max_size=4,
    ),
)
def test_arbitrary_payloads_never_answer_500(quick, form, fields, extra):
    quick.LEADCRM_CAPTURE_THROTTLE = False
    body = {"site_key": form.site_key, "fields": fields, **extra}
    response = APIClient().post("/api/v1/capture/", body, format="json", HTTP_ORIGIN=ORIGIN)
    assert response.status_code in (202, 400), (response.status_code, response.content[:300])

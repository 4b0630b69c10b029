"""Marketing's e-mail pages: the template list and editor (sender, topic), the live preview
on a chosen lead and the test send (htmx); the messages on the lead's timeline and in its
history API (no N+1); the dashboard's e-mail performance panel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from leadcrm.actors import Actor
from leads import selectors as lead_selectors
from leads.models import ConsentStatus
from nurturing import services
from nurturing.models import EmailTemplate, Message, MessageStatus
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(make_user):
    return make_user("marketing")


def _page_client(client, user):
    client.force_login(user)
    return client


def test_marketing_creates_and_edits_a_template_from_the_pages(client, marketing):
    actor = Actor(marketing)
    sender = services.sender_identity_create(actor=actor, name="Ada", from_email="ada@corp.example")
    topic = services.topic_create(actor=actor, key="news", name="News")
    c = _page_client(client, marketing)
    page = c.get("/nurturing/email-templates/")
    assert page.status_code == 200 and b"email-template-new" in page.content and b"ada@corp.example" in page.content
    created = c.post(
        "/nurturing/email-templates/",
        {"name": "Welcome", "kind": "marketing", "subject": "Hi {{ lead.first_name }}", "text": "Hello", "html": ""},
    )
    template = EmailTemplate.objects.get(name="Welcome")
    assert created.status_code == 302 and created["Location"] == f"/nurturing/email-templates/{template.pk}/"
    bad = c.post(
        "/nurturing/email-templates/", {"name": "Bad", "kind": "marketing", "subject": "x", "text": "{% load x %}"}
    )
    assert (
        bad.status_code == 200
        and "not allowed" in bad.content.decode()
        and not EmailTemplate.objects.filter(name="Bad").exists()
    )
    editor = c.get(f"/nurturing/email-templates/{template.pk}/")
    assert (
        editor.status_code == 200 and b"email-preview-form" in editor.content and b"lead.first_name" in editor.content
    )
    saved = c.post(
        f"/nurturing/email-templates/{template.pk}/",
        {
            "name": "Welcome",
            "kind": "marketing",
            "subject": "Hi {{ lead.first_name }}",
            "text": "Hello again",
            "html": "<p>Hi</p>",
            "sender": str(sender.pk),
            "topic": str(topic.pk),
        },
    )
    assert saved.status_code == 302
    template.refresh_from_db()
    assert (template.text, template.sender_id, template.topic_id) == ("Hello again", sender.pk, topic.pk)


def test_the_preview_renders_the_unsaved_form_for_a_visible_lead(client, marketing, make_user):
    template = services.email_template_create(actor=Actor(marketing), name="P", subject="Hi", text="x")
    lead = LeadFactory(first_name="Zoé", email="zoe@client.example")
    c = _page_client(client, marketing)
    url = f"/nurturing/email-templates/{template.pk}/preview/"
    shown = c.post(
        url,
        {
            "lead": "ZOE@client.example",
            "subject": "For {{ lead.first_name }}",
            "text": "Dear {{ lead.first_name }}",
            "html": '<p onclick="x()">Hi {{ lead.first_name }}</p><script>alert(1)</script>',
        },
        HTTP_HX_REQUEST="true",
    )
    html = shown.content.decode()
    assert shown.status_code == 200 and "For Zoé" in html and "Dear Zoé" in html
    assert "<script>" not in html and "sandbox" in html  # the HTML part stays inside a sandboxed frame
    assert "not allowed" in c.post(url, {"lead": str(lead.pk), "text": "{% load x %}"}).content.decode()
    assert "Choose a lead" in c.post(url, {"lead": "10000000"}).content.decode()
    sdr = make_user("sdr", team="A")
    assert _page_client(client, sdr).post(url, {"lead": str(lead.pk)}).status_code == 403


def test_the_test_send_goes_to_the_caller(client, marketing):
    template = services.email_template_create(
        actor=Actor(marketing), name="T", subject="For {{ lead.first_name }}", text="Hi"
    )
    lead = LeadFactory(first_name="Ada")
    c = _page_client(client, marketing)
    answer = c.post(f"/nurturing/email-templates/{template.pk}/test/", {"lead": str(lead.pk)})
    assert answer.status_code == 200 and b"test-sent" in answer.content
    (sent,) = mail.outbox
    assert sent.to == [marketing.email] and sent.subject == "[TEST] For Ada"
    assert not Message.objects.exists()


def test_the_lead_timeline_and_history_show_its_messages_without_n_plus_one(client, marketing):
    actor = Actor(marketing)
    template = services.email_template_create(actor=actor, name="Seq", subject="Step {{ lead.first_name }}", text="x")
    lead = LeadFactory(first_name="Ada", consent_status=ConsentStatus.OPT_IN)
    (outcome,) = services.messages_queue(actor=actor, requests=[services.MessageRequest(lead.pk, template.pk, "s1")])
    services.messages_send(message_ids=[outcome.message_id])

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            lead_selectors.lead_history(lead=lead)
        return len(ctx.captured_queries)

    few = queries()
    for n in range(5):
        Message.objects.create(
            lead=lead, template=template, kind="marketing", idempotency_key=f"x{n}", queued_at=timezone.now()
        )
    assert queries() == few
    items = [i for i in lead_selectors.lead_history(lead=lead) if i["kind"] == "message"]
    assert len(items) == 6 and {i["status"] for i in items} == {"sent", "queued"}
    c = _page_client(client, marketing)
    history = c.get(f"/api/v1/leads/{lead.pk}/history/").json()
    sent = [i for i in history if i["kind"] == "message" and i["status"] == "sent"]
    assert sent[0]["subject"] == "Step Ada" and sent[0]["message"] == outcome.message_id
    page = c.get(f"/leads/{lead.pk}/").content.decode()
    assert 'data-kind="message"' in page and "Step Ada" in page


def test_the_dashboard_panel_shows_the_rates_of_the_period(client, marketing, make_user):
    actor = Actor(marketing)
    template = services.email_template_create(actor=actor, name="D", subject="Hi", text="x")
    now = timezone.now()
    leads = [LeadFactory(consent_status=ConsentStatus.OPT_IN) for _ in range(4)]
    for n, lead in enumerate(leads):
        Message.objects.create(
            lead=lead,
            template=template,
            kind="marketing",
            idempotency_key=f"d{n}",
            queued_at=now,
            sent_at=now,
            status=MessageStatus.SENT,
            opened_at=now if n < 3 else None,
            clicked_at=now if n < 1 else None,
            bounced_at=now if n == 3 else None,
        )
    Message.objects.create(  # before the period
        lead=leads[0],
        template=template,
        kind="marketing",
        idempotency_key="old",
        queued_at=now - dt.timedelta(days=90),
        sent_at=now - dt.timedelta(days=90),
    )
    c = _page_client(client, marketing)
    dashboard = c.get("/").content.decode()
    assert "/nurturing/email-performance/?start=" in dashboard
    today = timezone.localdate()
    panel = c.get(f"/nurturing/email-performance/?start={today - dt.timedelta(days=7)}&end={today}").content.decode()
    assert 'data-kpi="email-sent">4<' in panel
    assert 'data-kpi="email-delivery">75.0 %' in panel and 'data-kpi="email-open">100.0 %' in panel
    assert 'data-kpi="email-bounce">25.0 %' in panel
    empty = c.get("/nurturing/email-performance/?start=2000-01-01&end=2000-01-31").content.decode()
    assert "No e-mail sent in this period." in empty
    assert c.get("/nurturing/email-performance/?start=9999-99-99&end=x").status_code == 200
    sdr = make_user("sdr", team="A")  # sees none of these leads
    mine = _page_client(client, sdr).get("/nurturing/email-performance/").content.decode()
    assert "No e-mail sent in this period." in mine


def test_the_pages_are_in_french(client, marketing):
    c = _page_client(client, marketing)
    c.cookies.load({"django_language": "fr"})
    page = c.get("/nurturing/email-templates/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Modèles d’e-mails" in page or "Modèles d'e-mails" in page


def test_marketing_adds_senders_and_topics_from_the_templates_page(client, marketing):
    from nurturing.models import SenderIdentity, Topic

    page = _page_client(client, marketing)
    sender = {"name": "Sales team", "from_email": "Sales@Nordlys.example", "reply_to": "", "is_default": "on"}
    response = page.post(reverse("sender-identity-add"), sender, follow=True)
    assert response.status_code == 200 and "Sender identity added." in response.content.decode()
    assert (
        SenderIdentity.objects.get().from_email == "sales@nordlys.example" and SenderIdentity.objects.get().is_default
    )
    page.post(reverse("topic-add"), {"key": "newsletter", "name": "Newsletter", "name_fr": "Lettre"})
    assert Topic.objects.get().name_fr == "Lettre"
    again = page.post(reverse("topic-add"), {"key": "newsletter", "name": "Other"}, follow=True)
    assert "Another topic has this key." in again.content.decode() and Topic.objects.count() == 1
    bad = page.post(reverse("sender-identity-add"), {"name": "x", "from_email": "not an address"}, follow=True)
    assert bad.status_code == 200 and SenderIdentity.objects.count() == 1
    html = page.get(reverse("email-templates")).content.decode()
    assert "Sales team" in html and "newsletter" in html

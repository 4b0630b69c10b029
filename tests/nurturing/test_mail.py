"""E-mail: a real SMTP server on loopback receives what a lead gets (RFC 8058 headers, both
parts, merge fields, working links), consent and suppression at send time, sending once,
retries, tampered tokens; a property over random orders of consent events and sends."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
import uuid

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads.models import ConsentStatus, Lead, Touchpoint
from nurturing import mail_render, services
from nurturing.models import Message, MessageStatus, Suppression, SuppressionReason
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

HTML = '<p>Hello {{ lead.first_name|default:"there" }} from {{ company.name|default:"your team" }}</p><a href="https://example.org/guide?a=1&amp;b=2">Guide</a>'
TEXT = 'Hello {{ lead.first_name|default:"there" }}, read https://example.org/guide'


@pytest.fixture
def marketer(make_user):
    return Actor(make_user("marketing"))


@pytest.fixture
def template(marketer):
    return services.email_template_create(
        actor=marketer, name="Welcome", subject="Hi {{ lead.first_name|default:'you' }}", html=HTML, text=TEXT
    )


def _queue(marketer, lead, template, key="k1"):
    (outcome,) = services.messages_queue(actor=marketer, requests=[services.MessageRequest(lead.pk, template.pk, key)])
    return outcome


class _Sink:
    def __init__(self):
        self.received: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content)
        return "250 OK"


@pytest.fixture
def smtp_sink():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            LEADCRM_BASE_URL="https://crm.example",
        ):
            yield sink
    finally:
        controller.stop()


def test_a_marketing_email_through_real_smtp_and_its_one_click_unsubscribe(marketer, template, smtp_sink):
    lead = LeadFactory(first_name="", consent_status=ConsentStatus.OPT_IN, company=None)
    outcome = _queue(marketer, lead, template)
    assert services.messages_send(message_ids=[outcome.message_id])["sent"] == 1
    (raw,) = smtp_sink.received
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    unsubscribe = re.search(rb"List-Unsubscribe:\s*<(https://crm\.example/u/[^>\s]+/)>,\s*<mailto:[^>\s]+>\r?\n", raw)
    assert unsubscribe, "folded, if at all, between the two addresses: never inside one"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Subject"] == "Hi you"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "Hello there" in text and "Unsubscribe: https://crm.example/u/" in text
    assert "Hello there from your team" in html and "1 rue de" in html
    click = re.search(r'href="https://crm\.example(/t/c/[^"]+)"', html).group(1)
    pixel = re.search(r'src="https://crm\.example(/t/o/[^"]+)"', html).group(1)
    client = Client(enforce_csrf_checks=True)
    followed = client.get(click)
    assert followed.status_code == 302 and followed["Location"] == "https://example.org/guide?a=1&b=2"
    assert client.get(pixel)["Content-Type"] == "image/gif"
    message = Message.objects.get()
    assert message.opened_at and message.clicked_at and message.status == MessageStatus.CLICKED
    assert set(Touchpoint.objects.filter(lead=lead).values_list("type", flat=True)) >= {"email_open", "email_click"}
    url = unsubscribe.group(1).decode().removeprefix("https://crm.example")
    assert client.get(url).status_code == 200 and Lead.objects.get().consent_status == ConsentStatus.OPT_IN
    one_click = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert one_click.status_code == 200
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_OUT
    assert Suppression.objects.get().reason == SuppressionReason.OPT_OUT
    assert Message.objects.get().status == MessageStatus.UNSUBSCRIBED


def test_consent_is_checked_again_when_the_message_is_sent(marketer, template):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    outcome = _queue(marketer, lead, template)
    Lead.objects.filter(pk=lead.pk).update(consent_status=ConsentStatus.OPT_OUT)
    assert services.messages_send(message_ids=[outcome.message_id])["refused"] == 1
    assert mail.outbox == [] and Message.objects.get().status == MessageStatus.FAILED
    assert _queue(marketer, LeadFactory(), template, "k2").refused == "no_consent"
    suppressed = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    Suppression.objects.create(email=suppressed.email, reason=SuppressionReason.HARD_BOUNCE)
    assert _queue(marketer, suppressed, template, "k3").refused == "suppressed"


def test_a_request_or_a_send_delivered_twice_sends_once(marketer, template):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    first, again = _queue(marketer, lead, template), _queue(marketer, lead, template)
    assert first.message_id == again.message_id
    services.messages_send(message_ids=[first.message_id])
    assert services.messages_send(message_ids=[first.message_id])["skipped"] == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_the_same_messages_send_each_once(make_user):
    actor = Actor(make_user("marketing"))
    template = services.email_template_create(actor=actor, name="Race", subject="Hi", text="Hello")
    leads = [LeadFactory(consent_status=ConsentStatus.OPT_IN) for _ in range(20)]
    from django.utils import timezone

    # Rows as the queue writes them, without its outbox send (the two threads are the workers).
    ids = [
        Message.objects.create(
            lead=lead,
            template=template,
            kind=template.kind,
            idempotency_key=f"race:{lead.pk}",
            queued_at=timezone.now(),
        ).pk
        for lead in leads
    ]
    from django.db import connection

    counts = []

    def work():
        try:
            counts.append(services.messages_send(message_ids=ids)["sent"])
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 20 and len(mail.outbox) == 20


def test_failures_retry_with_backoff_then_park_as_failed(marketer, template, monkeypatch):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    outcome = _queue(marketer, lead, template)

    def broken(self, *args, **kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", broken)
    from django.utils import timezone

    now = timezone.now()
    for attempt in range(1, services.mail.MAX_ATTEMPTS + 1):
        services.messages_send(message_ids=[outcome.message_id], now=now)
        message = Message.objects.get()
        assert message.attempts == attempt
        assert services.messages_send(message_ids=[outcome.message_id], now=now)["skipped"] == 1  # not due yet
        now = (message.next_attempt_at or now) if message.status == MessageStatus.QUEUED else now
    assert message.status == MessageStatus.FAILED and "smtp down" in message.last_error
    services.message_retry(actor=marketer, message_id=message.pk)
    assert Message.objects.get().status == MessageStatus.QUEUED


def test_tampered_tokens_and_foreign_targets_are_refused(marketer, template, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    outcome = _queue(marketer, lead, template)
    services.messages_send(message_ids=[outcome.message_id])
    html = mail.outbox[0].alternatives[0][0]
    click = re.search(r'href="http://[^/]+(/t/c/[^"]+)"', html).group(1)
    assert client.get(click[:-3] + "xyz").status_code == 404
    from django.core import signing

    forged = signing.dumps({"m": outcome.message_id, "u": "https://evil.example"}, salt="other")
    assert client.get(reverse("track-click", args=[forged])).status_code == 404
    unsubscribe = reverse("unsubscribe", args=["not-a-token"])
    assert client.post(unsubscribe).status_code == 400
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_IN


@pytest.mark.parametrize(
    ("part", "source"),
    [
        ("html", "{% load static %}"),
        ("html", "{% include 'base.html' %}"),
        ("text", "{{ settings.SECRET_KEY }}"),
        ("text", "{{ lead.owner.password }}"),
        ("html", "{{ lead.first_name|safe }}"),
        ("subject", "Line\nbreak"),
    ],
)
def test_templates_reach_only_their_merge_fields(part, source):
    parts = {"subject": "Hi", "html": "<p>x</p>", "text": "x", part: source}
    assert part in mail_render.template_errors(**parts)


def test_a_refused_template_is_a_field_error(marketer):
    with pytest.raises(ServiceError) as err:
        services.email_template_create(actor=marketer, name="Bad", subject="Hi", text="{% load static %}")
    assert "text" in err.value.errors


OPS = st.lists(st.sampled_from(["opt_in", "opt_out", "bounce", "unbounce", "queue", "send"]), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_no_marketing_email_without_consent_at_send_time(make_user, ops):
    actor = Actor(make_user("marketing", username=None))
    template = services.email_template_create(
        actor=actor,
        name=f"P-{uuid.uuid4().hex}",
        subject="Hi",
        text="x",  # unique across examples
    )
    lead = LeadFactory(consent_status=ConsentStatus.NONE)
    mail.outbox.clear()
    for n, op in enumerate(ops):
        if op in ("opt_in", "opt_out"):
            Lead.objects.filter(pk=lead.pk).update(consent_status=op)
        elif op == "bounce":
            Suppression.objects.get_or_create(email=lead.email, defaults={"reason": SuppressionReason.HARD_BOUNCE})
        elif op == "unbounce":
            Suppression.objects.filter(email=lead.email).delete()
        elif op == "queue":
            services.messages_queue(
                actor=actor, requests=[services.MessageRequest(lead.pk, template.pk, f"p:{lead.pk}:{n}")]
            )
        else:
            before = len(mail.outbox)
            services.messages_send(message_ids=list(Message.objects.filter(lead=lead).values_list("pk", flat=True)))
            if len(mail.outbox) > before:
                current = Lead.objects.get(pk=lead.pk)
                assert current.consent_status == ConsentStatus.OPT_IN
                assert not Suppression.objects.filter(email=lead.email).exists()


def test_the_api_writes_templates_previews_them_on_a_visible_lead_and_lists_messages(make_user, auth_client):
    marketing, sdr = make_user("marketing"), make_user("sdr", team="A")
    api = auth_client(marketing)
    made = api.post(
        "/api/v1/email-templates/",
        {"name": "Promo", "subject": "For {{ lead.first_name }}", "text": "Hi {{ lead.first_name|default:'there' }}"},
        format="json",
    )
    assert made.status_code == 201, made.json()
    bad = api.patch(f"/api/v1/email-templates/{made.json()['id']}/", {"text": "{% load static %}"}, format="json")
    assert bad.status_code == 400 and "text" in bad.json()
    lead = LeadFactory(first_name="Ada", owner=sdr, consent_status=ConsentStatus.OPT_IN)
    preview = api.post(f"/api/v1/email-templates/{made.json()['id']}/preview/", {"lead": lead.pk}, format="json")
    assert preview.json()["subject"] == "For Ada" and preview.json()["text"].startswith("Hi Ada")
    assert (
        api.post(f"/api/v1/email-templates/{made.json()['id']}/preview/", {"lead": 10**9}, format="json").status_code
        == 404
    )
    services.messages_queue(
        actor=Actor(marketing), requests=[services.MessageRequest(lead.pk, made.json()["id"], "api")]
    )
    other = LeadFactory(owner=make_user("sdr", team="B"), consent_status=ConsentStatus.OPT_IN)
    services.messages_queue(
        actor=Actor(marketing), requests=[services.MessageRequest(other.pk, made.json()["id"], "api2")]
    )
    seen = auth_client(sdr).get("/api/v1/messages/").json()["results"]
    assert [m["lead"] for m in seen] == [lead.pk]
    assert auth_client(sdr).get("/api/v1/email-templates/").status_code == 403

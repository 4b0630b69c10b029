"""E-mail completions: sender identities (From / Reply-To), the Message-ID kept for replies,
per-topic preferences refused at queue and at send, double opt-in (the confirmation sent
at once, confirmed by a POST only), provider webhooks (bounces and complaints suppress,
once; replies matched by In-Reply-To), test sends marked [TEST] and recorded nowhere."""

from __future__ import annotations

import base64
import email
import email.policy
import os
import re
import time

import pytest
from django.core import mail
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from leadcrm import events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import AuditEntry, OutboxMessage
from leads.models import ConsentStatus, Lead, Touchpoint
from nurturing import services
from nurturing.models import (
    EmailTemplate,
    Message,
    MessageStatus,
    SenderIdentity,
    Suppression,
    SuppressionReason,
    TemplateKind,
    Topic,
    TopicPreference,
)
from tests.factories import LeadFactory
from tests.nurturing.test_mail import smtp_sink  # noqa: F401 (a fixture)
from tests.test_celery_worker import app_on_redis, celery_worker_process, redis_broker  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db

SECRET = "hook:s3cret"
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(SECRET.encode()).decode()}


@pytest.fixture
def marketer(make_user):
    return Actor(make_user("marketing"))


@pytest.fixture
def topic(marketer):
    return services.topic_create(actor=marketer, key="newsletter", name="Newsletter", name_fr="Lettre")


def _template(marketer, name="Promo", **fields):
    fields.setdefault("subject", "Hi {{ lead.first_name|default:'you' }}")
    fields.setdefault("text", "Hello {{ lead.first_name|default:'there' }}")
    return services.email_template_create(actor=marketer, name=name, **fields)


def _send(marketer, lead, template, key="k1"):
    (outcome,) = services.messages_queue(actor=marketer, requests=[services.MessageRequest(lead.pk, template.pk, key)])
    assert outcome.message_id, outcome
    services.messages_send(message_ids=[outcome.message_id])
    return Message.objects.get(pk=outcome.message_id)


# --- senders and headers ---------------------------------------------------------------------


def test_from_reply_to_and_message_id_through_real_smtp(marketer, smtp_sink):  # noqa: F811
    sales = services.sender_identity_create(
        actor=marketer, name="Ada from Sales", from_email="ada@corp.example", reply_to="replies@corp.example"
    )
    services.sender_identity_create(actor=marketer, name="Marketing", from_email="news@corp.example", is_default=True)
    own = _template(marketer, "Own sender", sender=sales.pk)
    default = _template(marketer, "Default sender")
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN, first_name="Zoé")
    first, second = _send(marketer, lead, own, "a"), _send(marketer, lead, default, "b")
    raw_first, raw_second = smtp_sink.received
    one = email.message_from_bytes(raw_first, policy=email.policy.default)
    two = email.message_from_bytes(raw_second, policy=email.policy.default)
    assert one["From"].addresses[0].addr_spec == "ada@corp.example"
    assert one["From"].addresses[0].display_name == "Ada from Sales"
    assert one["Reply-To"].addresses[0].addr_spec == "replies@corp.example"
    assert two["From"].addresses[0].addr_spec == "news@corp.example" and two["Reply-To"] is None
    assert one["Message-ID"] == first.smtp_id and first.smtp_id.endswith("@corp.example>")
    assert two["Message-ID"] == second.smtp_id != first.smtp_id
    assert one["Subject"] == "Hi Zoé"


def test_without_identities_the_default_from_email_signs(marketer, settings):
    settings.DEFAULT_FROM_EMAIL = "LeadCRM <noreply@crm.example>"
    message = _send(marketer, LeadFactory(consent_status=ConsentStatus.OPT_IN), _template(marketer))
    (sent,) = mail.outbox
    assert sent.from_email == "LeadCRM <noreply@crm.example>" and sent.reply_to == []
    assert sent.extra_headers["Message-ID"] == message.smtp_id and message.provider_id == ""


def test_the_provider_id_is_kept_when_the_backend_gives_one(marketer, settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    message = _send(marketer, LeadFactory(consent_status=ConsentStatus.OPT_IN), _template(marketer))
    assert message.status == MessageStatus.SENT and message.provider_id  # anymail's test backend makes one


def test_one_default_sender_identity(marketer):
    a = services.sender_identity_create(actor=marketer, name="A", from_email="a@x.example", is_default=True)
    b = services.sender_identity_create(actor=marketer, name="B", from_email="b@x.example", is_default=True)
    assert list(SenderIdentity.objects.filter(is_default=True)) == [b]
    services.sender_identity_update(actor=marketer, sender_id=a.pk, is_default=True)
    assert list(SenderIdentity.objects.filter(is_default=True).values_list("pk", flat=True)) == [a.pk]
    with pytest.raises(ServiceError) as err:
        services.sender_identity_create(actor=marketer, name="C", from_email="A@x.example")
    assert "from_email" in err.value.errors
    with pytest.raises(ServiceError) as err:
        _template(marketer, "Bad", sender=10**9)
    assert "sender" in err.value.errors


# --- topics ----------------------------------------------------------------------------------


def test_a_lead_that_left_a_topic_gets_none_of_its_messages_at_queue_or_at_send(marketer, topic):
    news = _template(marketer, "News", topic=topic.pk)
    other = _template(marketer, "Other")
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    (queued,) = services.messages_queue(actor=marketer, requests=[services.MessageRequest(lead.pk, news.pk, "n1")])
    services.topic_preferences_set(lead_id=lead.pk, choices={topic.pk: False}, source="test", actor=marketer)
    assert services.messages_send(message_ids=[queued.message_id])["refused"] == 1
    assert "topic_opt_out" in Message.objects.get(pk=queued.message_id).last_error
    (again,) = services.messages_queue(actor=marketer, requests=[services.MessageRequest(lead.pk, news.pk, "n2")])
    assert again.refused == "topic_opt_out"
    assert _send(marketer, lead, other, "o1").status == MessageStatus.SENT  # the other topics still go
    services.topic_preferences_set(lead_id=lead.pk, choices={topic.pk: True}, source="test", actor=marketer)
    assert _send(marketer, lead, news, "n3").status == MessageStatus.SENT


def test_the_preferences_page_shows_a_button_and_the_topics_and_saves_them(marketer, topic):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    events_topic = services.topic_create(actor=marketer, key="events", name="Events")
    message = _send(marketer, lead, _template(marketer, topic=topic.pk))
    url = reverse("unsubscribe", args=[services.mail.unsubscribe_token(message)])
    client = Client(enforce_csrf_checks=True)
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and 'id="unsubscribe-confirm"' in html
    assert f'value="{topic.pk}" checked' in html and f'value="{events_topic.pk}" checked' in html
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_IN  # a GET changes nothing
    saved = client.post(url, {"action": "preferences", "topic": [str(events_topic.pk)]})
    assert saved.status_code == 200 and b"preferences-saved" in saved.content
    assert dict(TopicPreference.objects.values_list("topic_id", "subscribed")) == {topic.pk: False}
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_IN
    assert client.post(url, {"action": "all"}).status_code == 200
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_OUT
    assert Message.objects.get().status == MessageStatus.UNSUBSCRIBED


# --- double opt-in ---------------------------------------------------------------------------


def test_double_opt_in_queues_a_confirmation_and_the_button_confirms(marketer, settings):
    settings.LEADCRM_BASE_URL = "https://crm.example"
    lead = LeadFactory(consent_status=ConsentStatus.NONE, first_name="Ada")
    assert services.consent_confirmation_request(lead_ids=[lead.pk, 10**9], source="form:webinar") == {
        lead.pk: "sent",
        10**9: "not_found",
    }
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.PENDING and lead.consent_source == "form:webinar"
    message = Message.objects.get(lead=lead)
    assert message.kind == TemplateKind.TRANSACTIONAL
    owed = OutboxMessage.objects.filter(task="nurturing.tasks.messages_send")
    assert [row.payload["message_ids"] for row in owed] == [[message.pk]]  # relayed when it commits
    services.messages_send(message_ids=[message.pk])
    (sent,) = mail.outbox
    assert "Hello Ada" in sent.body and "List-Unsubscribe" not in sent.extra_headers
    link = re.search(r"https://crm\.example(/c/[^/\s]+/)", sent.body).group(1)
    client = Client(enforce_csrf_checks=True)
    assert client.get(link).status_code == 200
    assert Lead.objects.get(pk=lead.pk).consent_status == ConsentStatus.PENDING  # scanners follow GETs
    assert client.post(link).status_code == 200
    lead.refresh_from_db()
    assert lead.consent_status == ConsentStatus.OPT_IN
    assert lead.consent_source == f"double_opt_in:confirmed:message:{message.pk}"
    log = AuditEntry.objects.filter(action="lead.consent", target_id=str(lead.pk)).order_by("at", "pk")
    assert [e.changes["consent_status"] for e in log] == [["none", "pending"], ["pending", "opt_in"]]
    assert client.post(link).status_code == 200  # twice: nothing more
    assert client.post(link[:-3] + "xx/").status_code == 400
    forged = client.get(link[:-3] + "xx/")
    assert forged.status_code == 200 and b"confirm-subscription" not in forged.content  # says the link is bad
    assert services.consent_confirmation_request(lead_ids=[lead.pk]) == {lead.pk: "already_opted_in"}
    with pytest.raises(ServiceError) as err:  # its words are marketing's to edit, not its kind
        services.email_template_update(actor=marketer, template_id=message.template_id, kind="marketing")
    assert "kind" in err.value.errors


def test_a_confirmation_is_transactional_but_stops_at_a_hard_bounce(marketer):
    bounced = LeadFactory(consent_status=ConsentStatus.NONE)
    Suppression.objects.create(email=bounced.email, reason=SuppressionReason.HARD_BOUNCE)
    opted_out = LeadFactory(consent_status=ConsentStatus.OPT_OUT)
    Suppression.objects.create(email=opted_out.email, reason=SuppressionReason.OPT_OUT)
    outcomes = services.consent_confirmation_request(lead_ids=[bounced.pk, opted_out.pk])
    assert outcomes == {bounced.pk: "suppressed", opted_out.pk: "sent"}  # asking again is the person's word
    message = Message.objects.get()
    services.messages_send(message_ids=[message.pk])
    token = services.mail.confirmation_token(message)
    services.consent_confirm(token=token)
    assert Lead.objects.get(pk=opted_out.pk).consent_status == ConsentStatus.OPT_IN
    assert not Suppression.objects.filter(email=opted_out.email).exists()  # the old opt-out no longer stands


def test_an_old_confirmation_does_not_undo_a_later_opt_out(marketer):
    lead = LeadFactory(consent_status=ConsentStatus.NONE)
    services.consent_confirmation_request(lead_ids=[lead.pk])
    message = Message.objects.get()
    from leads import services as lead_services

    lead_services.lead_consent_set(
        lead_id=lead.pk, status=ConsentStatus.OPT_OUT, source="unsubscribe", actor=Actor.automation()
    )
    with pytest.raises(ServiceError):
        services.consent_confirm(token=services.mail.confirmation_token(message))
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_OUT


# --- provider webhooks -----------------------------------------------------------------------


def _hook(client, path, body, **extra):
    return client.post(path, body, content_type="application/json", **{**AUTH, **extra})


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_a_bounce_suppresses_marks_and_is_idempotent(marketer, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    message = _send(marketer, lead, _template(marketer))
    url = reverse("email-webhook-tracking", args=["generic"])
    body = {"event": "bounced", "message_id": message.smtp_id, "recipient": lead.email, "event_id": "e1"}
    assert _hook(client, url, body).status_code == 200
    before = OutboxMessage.objects.count()
    announced = OutboxMessage.objects.filter(event="email.bounced")
    assert announced.count() == len(events.REACTIONS[events.EMAIL_BOUNCED])
    message.refresh_from_db()
    assert message.status == MessageStatus.BOUNCED and message.bounced_at
    assert Suppression.objects.get(email=lead.email).reason == SuppressionReason.HARD_BOUNCE
    first_at, audited = message.bounced_at, AuditEntry.objects.count()
    assert _hook(client, url, body).status_code == 200  # delivered again
    message.refresh_from_db()
    assert message.bounced_at == first_at and Suppression.objects.count() == 1
    assert AuditEntry.objects.count() == audited and OutboxMessage.objects.count() == before
    # `email.bounced` was announced once (sequences exit on it), whatever its reactions are.
    # Hard bounces stop transactional messages too.
    assert services.consent_confirmation_request(lead_ids=[lead.pk]) == {lead.pk: "already_opted_in"}
    assert services.mail.refusal(lead=lead, kind=TemplateKind.TRANSACTIONAL, now=timezone.now()) == "suppressed"


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_a_complaint_found_by_the_metadata_opts_out_and_suppresses(marketer, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    message = _send(marketer, lead, _template(marketer))
    Suppression.objects.create(email=lead.email, reason=SuppressionReason.OPT_OUT)
    body = [{"event": "complained", "metadata": {"leadcrm_message": str(message.pk)}}]
    assert _hook(client, reverse("email-webhook-tracking", args=["generic"]), body).status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.COMPLAINED and message.complained_at
    assert Suppression.objects.get().reason == SuppressionReason.COMPLAINT  # stronger than the opt-out
    assert Lead.objects.get().consent_status == ConsentStatus.OPT_OUT


def test_webhooks_refuse_without_a_secret_or_with_a_wrong_one(marketer, client, settings):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    message = _send(marketer, lead, _template(marketer))
    url = reverse("email-webhook-tracking", args=["generic"])
    body = {"event": "bounced", "message_id": message.smtp_id}
    settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
    assert _hook(client, url, body).status_code == 403
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert _hook(client, url, body, HTTP_AUTHORIZATION=wrong).status_code == 400
    assert client.post(url, body, content_type="application/json").status_code == 400
    assert _hook(client, reverse("email-webhook-tracking", args=["nope"]), body).status_code == 404
    assert _hook(client, url, "not json{").status_code == 400
    assert not Suppression.objects.exists() and Message.objects.get().bounced_at is None


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_a_postmark_bounce_through_anymail(marketer, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    message = _send(marketer, lead, _template(marketer))
    Message.objects.filter(pk=message.pk).update(provider_id="pm-0001")
    body = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "MessageID": "pm-0001",
        "Email": lead.email,
        "BouncedAt": "2026-12-01T10:00:00Z",
        "Description": "The server was unable to deliver your message",
        "ID": 42,
    }
    assert _hook(client, reverse("email-webhook-tracking", args=["postmark"]), body).status_code == 200
    assert Message.objects.get().status == MessageStatus.BOUNCED
    assert Suppression.objects.get().reason == SuppressionReason.HARD_BOUNCE


def _reply(to_message_id: str, sender: str, reply_id: str = "<r1@mail.example>") -> bytes:
    return (
        f"From: Person <{sender}>\r\nTo: ada@corp.example\r\nSubject: Re: Hi\r\n"
        f"Message-ID: {reply_id}\r\nIn-Reply-To: {to_message_id}\r\nReferences: {to_message_id}\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nYes please, call me.\r\n"
    ).encode()


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_a_reply_is_matched_by_in_reply_to_and_recorded_once(marketer, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    template = _template(marketer)
    first = _send(marketer, lead, template, "a")
    _send(marketer, lead, template, "b")  # the later message: In-Reply-To names the first
    url = reverse("email-webhook-inbound", args=["generic"])
    raw = _reply(first.smtp_id, "someone-else@mail.example")
    for _ in range(2):  # delivered twice
        response = client.post(url, raw, content_type="message/rfc822", **AUTH)
        assert response.status_code == 200
    first.refresh_from_db()
    assert first.status == MessageStatus.REPLIED and first.replied_at
    (touch,) = Touchpoint.objects.filter(lead=lead, type="email_reply")
    assert touch.properties["event"] == "email_reply" and touch.properties["message"] == first.pk
    assert Message.objects.filter(replied_at__isnull=False).count() == 1


@override_settings(ANYMAIL={"WEBHOOK_SECRET": SECRET})
def test_a_reply_without_headers_goes_to_the_senders_last_message(marketer, client):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    template = _template(marketer)
    _send(marketer, lead, template, "a")
    last = _send(marketer, lead, template, "b")
    raw = _reply("<unknown@elsewhere>", lead.email.upper())
    client.post(reverse("email-webhook-inbound", args=["generic"]), raw, content_type="message/rfc822", **AUTH)
    assert Message.objects.get(replied_at__isnull=False) == last
    stranger = _reply("<unknown@elsewhere>", "nobody@mail.example", "<r2@x>")
    assert (
        client.post(
            reverse("email-webhook-inbound", args=["generic"]), stranger, content_type="message/rfc822", **AUTH
        ).status_code
        == 200
    )
    assert Message.objects.filter(replied_at__isnull=False).count() == 1


# --- test sends ------------------------------------------------------------------------------


def test_a_test_send_goes_to_the_caller_marked_and_recorded_nowhere(make_user, auth_client):
    marketing, sdr = make_user("marketing"), make_user("sdr", team="A")
    api = auth_client(marketing)
    sender = api.post(
        "/api/v1/sender-identities/", {"name": "Ada", "from_email": "ada@corp.example"}, format="json"
    ).json()
    made = api.post(
        "/api/v1/email-templates/",
        {
            "name": "T",
            "subject": "For {{ lead.first_name }}",
            "text": "Hi {{ lead.first_name }}",
            "sender": sender["id"],
        },
        format="json",
    ).json()
    assert made["sender"] == sender["id"]
    lead = LeadFactory(first_name="Ada", owner=sdr, consent_status=ConsentStatus.NONE)
    answer = api.post(f"/api/v1/email-templates/{made['id']}/test/", {"lead": lead.pk}, format="json")
    assert answer.status_code == 200 and answer.json() == {"sent_to": marketing.email}
    (sent,) = mail.outbox
    assert sent.subject == "[TEST] For Ada" and sent.to == [marketing.email] and "Hi Ada" in sent.body
    assert "ada@corp.example" in sent.from_email
    assert not Message.objects.exists() and not Touchpoint.objects.filter(lead=lead).exists()
    assert AuditEntry.objects.filter(action="nurturing.template.test_send").exists()
    other = api.post(f"/api/v1/email-templates/{made['id']}/test/", {"lead": lead.pk, "to": "qa@corp.example"})
    assert other.json() == {"sent_to": "qa@corp.example"} and mail.outbox[1].to == ["qa@corp.example"]
    bad = api.post(f"/api/v1/email-templates/{made['id']}/test/", {"lead": lead.pk, "to": "x\x00"}, format="json")
    assert bad.status_code == 400
    assert api.post(f"/api/v1/email-templates/{made['id']}/test/", {"lead": 10**9}).status_code == 404
    assert auth_client(sdr).post(f"/api/v1/email-templates/{made['id']}/test/", {"lead": lead.pk}).status_code == 403


def test_the_api_writes_senders_and_topics_with_field_errors(make_user, auth_client):
    api = auth_client(make_user("marketing"))
    assert api.post("/api/v1/sender-identities/", {"name": "", "from_email": "nope"}, format="json").status_code == 400
    made = api.post("/api/v1/sender-identities/", {"name": "A", "from_email": "a@corp.example"}, format="json")
    assert made.status_code == 201
    patched = api.patch(f"/api/v1/sender-identities/{made.json()['id']}/", {"is_default": True}, format="json")
    assert patched.json()["is_default"] is True
    assert api.get("/api/v1/sender-identities/").json()[0]["from_email"] == "a@corp.example"
    topic = api.post("/api/v1/topics/", {"key": "events", "name": "Events"}, format="json")
    assert topic.status_code == 201
    assert api.post("/api/v1/topics/", {"key": "events", "name": "Again"}, format="json").status_code == 400
    assert [t["key"] for t in api.get("/api/v1/topics/").json()] == ["events"]
    template = api.post(
        "/api/v1/email-templates/",
        {"name": "N", "subject": "S", "text": "x", "topic": topic.json()["id"]},
        format="json",
    ).json()
    assert template["topic"] == topic.json()["id"]
    cleared = api.patch(f"/api/v1/email-templates/{template['id']}/", {"topic": None}, format="json")
    assert cleared.json()["topic"] is None and EmailTemplate.objects.get(pk=template["id"]).topic is None
    assert not Topic.objects.filter(templates__isnull=False).exists()


# --- double opt-in end to end, with a real worker ---------------------------------------------


@pytest.fixture
def worker_with_sink(request, monkeypatch):
    """A real Celery worker whose e-mail goes to an SMTP sink on loopback."""
    import socket

    from aiosmtpd.controller import Controller

    from tests.nurturing.test_mail import _Sink

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setenv("LEADCRM_BASE_URL", "https://crm.example")
    try:
        proc, log = request.getfixturevalue("celery_worker_process")
        request.getfixturevalue("app_on_redis")
        yield sink, proc, log
    finally:
        controller.stop()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_double_opt_in_end_to_end_the_confirmation_is_sent_at_once_by_the_worker(worker_with_sink):
    from tests.test_celery_worker import TIMEOUT

    sink, proc, log = worker_with_sink
    lead = LeadFactory(consent_status=ConsentStatus.NONE, first_name="Léa")
    started = time.monotonic()
    assert services.consent_confirmation_request(lead_ids=[lead.pk], source="form:trade-fair") == {lead.pk: "sent"}
    while not sink.received and time.monotonic() - started < TIMEOUT and proc.poll() is None:
        time.sleep(0.1)
    if not sink.received:
        with open(log) as fh:
            pytest.fail("the worker sent no confirmation:\n" + fh.read()[-4000:])
    assert time.monotonic() - started < 15, "sent at once, not at a beat"
    parsed = email.message_from_bytes(sink.received[0], policy=email.policy.default)
    body = parsed.get_body(("plain",)).get_content()
    assert "Hello Léa" in body and "List-Unsubscribe" not in parsed
    link = re.search(r"https://crm\.example(/c/[^/\s]+/)", body).group(1)
    while Message.objects.get().status != MessageStatus.SENT and time.monotonic() - started < TIMEOUT:
        time.sleep(0.05)  # the worker records the send in the transaction the sink saw end
    message = Message.objects.get()
    assert message.status == MessageStatus.SENT and message.smtp_id == parsed["Message-ID"]
    client = Client(enforce_csrf_checks=True)
    assert client.get(link).status_code == 200 and Lead.objects.get().consent_status == ConsentStatus.PENDING
    assert client.post(link).status_code == 200 and Lead.objects.get().consent_status == ConsentStatus.OPT_IN
    assert os.environ["EMAIL_URL"].startswith("smtp://127.0.0.1")


def test_the_api_asks_double_opt_in_for_the_leads_the_caller_sees(make_user, auth_client):
    marketing = make_user("marketing")
    fresh = LeadFactory(consent_status=ConsentStatus.NONE)
    opted = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    answer = auth_client(marketing).post(
        "/api/v1/consent-confirmations/", {"leads": [fresh.pk, opted.pk, 10**9], "source": "list:fair"}, format="json"
    )
    assert answer.status_code == 200
    assert answer.json()["outcomes"] == {
        str(fresh.pk): "sent",
        str(opted.pk): "already_opted_in",
        "1000000000": "not_found",
    }
    assert Lead.objects.get(pk=fresh.pk).consent_status == ConsentStatus.PENDING
    assert Message.objects.get().lead == fresh
    sdr = make_user("sdr", team="A")
    assert (
        auth_client(sdr).post("/api/v1/consent-confirmations/", {"leads": [fresh.pk]}, format="json").status_code == 403
    )
    assert (
        auth_client(marketing).post("/api/v1/consent-confirmations/", {"leads": []}, format="json").status_code == 400
    )


def test_anymail_events_map_to_ours(marketer, monkeypatch):
    from anymail.signals import AnymailTrackingEvent

    from nurturing import receivers

    seen = []
    monkeypatch.setattr(services, "provider_events_record", lambda *, items: seen.extend(items))
    for event_type, reason in [
        ("bounced", None),
        ("rejected", "spam"),
        ("rejected", "invalid"),
        ("delivered", None),
        ("deferred", None),
        ("rejected", "other"),
    ]:
        event = AnymailTrackingEvent(
            event_type=event_type, reject_reason=reason, recipient="x@y.example", metadata={"leadcrm_message": "12"}
        )
        receivers.tracking_received(None, event=event, esp_name="Test")
    assert [(e.kind, e.leadcrm_message) for e in seen] == [("bounced", 12), ("complained", 12), ("bounced", 12)]

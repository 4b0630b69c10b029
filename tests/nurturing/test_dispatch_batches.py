"""Dispatch in batches: the queue answers a whole batch in the queries of one request, with
the one rule (`refusal_of`) per request and the frequency cap holding inside the batch; the
send claims a chunk, sends each message once over one connection, records a failed send
without touching the others, gives back what a chunk had no time for, sends again a
message whose worker died once its lease ends, and keeps one Message-ID per message; the
engine's tick costs the same queries for few or many due enrollments."""

from __future__ import annotations

import datetime as dt
import smtplib

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm.actors import Actor
from leadcrm.models import OutboxMessage
from leads.models import ConsentStatus, Lead
from nurturing import services
from nurturing.models import (
    Enrollment,
    Message,
    MessageStatus,
    StepRun,
    Suppression,
    SuppressionReason,
    TemplateKind,
    TopicPreference,
)
from nurturing.services import mail as mail_service
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2031, 1, 6, 10, 0, tzinfo=dt.UTC)  # after the real clock (the queue stamps the real time)


class CountingBackend(locmem.EmailBackend):
    """The test back end, counting the connections opened and closed."""

    opened = 0
    closed = 0

    def open(self):
        type(self).opened += 1
        return super().open()

    def close(self):
        type(self).closed += 1
        return super().close()


@pytest.fixture
def marketer(make_user):
    return Actor(make_user("marketing"))


def _template(marketer, name, **fields):
    fields.setdefault("subject", "Hi {{ lead.first_name|default:'you' }}")
    fields.setdefault("text", "Hello {{ lead.first_name|default:'there' }}")
    return services.email_template_create(actor=marketer, name=name, **fields)


def opted_in(**fields) -> Lead:
    return LeadFactory(consent_status=ConsentStatus.OPT_IN, **fields)


def _request(lead, template, key: str) -> services.MessageRequest:
    return services.MessageRequest(lead.pk if lead is not None else 10**9, template.pk, key)


def _sent_before(lead, template, n: int) -> None:
    """n marketing e-mails sent to the lead an hour ago (they count for the cap)."""
    now = timezone.now()
    for i in range(n):
        Message.objects.create(
            lead=lead,
            template=template,
            kind=TemplateKind.MARKETING,
            idempotency_key=f"before:{lead.pk}:{i}",
            status=MessageStatus.SENT,
            queued_at=now - dt.timedelta(hours=1),
            sent_at=now - dt.timedelta(hours=1),
        )


def _ids(outcomes) -> list[int]:
    return [o.message_id for o in outcomes]


def _sent_ids() -> list[int]:
    return sorted(int(m.extra_headers["X-LeadCRM-Message"]) for m in mail.outbox)


# --- the queue -------------------------------------------------------------------------------


def test_the_frequency_cap_holds_inside_one_batch(marketer, settings):
    settings.LEADCRM_EMAIL_FREQUENCY_CAP = "3/7"
    promo, note = _template(marketer, "Promo"), _template(marketer, "Note", kind=TemplateKind.TRANSACTIONAL)
    busy, calm = opted_in(), opted_in()
    _sent_before(busy, promo, 1)
    outcomes = services.messages_queue(
        actor=marketer,
        requests=[
            _request(busy, promo, "b1"),
            _request(calm, promo, "c1"),
            _request(busy, note, "b-note"),  # transactional: not capped, not counted
            _request(busy, promo, "b2"),  # 1 sent + b1 + b2: the cap (3) is reached
            _request(busy, promo, "b3"),
            _request(busy, promo, "b2"),  # the same key again: the same message, not one more
            _request(calm, promo, "c2"),
        ],
    )
    assert [o.refused for o in outcomes] == ["", "", "", "", "frequency_cap", "", ""]
    assert outcomes[5].message_id == outcomes[3].message_id and outcomes[4].message_id is None
    assert Message.objects.filter(lead=busy, sent_at__isnull=True).count() == 3
    assert Message.objects.filter(lead=calm).count() == 2


def test_the_cap_holds_inside_one_send_chunk(marketer, settings):
    """Queued in two batches (the queue counts sent e-mails and its own batch), sent in one
    chunk: the second is refused by the cap at send time."""
    settings.LEADCRM_EMAIL_FREQUENCY_CAP = "1/7"
    promo = _template(marketer, "Promo")
    lead = opted_in()
    (first,) = services.messages_queue(actor=marketer, requests=[_request(lead, promo, "a")])
    (second,) = services.messages_queue(actor=marketer, requests=[_request(lead, promo, "b")])
    assert first.message_id and second.message_id
    counts = services.messages_send(message_ids=[first.message_id, second.message_id])
    assert (counts["sent"], counts["refused"]) == (1, 1) and len(mail.outbox) == 1
    refused = Message.objects.get(status=MessageStatus.FAILED)
    assert "frequency_cap" in refused.last_error and refused.attempts == 1


def test_each_request_of_a_mixed_batch_gets_the_answer_of_the_one_rule(marketer, settings):
    settings.LEADCRM_EMAIL_FREQUENCY_CAP = "2/7"
    topic = services.topic_create(actor=marketer, key="news", name="News")
    promo, news = _template(marketer, "Promo"), _template(marketer, "News", topic=topic.pk)
    note = _template(marketer, "Note", kind=TemplateKind.TRANSACTIONAL)
    ok, nobody = opted_in(), LeadFactory(consent_status=ConsentStatus.NONE)
    opted_out, bounced, left, capped, blank = (opted_in() for _ in range(5))
    Lead.objects.filter(pk=opted_out.pk).update(email="Mixed.Case@Example.com")  # suppressions are lower case
    Suppression.objects.create(email="mixed.case@example.com", reason=SuppressionReason.OPT_OUT)
    Suppression.objects.create(email=bounced.email, reason=SuppressionReason.HARD_BOUNCE)
    TopicPreference.objects.create(lead=left, topic=topic, subscribed=False, at=timezone.now())
    _sent_before(capped, promo, 2)
    Lead.objects.filter(pk=blank.pk).update(email="")
    cases = [
        (ok, promo, ""),
        (nobody, promo, "no_consent"),
        (nobody, note, ""),  # transactional: no consent needed
        (opted_out, promo, "suppressed"),
        (opted_out, note, ""),  # an opt-out stops marketing only
        (bounced, note, "suppressed"),  # a hard bounce stops everything
        (left, news, "topic_opt_out"),
        (left, promo, ""),  # the other topics still go
        (capped, promo, "frequency_cap"),
        (capped, note, ""),
        (blank, note, "no_email"),
        (None, promo, "unknown_lead"),
    ]
    now = timezone.now()
    one_by_one = [
        services.refusal(lead=Lead.objects.get(pk=lead.pk), kind=t.kind, now=now, topic_id=t.topic_id)
        for lead, t, _ in cases
        if lead is not None
    ]
    requests = [_request(lead, t, f"mixed:{n}") for n, (lead, t, _) in enumerate(cases)]
    requests.append(services.MessageRequest(ok.pk, 10**9, "mixed:no-template"))
    outcomes = services.messages_queue(actor=marketer, requests=requests)
    expected = [why for _, _, why in cases] + ["unknown_template"]
    assert [o.refused for o in outcomes] == expected
    assert one_by_one == expected[: len(one_by_one)]  # the same rule, one lead at a time
    assert [o.lead_id for o in outcomes] == [r.lead_id for r in requests]
    queued = {o.message_id: r for o, r in zip(outcomes, requests, strict=True) if o.message_id}
    assert len(queued) == expected.count("") == Message.objects.filter(idempotency_key__startswith="mixed:").count()
    for message in Message.objects.filter(pk__in=queued):
        request = queued[message.pk]
        assert (message.lead_id, message.template_id, message.idempotency_key) == (
            request.lead_id,
            request.template_id,
            request.idempotency_key,
        )
        assert message.status == MessageStatus.QUEUED and message.queued_at and message.next_attempt_at


def test_queueing_costs_the_same_queries_for_one_or_a_hundred_requests(marketer):
    topic = services.topic_create(actor=marketer, key="news", name="News")
    news = _template(marketer, "News", topic=topic.pk)  # a topic: its preferences are read too
    leads = [opted_in() for _ in range(101)]
    Suppression.objects.create(email=leads[7].email, reason=SuppressionReason.OPT_OUT)
    with CaptureQueriesContext(connection) as one:
        services.messages_queue(actor=marketer, requests=[_request(leads[0], news, "one")])
    with CaptureQueriesContext(connection) as hundred:
        outcomes = services.messages_queue(
            actor=marketer, requests=[_request(lead, news, f"many:{lead.pk}") for lead in leads[1:]]
        )
    assert len(one.captured_queries) == len(hundred.captured_queries) <= 10
    assert sum(1 for o in outcomes if o.message_id) == 99 and outcomes[6].refused == "suppressed"
    owed = OutboxMessage.objects.filter(task="nurturing.tasks.messages_send").order_by("id")
    assert [len(row.payload["message_ids"]) for row in owed] == [1, 99]  # one outbox row per batch


# --- the send ---------------------------------------------------------------------------------


def test_sending_a_chunk_costs_the_same_reads_for_one_or_fifty_messages(marketer):
    promo = _template(marketer, "Promo")
    leads = [opted_in() for _ in range(51)]
    outcomes = services.messages_queue(actor=marketer, requests=[_request(x, promo, f"k{x.pk}") for x in leads])
    ids = _ids(outcomes)

    def statements(captured, verb: str) -> int:
        return sum(1 for q in captured.captured_queries if q["sql"].lstrip().upper().startswith(verb))

    with CaptureQueriesContext(connection) as one:
        assert services.messages_send(message_ids=ids[:1])["sent"] == 1
    with CaptureQueriesContext(connection) as fifty:
        assert services.messages_send(message_ids=ids[1:])["sent"] == 50
    assert statements(one, "SELECT") == statements(fifty, "SELECT")
    # the claim's UPDATE, then one "sent" per message (written before the next one goes)
    assert statements(fifty, "UPDATE") - statements(one, "UPDATE") == 49
    assert _sent_ids() == sorted(ids)


def test_a_chunk_where_one_send_raises_sends_the_others_once_and_retries_it(marketer, settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{__name__}.CountingBackend"
    CountingBackend.opened = CountingBackend.closed = 0
    promo = _template(marketer, "Promo")
    leads = [opted_in() for _ in range(5)]
    ids = _ids(services.messages_queue(actor=marketer, requests=[_request(x, promo, f"k{x.pk}") for x in leads]))
    bad = ids[2]
    real = mail.EmailMultiAlternatives.send
    tried: list[str] = []

    def flaky(self, *args, **kwargs):
        if self.extra_headers["X-LeadCRM-Message"] == str(bad):
            tried.append(self.extra_headers["Message-ID"])
            raise smtplib.SMTPServerDisconnected("connection lost")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", flaky)
    now = timezone.now()
    counts = services.messages_send(message_ids=ids, now=now)
    assert counts == {"sent": 4, "refused": 0, "retry": 1, "failed": 0, "skipped": 0}
    assert _sent_ids() == sorted(set(ids) - {bad})
    # One connection for the call, opened again once after the failure (a broken session).
    assert (CountingBackend.opened, CountingBackend.closed) == (2, 2)
    failed = Message.objects.get(pk=bad)
    assert failed.status == MessageStatus.QUEUED and failed.attempts == 1 and "connection lost" in failed.last_error
    assert failed.next_attempt_at == now + dt.timedelta(seconds=mail_service.BACKOFF[0])
    others = Message.objects.exclude(pk=bad)
    assert {(m.status, m.attempts) for m in others} == {(MessageStatus.SENT, 1)}
    assert all(m.smtp_id and m.sent_at == now for m in others)
    # Delivered again at once: nothing more goes (the failed one waits for its retry time).
    assert services.messages_send(message_ids=ids, now=now)["skipped"] == 5 and len(mail.outbox) == 4
    # At its retry time it goes, once, with the Message-ID of its first attempt.
    monkeypatch.setattr(mail.EmailMultiAlternatives, "send", real)
    counts = services.messages_send(message_ids=ids, now=failed.next_attempt_at)
    assert (counts["sent"], counts["skipped"]) == (1, 4) and _sent_ids() == sorted(ids)
    resent = Message.objects.get(pk=bad)
    assert resent.status == MessageStatus.SENT and resent.attempts == 2
    assert mail.outbox[-1].extra_headers["Message-ID"] == resent.smtp_id == tried[0]


def test_a_message_whose_worker_died_is_sent_again_when_its_lease_ends(marketer):
    promo = _template(marketer, "Promo")
    (outcome,) = services.messages_queue(actor=marketer, requests=[_request(opted_in(), promo, "k")])
    now = timezone.now()
    # A worker claimed it and died before sending: "sending", its lease running.
    Message.objects.filter(pk=outcome.message_id).update(
        status=MessageStatus.SENDING, attempts=1, next_attempt_at=now + mail_service.LEASE
    )
    assert services.messages_send(message_ids=[outcome.message_id], now=now)["skipped"] == 1
    assert services.messages_due(now=now) == [] and mail.outbox == []
    later = now + mail_service.LEASE + dt.timedelta(seconds=1)
    assert services.messages_due(now=later) == [outcome.message_id]
    assert services.messages_send(message_ids=[outcome.message_id], now=later)["sent"] == 1
    message = Message.objects.get()
    assert message.status == MessageStatus.SENT and message.attempts == 2 and len(mail.outbox) == 1
    # Its Message-ID is its own, whatever the attempt: a copy sent after a crash carries it too.
    assert message.smtp_id == mail_service.message_id_of(message, mail.outbox[0].from_email)
    assert message.smtp_id.startswith(f"<{message.pk}.")


def test_a_chunk_out_of_time_gives_back_what_it_did_not_send(marketer, monkeypatch):
    monkeypatch.setattr(mail_service, "LEASE", dt.timedelta(0))  # its lease is spent before the first send
    promo = _template(marketer, "Promo")
    ids = _ids(
        services.messages_queue(actor=marketer, requests=[_request(opted_in(), promo, f"k{i}") for i in range(3)])
    )
    before = OutboxMessage.objects.filter(task="nurturing.tasks.messages_send").count()
    counts = services.messages_send(message_ids=ids)
    assert counts["sent"] == 0 and counts["skipped"] == 3 and mail.outbox == []
    assert {(m.status, m.attempts) for m in Message.objects.all()} == {(MessageStatus.QUEUED, 0)}
    owed = OutboxMessage.objects.filter(task="nurturing.tasks.messages_send").order_by("id")
    assert owed.count() == before + 1 and sorted(owed.last().payload["message_ids"]) == sorted(ids)


# --- the engine ------------------------------------------------------------------------------


def test_a_tick_costs_the_same_queries_for_few_or_many_due_enrollments(marketer):
    promo = _template(marketer, "Promo")
    sequence = services.sequence_create(
        actor=marketer, name="One e-mail", steps=[{"type": "email", "template": promo.pk}]
    )
    few, many = [opted_in() for _ in range(3)], [opted_in() for _ in range(40)]
    services.sequence_enroll(actor=marketer, sequence_id=sequence.pk, lead_ids=[x.pk for x in few], now=T0)
    with CaptureQueriesContext(connection) as first:
        assert services.sequences_tick(now=T0) == 3
    services.sequence_enroll(actor=marketer, sequence_id=sequence.pk, lead_ids=[x.pk for x in many], now=T0)
    with CaptureQueriesContext(connection) as second:
        assert services.sequences_tick(now=T0) == 40
    assert len(first.captured_queries) == len(second.captured_queries)
    assert Message.objects.count() == 43 and Enrollment.objects.filter(state="completed").count() == 43
    runs = StepRun.objects.filter(type="email")
    assert runs.count() == 43 and not runs.filter(message__isnull=True).exists()
    assert set(runs.values_list("outcome", flat=True)) == {"queued"}

"""Webhook deliveries to a real HTTP receiver on loopback (LEADCRM_WEBHOOK_ALLOW_PRIVATE on):
signatures checked with the documented snippet, retries, per-lead order, 410, SSRF at send
time, redirects, the retry window, replay, and the events' reaction writing each delivery once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Notification
from integrations import services, signing
from integrations.models import Delivery, DeliveryStatus, Webhook
from integrations.tasks import deliveries_create
from leadcrm import events
from leadcrm.models import AuditEntry, OutboxMessage
from tests.factories import LeadFactory, UserFactory, WebhookFactory
from tests.integrations.conftest import documented_verify

pytestmark = pytest.mark.django_db

verify = documented_verify()


def _send_until_done(start: dt.datetime | None = None, rounds: int = 12) -> dt.datetime:
    """Drive the sender as beat would, jumping past each backoff (at most 6 h + jitter)."""
    now = start or timezone.now()
    for _ in range(rounds):
        services.deliveries_send_due(now=now)
        if not Delivery.objects.filter(status=DeliveryStatus.PENDING, webhook__active=True).exists():
            break
        now += dt.timedelta(hours=8)
    return now


def _occurrence(key: str, at: dt.datetime, *leads) -> services.Occurrence:
    return services.Occurrence(key, at, [lead.pk for lead in leads])


def test_receiver_verifies_every_message_sees_per_lead_order_and_gets_the_third_try(receiver, allow_private):
    receiver.fail_first_per_message = 2
    hook = WebhookFactory(url=receiver.url, events=[events.LEAD_CREATED, events.LEAD_STAGE_CHANGED])
    a, b = LeadFactory(), LeadFactory()
    t0 = timezone.now() - dt.timedelta(minutes=5)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", t0, a, b)])
    for n, (src, to) in enumerate((("MCL", "MQL"), ("MQL", "SQL")), start=1):
        services.deliveries_write(
            event=events.LEAD_STAGE_CHANGED,
            occurrences=[_occurrence(f"o{n + 1}", t0 + dt.timedelta(seconds=n), a)],
            details={"from_stage": src, "to_stage": to},
        )
    assert Delivery.objects.count() == 4

    _send_until_done()

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    for delivery in Delivery.objects.all():
        assert delivery.attempts == 3
        codes = list(delivery.attempt_log.order_by("number").values_list("status_code", flat=True))
        assert codes == [500, 500, 200]
    # Every request (retries included) carries a valid signature; a wrong secret fails.
    assert len(receiver.requests) == 12
    for request in receiver.requests:
        assert verify(hook.secret, request.headers, request.body)
        assert not verify(signing.new_secret(), request.headers, request.body)
        assert not verify(hook.secret, request.headers, request.body + b" ")
    # Per-lead order: lead a's messages accepted in event order, and none of its messages was
    # even tried before the previous one was accepted.
    about_a = [r for r in receiver.requests if r.payload["data"]["lead"]["id"] == a.pk]
    accepted = [(r.payload["type"], r.payload["data"].get("to_stage")) for r in about_a if r.answered == 200]
    assert accepted == [("lead.created", None), ("lead.stage_changed", "MQL"), ("lead.stage_changed", "SQL")]
    order = []
    for r in about_a:
        if r.msg_id not in order:
            order.append(r.msg_id)
    for earlier, later in zip(order, order[1:], strict=False):
        first_try_of_later = next(i for i, r in enumerate(about_a) if r.msg_id == later)
        accepted_earlier = next(i for i, r in enumerate(about_a) if r.msg_id == earlier and r.answered == 200)
        assert accepted_earlier < first_try_of_later
    # No message accepted twice.
    ids = [r.msg_id for r in receiver.accepted()]
    assert len(ids) == len(set(ids)) == 4


def test_the_events_reaction_writes_each_delivery_once_and_sends_it(
    receiver, allow_private, auth_client, django_capture_on_commit_callbacks
):
    admin = UserFactory(role="admin")
    hook = WebhookFactory(url=receiver.url, events=[events.LEAD_CREATED], owner=admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(admin).post("/api/v1/leads/", {"email": "hooked@example.com"}, format="json")
    assert response.status_code == 201, response.content
    lead_id = response.json()["id"]
    delivery = Delivery.objects.get(webhook=hook)
    assert delivery.lead_id == lead_id and delivery.status == DeliveryStatus.DELIVERED
    [request] = receiver.requests
    assert verify(hook.secret, request.headers, request.body)
    assert request.payload["type"] == "lead.created"
    assert request.payload["data"]["lead"]["email"] == "hooked@example.com"

    # The outbox delivers the reaction again (a lost confirmation): nothing new is written.
    row = OutboxMessage.objects.get(task="integrations.tasks.deliveries_create", event=events.LEAD_CREATED)
    assert deliveries_create.apply(kwargs=row.payload, headers={"outbox_ids": [row.pk]}).get() == 0
    assert Delivery.objects.filter(webhook=hook).count() == 1
    assert len(receiver.requests) == 1


def test_a_second_occurrence_of_the_same_event_is_a_second_delivery(allow_private):
    hook = WebhookFactory(events=[events.LEAD_ASSIGNED])
    lead = LeadFactory()
    now = timezone.now()
    for key in ("o1", "o2", "o1"):
        services.deliveries_write(event=events.LEAD_ASSIGNED, occurrences=[_occurrence(key, now, lead)])
    assert Delivery.objects.filter(webhook=hook).count() == 2


def test_an_endpoint_answering_410_is_disabled_and_its_owner_notified(receiver, allow_private, auth_client):
    receiver.default = 410
    hook = WebhookFactory(url=receiver.url)
    leads = [LeadFactory(), LeadFactory()]
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), leads[0])])
    services.deliveries_send_due()
    hook.refresh_from_db()
    assert not hook.active and "410" in hook.disabled_reason
    note = Notification.objects.get(user=hook.owner, kind="webhook.disabled")
    assert receiver.url in note.text
    assert AuditEntry.objects.filter(action="webhook.disable", target_id=str(hook.pk)).exists()
    assert Delivery.objects.get(webhook=hook).status == DeliveryStatus.FAILED

    # While off, new events write nothing and nothing is sent.
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o2", timezone.now(), leads[1])])
    assert Delivery.objects.filter(webhook=hook).count() == 1
    # Switched on again (the API), it is healthy again and sends.
    receiver.default = 204
    response = auth_client(hook.owner).patch(f"/api/v1/webhooks/{hook.pk}/", {"active": True}, format="json")
    assert response.status_code == 200 and response.json()["active"] is True
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o3", timezone.now(), leads[1])])
    services.deliveries_send_due()
    assert Delivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count() == 1


def test_an_endpoint_failing_for_three_days_is_disabled(receiver, allow_private):
    receiver.default = 503
    hook = WebhookFactory(url=receiver.url)
    Webhook.objects.filter(pk=hook.pk).update(failing_since=timezone.now() - dt.timedelta(days=3, minutes=1))
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    services.deliveries_send_due()
    hook.refresh_from_db()
    assert not hook.active and hook.consecutive_failures == 1
    assert Notification.objects.filter(user=hook.owner, kind="webhook.disabled").count() == 1


def test_a_success_clears_the_failure_record(receiver, allow_private):
    hook = WebhookFactory(url=receiver.url)
    Webhook.objects.filter(pk=hook.pk).update(consecutive_failures=7, failing_since=timezone.now())
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    services.deliveries_send_due()
    hook.refresh_from_db()
    assert hook.active and hook.consecutive_failures == 0 and hook.failing_since is None


def test_a_loopback_target_is_refused_at_send_time_without_the_setting(receiver, settings):
    settings.LEADCRM_WEBHOOK_ALLOW_PRIVATE = False
    hook = WebhookFactory(url=receiver.url)  # e.g. a name that resolved elsewhere when saved
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    result = services.deliveries_send_due()
    assert result.retried == 1 and receiver.requests == []
    delivery = Delivery.objects.get(webhook=hook)
    attempt = delivery.attempt_log.get()
    assert attempt.status_code is None and "non-public" in attempt.error
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at > timezone.now()


def test_redirects_are_not_followed(receiver, allow_private):
    receiver.default, receiver.redirect_to = 302, receiver.url + "/elsewhere"
    hook = WebhookFactory(url=receiver.url)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    services.deliveries_send_due()
    assert [r.path for r in receiver.requests] == ["/hook"]
    delivery = Delivery.objects.get(webhook=hook)
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code == 302
    assert "Redirects" in delivery.attempt_log.get().error


def test_retries_back_off_with_jitter_then_fail_after_the_window(receiver, allow_private):
    receiver.default = 500
    hook = WebhookFactory(url=receiver.url)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    before = timezone.now()
    services.deliveries_send_due()
    delivery = Delivery.objects.get(webhook=hook)
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert delivery.status == DeliveryStatus.PENDING and 3.5 <= wait <= 7
    delays = [services.backoff(n).total_seconds() for n in range(1, 30)]
    assert delays[1] > delays[0] * 1.2 and max(delays) <= services.BACKOFF_CAP * (1 + services.JITTER)
    assert len({round(services.backoff(3).total_seconds(), 3) for _ in range(20)}) > 1  # jitter
    # Retries cover about three days: the schedule's sum before giving up.
    total, n = 0.0, 0
    while total < services.RETRY_WINDOW.total_seconds():
        n += 1
        total += services.BACKOFF_BASE * 2 ** (n - 1) if n < 13 else services.BACKOFF_CAP
    assert 15 <= n <= 30

    Delivery.objects.filter(pk=delivery.pk).update(
        window_start=timezone.now() - services.RETRY_WINDOW, next_attempt_at=timezone.now()
    )
    services.deliveries_send_due()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2


def test_a_rotated_secret_signs_with_both_until_the_grace_ends(receiver, allow_private):
    hook = WebhookFactory(url=receiver.url)
    old = hook.secret
    admin = UserFactory(role="admin")
    from leadcrm.actors import Actor

    hook = services.webhook_rotate_secret(actor=Actor(admin, "user"), webhook_id=hook.pk)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    services.deliveries_send_due()
    [request] = receiver.requests
    signatures = {k.lower(): v for k, v in request.headers.items()}["webhook-signature"].split()
    assert len(signatures) == 2
    assert verify(hook.secret, request.headers, request.body) and verify(old, request.headers, request.body)
    Webhook.objects.filter(pk=hook.pk).update(previous_secret_expires_at=timezone.now())
    assert services.webhook_secrets(Webhook.objects.get(pk=hook.pk)) == [hook.secret]


def test_replay_sends_the_same_message_again(receiver, allow_private, auth_client, django_capture_on_commit_callbacks):
    hook = WebhookFactory(url=receiver.url)
    lead = LeadFactory()
    long_ago = timezone.now() - dt.timedelta(days=2)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", long_ago, lead)])
    services.deliveries_send_due()
    delivery = Delivery.objects.get(webhook=hook)
    assert delivery.status == DeliveryStatus.DELIVERED

    client = auth_client(hook.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/")
    assert response.status_code == 202, response.content
    assert len(receiver.requests) == 2
    assert receiver.requests[0].msg_id == receiver.requests[1].msg_id == delivery.msg_id
    assert receiver.requests[0].body == receiver.requests[1].body
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.replays == 1 and delivery.attempts == 2
    assert AuditEntry.objects.filter(action="webhook.delivery_replay", actor=hook.owner).count() == 1

    # A time range: only what was created inside it.
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o2", timezone.now(), lead)])
    services.deliveries_send_due()
    Delivery.objects.filter(msg_id=delivery.msg_id).update(created_at=long_ago)
    since, until = long_ago - dt.timedelta(hours=1), long_ago + dt.timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhooks/{hook.pk}/replay/", {"since": since, "until": until}, format="json")
    assert response.status_code == 202 and response.json() == {"replayed": 1}
    assert [r.msg_id for r in receiver.requests].count(delivery.msg_id) == 3
    assert len(receiver.requests) == 4

    bad = client.post(f"/api/v1/webhooks/{hook.pk}/replay/", {"since": until, "until": since}, format="json")
    assert bad.status_code == 400 and "until" in bad.json()
    Webhook.objects.filter(pk=hook.pk).update(active=False)
    off = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/")
    assert off.status_code == 409 and off.json()["guard"] == "webhook_inactive"


def test_the_delivery_log_shows_request_response_and_timing(receiver, allow_private, auth_client):
    receiver.script = [500]
    hook = WebhookFactory(url=receiver.url)
    services.deliveries_write(event=events.LEAD_CREATED, occurrences=[_occurrence("o1", timezone.now(), LeadFactory())])
    _send_until_done()
    client = auth_client(hook.owner)
    page = client.get(f"/api/v1/webhooks/{hook.pk}/deliveries/").json()
    [row] = page["results"]
    assert row["status"] == "delivered" and row["attempts"] == 2 and row["last_status_code"] == 200
    assert row["payload"]["type"] == "lead.created" and row["duration_ms"] is not None
    detail = client.get(f"/api/v1/webhook-deliveries/{row['id']}/").json()
    first, second = sorted(detail["attempt_log"], key=lambda a: a["number"])
    assert first["status_code"] == 500 and first["response_excerpt"] == "nope"
    assert second["status_code"] == 200 and second["response_excerpt"] == '{"ok": true}'
    assert first["request_headers"]["webhook-id"] == row["msg_id"]
    assert client.get(f"/api/v1/webhooks/{hook.pk}/deliveries/?status=failed").json()["results"] == []
    assert client.get(f"/api/v1/webhooks/{hook.pk}/deliveries/?status=bogus").status_code == 400

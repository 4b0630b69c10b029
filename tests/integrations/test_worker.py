"""End to end through a real Celery worker on a Redis database of its own (TEST_REDIS_DB):
leads created through the API → the outbox relays the `lead.created` reaction → the worker
writes the deliveries and sends them to a receiver on loopback, signed, once each."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from integrations import services
from integrations.models import Delivery, DeliveryStatus
from leadcrm import events
from tests import test_celery_worker
from tests.factories import LeadFactory, UserFactory, WebhookFactory
from tests.integrations.conftest import documented_verify

# The real worker on its own Redis database, as tests/test_celery_worker.py starts it.
redis_broker = test_celery_worker.redis_broker
celery_worker_process = test_celery_worker.celery_worker_process
app_on_redis = test_celery_worker.app_on_redis

pytestmark = pytest.mark.celery_worker
TIMEOUT = 60


@pytest.fixture
def worker_allows_loopback(monkeypatch, settings):
    """The worker (started after this) and this process may send to the loopback receiver."""
    monkeypatch.setenv("LEADCRM_WEBHOOK_ALLOW_PRIVATE", "true")
    settings.LEADCRM_WEBHOOK_ALLOW_PRIVATE = True


def _wait(condition, proc, log_path: str, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.2)
    with open(log_path) as fh:
        tail = fh.read()[-4000:]
    pytest.fail(f"{what} within {TIMEOUT}s (worker {'exited' if proc.poll() is not None else 'running'})\n{tail}")


def test_a_real_worker_delivers_the_events_of_leads_created_through_the_api(
    worker_allows_loopback,
    receiver,
    celery_worker_process,
    app_on_redis,
    auth_client,
):
    proc, log_path = celery_worker_process
    admin = UserFactory(role="admin")
    hook = WebhookFactory(url=receiver.url, events=[events.LEAD_CREATED], owner=admin)
    client = auth_client(admin)
    emails = [f"worker-hook-{n}@example.com" for n in range(5)]
    for email in emails:
        assert client.post("/api/v1/leads/", {"email": email}, format="json").status_code == 201

    _wait(lambda: len(receiver.accepted()) >= 5, proc, log_path, "the receiver did not get 5 messages")
    time.sleep(0.5)  # anything more would be a duplicate
    got = receiver.accepted()
    assert sorted(r.payload["data"]["lead"]["email"] for r in got) == emails
    assert len({r.msg_id for r in got}) == len(got) == 5
    verify = documented_verify()
    assert all(verify(hook.secret, r.headers, r.body) for r in got)
    _wait(
        lambda: Delivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count() == 5,
        proc,
        log_path,
        "the deliveries were not marked delivered",
    )


def test_a_real_worker_sends_a_backlog_asked_over_redis(
    worker_allows_loopback,
    receiver,
    celery_worker_process,
    app_on_redis,
):
    from integrations.tasks import deliveries_send_due

    proc, log_path = celery_worker_process
    hook = WebhookFactory(url=receiver.url)
    leads = [LeadFactory() for _ in range(300)]
    occurrence = services.Occurrence("backlog", timezone.now(), [lead.pk for lead in leads])
    assert services.deliveries_write(event=events.LEAD_CREATED, occurrences=[occurrence]) == 300
    deliveries_send_due.delay()
    _wait(
        lambda: Delivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count() == 300,
        proc,
        log_path,
        "the backlog was not delivered",
    )
    ids = [r.msg_id for r in receiver.accepted()]
    assert len(ids) == len(set(ids)) == 300

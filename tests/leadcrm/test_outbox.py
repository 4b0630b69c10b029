"""The outbox: reactions survive a dead broker and are sent once it is back, coalesced."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.utils import timezone

from leadcrm import events, outbox
from leadcrm.models import OutboxMessage


class _Broker:
    """Stands in for the broker at the outbox's publish step: up or down, recording sends."""

    def __init__(self, real):
        self.real, self.up, self.sent = real, True, []

    def __call__(self, task, kwargs, ids):
        if not self.up:
            raise ConnectionRefusedError("broker down")
        self.sent.append((task, kwargs))
        self.real(task, kwargs, ids)


@pytest.fixture
def broker(monkeypatch):
    fake = _Broker(outbox._publish)
    monkeypatch.setattr(outbox, "_publish", fake)
    return fake


def test_coalesce_merges_lead_ids_of_the_same_call():
    rows = [
        (1, "scoring.tasks.leads_rescore", {"lead_ids": [1, 2]}),
        (2, "scoring.tasks.leads_rescore", {"lead_ids": [2, 3]}),
        (3, "scoring.tasks.leads_rescore", {"lead_ids": [4], "cause": "lead.created"}),
        (4, "routing.tasks.sla_first_touch", {"lead_ids": [1]}),
    ]
    calls = {
        (task, tuple(sorted(k for k in kw if k != "lead_ids"))): (kw["lead_ids"], ids)
        for task, kw, ids in outbox._coalesce(rows)
    }
    assert calls[("scoring.tasks.leads_rescore", ())] == ([1, 2, 3], [1, 2])
    assert calls[("scoring.tasks.leads_rescore", ("cause",))] == ([4], [3])
    assert calls[("routing.tasks.sla_first_touch", ())] == ([1], [4])


def test_backoff_doubles_up_to_a_minute():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 7, 20)] == [1, 2, 4, 60, 60]


@pytest.mark.django_db
def test_creates_succeed_while_the_broker_is_down_and_react_once_it_is_back(
    broker, make_user, auth_client, django_capture_on_commit_callbacks
):
    from leads.models import Lead

    client = auth_client(make_user("admin"))
    broker.up = False
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/api/v1/leads/", {"email": f"down{i}@example.com"}).status_code == 201
    pending = OutboxMessage.objects.filter(sent_at__isnull=True)
    assert pending.count() >= 3 and all(m.attempts == 1 and "broker down" in m.last_error for m in pending)
    assert broker.sent == []

    owed = set(pending.values_list("pk", flat=True))
    broker.up = True
    pending.update(available_at=timezone.now() - dt.timedelta(seconds=1))
    result = outbox.relay()
    assert result.failed == 0 and result.sent >= 3
    # what was owed is sent (the reactions' own events, e.g. lead.scored, are new rows)
    assert not OutboxMessage.objects.filter(pk__in=owed, sent_at__isnull=True).exists()
    rescored = {i for task, kw in broker.sent if task == "scoring.tasks.leads_rescore" for i in kw["lead_ids"]}
    assert rescored >= set(Lead.objects.values_list("pk", flat=True))
    sent_once = len(broker.sent)
    OutboxMessage.objects.filter(pk__in=owed).update(available_at=timezone.now() - dt.timedelta(seconds=1))
    outbox.relay()
    assert not any(kw.get("lead_ids") and task == "scoring.tasks.leads_rescore" for task, kw in broker.sent[sent_once:])


@pytest.mark.django_db
def test_a_recapture_rescores_the_lead_once(broker, make_user, django_capture_on_commit_callbacks):
    from leadcrm.actors import Actor
    from leads.services import lead_capture

    actor = Actor(make_user("admin"), "api")
    lead, _ = lead_capture(data={"email": "again@example.com"}, actor=actor)
    broker.sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lead_capture(data={"email": "again@example.com", "job_title": "CTO"}, actor=actor)
    rescores = [kw for task, kw in broker.sent if task == "scoring.tasks.leads_rescore"]
    assert len(rescores) == 1 and rescores[0]["lead_ids"] == [lead.pk]


@pytest.fixture
def lost_broker(monkeypatch):
    """A broker that takes every message and runs none (they are lost before a worker gets
    them: a Redis restarted without persistence, a worker killed with kill -9)."""
    sent: list[tuple[str, dict, list[int]]] = []
    # One reaction to a capture (its first, the rescore), so that one capture is one row.
    monkeypatch.setitem(events.REACTIONS, events.LEAD_CREATED, events.REACTIONS[events.LEAD_CREATED][:1])
    monkeypatch.setattr(outbox, "_publish", lambda task, kwargs, ids: sent.append((task, kwargs, ids)))
    monkeypatch.setattr(outbox, "_eager", lambda: False)
    return sent


def _due_now(ids) -> None:
    OutboxMessage.objects.filter(pk__in=ids).update(available_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.mark.django_db
def test_a_sent_reaction_never_confirmed_is_sent_again_until_a_worker_runs_it(
    lost_broker, settings, django_capture_on_commit_callbacks
):
    from leadcrm.actors import Actor
    from leads.services import lead_capture

    settings.LEADCRM_OUTBOX_CONFIRM_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True):
        lead_capture(data={"email": "lost@example.com"}, actor=Actor.automation())
    [(task, kwargs, ids)] = lost_broker
    row = OutboxMessage.objects.get(pk=ids[0])
    assert (task, row.deliveries, row.done_at) == ("scoring.tasks.leads_rescore", 1, None)
    assert row.available_at - row.sent_at == dt.timedelta(seconds=60)  # the deadline of its confirmation
    assert outbox.relay().sent == 0  # not late yet: left alone
    assert outbox.pending_count() == 1

    _due_now(ids)
    assert outbox.relay().sent == 1 and lost_broker[-1] == (task, kwargs, ids)  # the same message again
    row.refresh_from_db()
    assert row.deliveries == 2 and row.available_at - row.sent_at == dt.timedelta(seconds=120)  # doubled

    outbox.confirm(ids)  # a worker ran it
    _due_now(ids)
    assert outbox.relay().sent == 0 and len(lost_broker) == 2
    assert outbox.pending_count() == 0


@pytest.mark.django_db
def test_a_reaction_never_confirmed_is_given_up_after_max_deliveries(lost_broker, django_capture_on_commit_callbacks):
    from leadcrm.actors import Actor
    from leads.services import lead_capture

    with django_capture_on_commit_callbacks(execute=True):
        lead_capture(data={"email": "spent@example.com"}, actor=Actor.automation())
    [(_, _, ids)] = lost_broker
    OutboxMessage.objects.filter(pk__in=ids).update(deliveries=outbox.MAX_DELIVERIES)
    _due_now(ids)
    assert outbox.relay().sent == 0 and len(lost_broker) == 1
    row = OutboxMessage.objects.get(pk=ids[0])
    assert row.done_at is not None and "Never confirmed" in row.last_error


@pytest.mark.django_db
def test_the_task_that_ran_confirms_its_rows():
    """Celery's task_postrun (leadcrm.celery): the rows named in the message's header are done."""
    from scoring.tasks import leads_rescore

    now = timezone.now()
    row = OutboxMessage.objects.create(
        event="lead.updated", task="scoring.tasks.leads_rescore", payload={"lead_ids": [1]},
        created_at=now, available_at=now, sent_at=now, deliveries=1,
    )  # fmt: skip
    leads_rescore.apply(kwargs={"lead_ids": []}, headers={"outbox_ids": [row.pk]})
    row.refresh_from_db()
    assert row.done_at is not None


@pytest.mark.django_db
def test_a_long_task_is_confirmed_when_it_starts(monkeypatch):
    """A full rescore (`outbox_confirm="start"`) would otherwise be sent again while it runs."""
    from scoring import services, tasks

    now = timezone.now()
    row = OutboxMessage.objects.create(
        event="job.requested", task="scoring.tasks.leads_rescore_all", payload={},
        created_at=now, available_at=now, sent_at=now, deliveries=1,
    )  # fmt: skip
    seen = []

    def start(**kw):  # (the task now asks for the rescore job, the runner owns the long run)
        seen.append(OutboxMessage.objects.get(pk=row.pk).done_at)
        return SimpleNamespace(job=SimpleNamespace(pk=1))

    monkeypatch.setattr(services, "rescore_start", start)
    tasks.leads_rescore_all.apply(kwargs={}, headers={"outbox_ids": [row.pk]})
    assert seen and seen[0] is not None  # done before the rescore ran

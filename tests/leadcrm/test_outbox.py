"""The outbox: reactions survive a dead broker and are sent once it is back, coalesced."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadcrm import outbox
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
    from leads.services import Actor, lead_capture

    actor = Actor(make_user("admin"), "api")
    lead, _ = lead_capture(data={"email": "again@example.com"}, actor=actor)
    broker.sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        lead_capture(data={"email": "again@example.com", "job_title": "CTO"}, actor=actor)
    rescores = [kw for task, kw in broker.sent if task == "scoring.tasks.leads_rescore"]
    assert len(rescores) == 1 and rescores[0]["lead_ids"] == [lead.pk]

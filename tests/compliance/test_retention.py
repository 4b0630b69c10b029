"""The retention rule: leads inactive for more than N months are erased in chunks, each
chunk committed and audited on its own, a run cut short resumed by the next; off by default."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from compliance import services, tasks
from compliance.models import Erasure
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry
from leads.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_and_new():
    now = timezone.now()
    old = [Lead.objects.create(email=f"old{i}@example.org", first_name=f"Old{i}") for i in range(5)]
    Lead.objects.filter(pk__in=[lead.pk for lead in old[:3]]).update(last_activity_at=now - dt.timedelta(days=400))
    # never active: judged by creation
    Lead.objects.filter(pk__in=[lead.pk for lead in old[3:]]).update(created_at=now - dt.timedelta(days=400))
    recent = Lead.objects.create(email="recent@example.org")
    active = Lead.objects.create(email="active@example.org", last_activity_at=now - dt.timedelta(days=10))
    Lead.objects.filter(pk=active.pk).update(created_at=now - dt.timedelta(days=900))
    return old, [recent, active]


def test_off_by_default(old_and_new, settings):
    assert settings.LEADCRM_RETENTION_INACTIVE_MONTHS == 0
    assert tasks.retention_purge() == {"months": 0, "erased": 0, "chunks": 0, "more": False}
    assert not Erasure.objects.exists()


def test_purge_runs_in_chunks_and_resumes(old_and_new, settings):
    old, kept = old_and_new
    settings.LEADCRM_RETENTION_INACTIVE_MONTHS = 12
    actor = Actor.automation()
    first = services.leads_retention_purge(actor=actor, chunk=2, max_chunks=1)
    assert (first.erased, first.chunks, first.more) == (2, 1, True)
    second = services.leads_retention_purge(actor=actor, chunk=2, max_chunks=5)
    assert (second.erased, second.chunks, second.more) == (3, 2, False)
    assert set(Erasure.objects.values_list("lead_id", flat=True)) == {lead.pk for lead in old}
    assert not Erasure.objects.filter(lead__in=kept).exists()
    assert set(Lead.objects.filter(pk__in=[k.pk for k in kept]).values_list("email", flat=True)) == {
        "recent@example.org",
        "active@example.org",
    }
    purges = AuditEntry.objects.filter(action="compliance.retention_purge").order_by("id")
    assert [p.details["erased"] for p in purges] == [2, 2, 1]
    assert AuditEntry.objects.filter(action="compliance.erase").count() == 5
    assert services.leads_retention_purge(actor=actor, chunk=2).erased == 0


def test_a_failed_chunk_leaves_the_committed_ones_and_the_next_run_continues(old_and_new, settings, monkeypatch):
    old, _ = old_and_new
    settings.LEADCRM_RETENTION_INACTIVE_MONTHS = 12
    settings.LEADCRM_RETENTION_CHUNK = 2
    real = services.leads_erase
    calls = []

    def flaky(**kwargs):
        calls.append(kwargs["lead_ids"])
        if len(calls) == 2:
            raise RuntimeError("worker died")
        return real(**kwargs)

    monkeypatch.setattr(services, "leads_erase", flaky)
    with pytest.raises(RuntimeError):
        tasks.retention_purge.run()
    assert Erasure.objects.count() == 2  # the first chunk committed, the second rolled back
    assert AuditEntry.objects.filter(action="compliance.retention_purge").count() == 1
    monkeypatch.setattr(services, "leads_erase", real)
    assert tasks.retention_purge.run()["erased"] == 3
    assert set(Erasure.objects.values_list("lead_id", flat=True)) == {lead.pk for lead in old}

"""The CSV import as a resumable job: interrupted after a chunk, it continues at the next one,
each line imported once, the ImportJob's counts right; failing for good reaches the page."""

from __future__ import annotations

import pytest

from accounts.models import Role
from leadcrm import jobs
from leadcrm.models import Job, JobStatus
from leads import imports, services
from leads.models import ImportStatus, Lead, Touchpoint
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def _csv(n: int) -> bytes:
    return ("Email,First name\n" + "".join(f"row{i}@example.com,R{i}\n" for i in range(n))).encode()


@pytest.fixture
def upload(monkeypatch):
    monkeypatch.setattr(imports, "CHUNK", 100)
    user = UserFactory(role=Role.MARKETING)
    LeadFactory(email="row5@example.com")  # one existing lead: updated, not created
    job = imports.import_job_create(data=_csv(450) + b"not-an-email,X\n", filename="x.csv", user=user)
    return job


def _start(job, dry_run=False):
    imports.import_job_start(job_id=job.pk, mapping={"Email": "email", "First name": "first_name"}, dry_run=dry_run)
    return Job.objects.get(kind="leads.import", params__import_id=job.pk, status=JobStatus.QUEUED)


def test_import_interrupted_after_a_chunk_resumes_at_the_next(upload, monkeypatch):
    run = _start(upload)
    calls = []
    original = services.leads_bulk_upsert

    def flaky(*, rows, actor, **kw):
        calls.append(rows[0][0])
        if len(calls) == 3:
            raise ConnectionError("database connection lost")
        return original(rows=rows, actor=actor, **kw)

    monkeypatch.setattr(services, "leads_bulk_upsert", flaky)
    left = jobs.job_run(run.pk)
    assert left.status == JobStatus.QUEUED and left.cursor == {"row": 200}
    upload.refresh_from_db()
    assert (upload.processed_rows, upload.created_count, upload.updated_count) == (200, 199, 1)
    done = jobs.job_run(run.pk)
    assert done.status == JobStatus.DONE
    assert calls == [2, 102, 202, 202, 302, 402]  # first line numbers: chunk 3 again, not chunk 1
    upload.refresh_from_db()
    assert upload.status == ImportStatus.DONE and upload.finished_at is not None
    assert (upload.processed_rows, upload.created_count, upload.updated_count, upload.failed_count) == (451, 449, 1, 1)
    assert done.counts == {
        "processed_rows": 451,
        "created_count": 449,
        "updated_count": 1,
        "recorded_count": 0,
        "failed_count": 1,
    }
    assert Lead.objects.count() == 450
    assert (
        Touchpoint.objects.filter(type="capture").count()
        == Touchpoint.objects.filter(type="capture").values("lead").distinct().count()
    )
    assert [e["line"] for e in upload.errors] == [452]


def test_import_already_queued_is_not_started_twice(upload):
    _start(upload)
    with pytest.raises(imports.ServiceError):
        _start(upload)


def test_import_failing_for_good_reaches_the_page(upload, monkeypatch):
    run = _start(upload)
    monkeypatch.setattr(services, "leads_bulk_upsert", lambda **kw: (_ for _ in ()).throw(RuntimeError("disk full")))
    for _ in range(jobs.MAX_ATTEMPTS):
        jobs.job_run(run.pk)
    upload.refresh_from_db()
    assert upload.status == ImportStatus.FAILED and upload.message == "disk full"
    assert Job.objects.get(pk=run.pk).status == JobStatus.FAILED


def test_a_dry_run_counts_what_the_import_would_do_and_keeps_nothing(upload):
    """Created, updated and recorded as the real import will count them; no lead, touchpoint,
    audit entry or reaction is left behind."""
    from leadcrm.models import AuditEntry, OutboxMessage
    from tests.factories import TeamFactory

    seller = UserFactory(role=Role.SDR, team=TeamFactory())
    LeadFactory(email="row7@example.com", owner=seller, team=seller.team)
    sdr = UserFactory(role=Role.SDR, team=TeamFactory())  # sees neither row5 nor row7's owner
    upload.created_by = sdr
    upload.save(update_fields=["created_by"])

    def held():
        return [model.objects.count() for model in (Lead, Touchpoint, AuditEntry, OutboxMessage)]

    before = held()
    jobs.job_run(_start(upload, dry_run=True).pk)
    upload.refresh_from_db()
    assert upload.status == ImportStatus.DONE and upload.dry_run
    counts = (upload.created_count, upload.updated_count, upload.recorded_count, upload.failed_count)
    assert counts == (448, 0, 2, 1)  # row5 and row7 belong to leads the SDR cannot see
    assert held() == before

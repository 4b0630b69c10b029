"""CSV import jobs (services): create a job from an upload, set its mapping, run it.

The run is a resumable job (`leadcrm.jobs`, kind "leads.import"): it validates every line
with the shared row validator and writes the good ones with `leads.services.leads_bulk_upsert`,
one chunk per transaction, with the progress, the error report and the job's cursor in that
transaction, so the page's progress bar follows it and a killed worker's run continues from
the last committed chunk.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from leadcrm import uploads
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from leadcrm.models import Job, JobStatus
from leads import csv_import, services
from leads.models import ImportJob, ImportStatus

CHUNK = 1000  # ~0.3 s of writes: well under the job heartbeat's stale threshold
IMPORT_KIND = "leads.import"
MAX_ERRORS = 50_000


def import_job_create(*, data: bytes, filename: str, user: User) -> ImportJob:
    if not data:
        raise ServiceError({"file": ["The file is empty."]})
    if len(data) > uploads.upload_limit():
        raise ServiceError({"file": [uploads.too_big_message()]})
    parsed = _parse(data)
    if not parsed.headers:
        raise ServiceError({"file": ["No header line found."]})
    if not parsed.rows:
        raise ServiceError({"file": ["The file has a header line but no lead lines."]})
    return ImportJob.objects.create(
        created_by=user,
        filename=filename[:255],
        data=data,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        mapping=csv_import.guess_mapping(parsed.headers),
        total_rows=len(parsed.rows),
    )


def _parse(data: bytes, **kwargs) -> csv_import.ParsedFile:
    """A file that cannot be read is bad input: a form or field error, and a job that meets
    one fails for good with the message (leadcrm.jobs does not retry a ServiceError)."""
    try:
        return csv_import.parse(data, **kwargs)
    except csv_import.BadFile as exc:
        raise ServiceError({"file": [str(exc)]}) from exc


def _unfinished_job(import_id: int):
    return (
        Job.objects.filter(
            kind=IMPORT_KIND, params__import_id=import_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        )
        .order_by("-pk")
        .first()
    )


def import_job_start(*, job_id: int, mapping: dict[str, str], dry_run: bool) -> ImportJob:
    """Save the mapping and queue the run: a resumable job (leadcrm.jobs), sent after commit."""
    from leadcrm import jobs

    problems = csv_import.mapping_errors(mapping)
    if problems:
        raise ServiceError({"mapping": problems})
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status == ImportStatus.RUNNING or _unfinished_job(job.pk) is not None:
            raise ServiceError({"status": ["This import is already running."]})
        job.mapping, job.dry_run, job.status = mapping, dry_run, ImportStatus.PENDING
        job.processed_rows = job.created_count = job.updated_count = job.recorded_count = job.failed_count = 0
        job.errors, job.message, job.finished_at = [], "", None
        job.save()
        jobs.job_create(kind=IMPORT_KIND, params={"import_id": job.pk}, created_by=job.created_by)
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run (or continue) this import's job here and now (tests, a task sent before jobs)."""
    from leadcrm import jobs

    run = _unfinished_job(job_id)
    if run is not None:
        jobs.job_run(run.pk)
    return ImportJob.objects.get(pk=job_id)


def import_job_chunks(ctx) -> None:
    """The job's chunk loop: CHUNK lines per transaction, with the ImportJob's counts and
    error report and the job's cursor (the next line's index) advanced in that transaction.
    A run continues from the cursor: a line is imported once, the counts stay right."""
    import_id = ctx.params["import_id"]
    job = ImportJob.objects.get(pk=import_id)
    ImportJob.objects.filter(pk=import_id).update(status=ImportStatus.RUNNING)
    actor = Actor(job.created_by, ActorType.IMPORT)
    parsed = _parse(bytes(job.data), encoding=job.encoding, delimiter=job.delimiter)
    ctx.beat()  # parsing a large file takes a while: still alive
    start = int(ctx.cursor.get("row", 0))
    while start < len(parsed.rows):
        chunk = parsed.rows[start : start + CHUNK]
        counts = {"processed_rows": 0, "created_count": 0, "updated_count": 0, "recorded_count": 0, "failed_count": 0}
        errors: list[dict] = []
        good: list[tuple[int, dict]] = []
        for line, cells in chunk:
            result = csv_import.validate_line(line, parsed.headers, cells, job.mapping)
            if result.errors:
                counts["failed_count"] += 1
                errors.extend(result.errors)
            else:
                good.append((line, result.clean))
        with transaction.atomic():
            if good:
                for status in _upsert(good, actor, dry_run=job.dry_run):
                    # "recorded": a lead the importer cannot see, kept as a touchpoint, unchanged
                    counts[f"{status}_count"] += 1
            counts["processed_rows"] = len(chunk)
            fields = {name: F(name) + n for name, n in counts.items()}
            if errors:
                stored = ImportJob.objects.select_for_update().values_list("errors", flat=True).get(pk=import_id)
                fields["errors"] = stored + errors[: max(0, MAX_ERRORS - len(stored))]
            ImportJob.objects.filter(pk=import_id).update(**fields)
            ctx.commit_chunk(cursor={"row": start + len(chunk)}, counts=counts)
        start += len(chunk)


def _upsert(rows: list[tuple[int, dict]], actor, *, dry_run: bool) -> list[str]:
    """Each row's outcome (created, updated, recorded). A dry run does the very same upsert in
    a savepoint rolled back at once, so it counts what the import would do (an e-mail already
    known is an update, not a creation), and nothing of it (rows, audit, reactions) stays."""
    savepoint = transaction.savepoint() if dry_run else None
    try:
        return [r.status for r in services.leads_bulk_upsert(rows=rows, actor=actor)]
    finally:
        if savepoint is not None:
            transaction.savepoint_rollback(savepoint)


def import_job_done(run) -> None:
    ImportJob.objects.filter(pk=run.params["import_id"]).update(status=ImportStatus.DONE, finished_at=timezone.now())


def import_job_failed(run) -> None:
    ImportJob.objects.filter(pk=run.params["import_id"]).update(
        status=ImportStatus.FAILED, message=run.error[:2000], finished_at=timezone.now()
    )

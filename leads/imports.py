"""CSV import jobs (services): create a job from an upload, set its mapping, run it.

The run validates every line with the shared row validator and writes the good ones with
`leads.services.leads_bulk_upsert`, one chunk at a time, saving the progress and the error
report as it goes, so the page's progress bar follows it.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from leadcrm.errors import ServiceError
from leads import csv_import, services
from leads.models import ActorType, ImportJob, ImportStatus

CHUNK = 1000
MAX_BYTES = 20 * 1024 * 1024
MAX_ERRORS = 50_000


def import_job_create(*, data: bytes, filename: str, user: User) -> ImportJob:
    if not data:
        raise ServiceError({"file": ["The file is empty."]})
    if len(data) > MAX_BYTES:
        raise ServiceError({"file": [f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB."]})
    parsed = csv_import.parse(data)
    if not parsed.headers:
        raise ServiceError({"file": ["No header line found."]})
    return ImportJob.objects.create(
        created_by=user,
        filename=filename[:255],
        data=data,
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        mapping=csv_import.guess_mapping(parsed.headers),
        total_rows=len(parsed.rows),
    )


def import_job_start(*, job_id: int, mapping: dict[str, str], dry_run: bool) -> ImportJob:
    """Save the mapping and queue the run (after commit)."""
    from leads.tasks import import_run

    problems = csv_import.mapping_errors(mapping)
    if problems:
        raise ServiceError({"mapping": problems})
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status == ImportStatus.RUNNING:
            raise ServiceError({"status": ["This import is already running."]})
        job.mapping, job.dry_run, job.status = mapping, dry_run, ImportStatus.PENDING
        job.processed_rows = job.created_count = job.updated_count = job.failed_count = 0
        job.errors, job.message, job.finished_at = [], "", None
        job.save()
        transaction.on_commit(lambda: import_run.delay(job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    job = ImportJob.objects.get(pk=job_id)
    ImportJob.objects.filter(pk=job_id).update(status=ImportStatus.RUNNING)
    actor = services.Actor(job.created_by, ActorType.IMPORT)
    parsed = csv_import.parse(bytes(job.data), encoding=job.encoding, delimiter=job.delimiter)
    counts = {"processed_rows": 0, "created_count": 0, "updated_count": 0, "failed_count": 0}
    errors: list[dict] = []
    try:
        for start in range(0, len(parsed.rows), CHUNK):
            chunk = parsed.rows[start : start + CHUNK]
            good: list[tuple[int, dict]] = []
            for line, cells in chunk:
                result = csv_import.validate_line(line, parsed.headers, cells, job.mapping)
                if result.errors:
                    counts["failed_count"] += 1
                    if len(errors) < MAX_ERRORS:
                        errors.extend(result.errors)
                else:
                    good.append((line, result.clean))
            if good and not job.dry_run:
                for r in services.leads_bulk_upsert(rows=good, actor=actor):
                    counts["created_count" if r.status == "created" else "updated_count"] += 1
            elif good:
                counts["created_count"] += len(good)  # a dry run counts what would be written
            counts["processed_rows"] += len(chunk)
            ImportJob.objects.filter(pk=job_id).update(**counts, errors=errors)
    except Exception as exc:  # the report says what happened; the lines written stay written
        ImportJob.objects.filter(pk=job_id).update(
            status=ImportStatus.FAILED, message=str(exc)[:2000], finished_at=timezone.now(), errors=errors
        )
        raise
    ImportJob.objects.filter(pk=job_id).update(
        status=ImportStatus.DONE, finished_at=timezone.now(), total_rows=len(parsed.rows), **counts
    )
    job.refresh_from_db()
    return job

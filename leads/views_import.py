"""CSV import pages (marketing and admins): upload, mapping and preview, dry run or import in
the background with a progress bar, and the error report as CSV."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from leadcrm.errors import ServiceError
from leads import csv_import, imports
from leads.exports import csv_response
from leads.models import ImportJob, ImportStatus

PREVIEW_LINES = 10


def _may_import(user) -> bool:
    return user.is_authenticated and user.sees_all_leads


def _job(request: HttpRequest, pk: int) -> ImportJob:
    if not _may_import(request.user):
        raise PermissionDenied
    qs = ImportJob.objects.defer("data")
    if not request.user.is_admin_role:
        qs = qs.filter(created_by=request.user)
    return get_object_or_404(qs, pk=pk)


def _parsed(request: HttpRequest, job: ImportJob) -> csv_import.ParsedFile | None:
    """The stored file split again; None (and the reason shown) for a file stored before
    the import learnt to refuse it at upload."""
    data = ImportJob.objects.values_list("data", flat=True).get(pk=job.pk)
    try:
        return csv_import.parse(bytes(data), encoding=job.encoding, delimiter=job.delimiter)
    except csv_import.BadFile as exc:
        messages.error(request, str(exc))
        return None


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    if not _may_import(request.user):
        raise PermissionDenied
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        status = 400  # a refused file: the page again, with the reason
        if upload is None:
            messages.error(request, _("Choose a CSV file."))
        else:
            try:
                job = imports.import_job_create(data=upload.read(), filename=upload.name, user=request.user)
                return redirect("import-detail", pk=job.pk)
            except ServiceError as exc:
                messages.error(request, " ".join(m for msgs in exc.errors.values() for m in msgs))
    jobs = ImportJob.objects.defer("data", "errors").select_related("created_by")
    if not request.user.is_admin_role:
        jobs = jobs.filter(created_by=request.user)
    return render(request, "leads/import_upload.html", {"jobs": jobs[:20]}, status=status)


@login_required
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    if request.method == "POST":
        if job.status == ImportStatus.DONE and not job.dry_run:
            messages.error(request, _("This file was already imported."))
            return redirect("import-detail", pk=job.pk)
        parsed = _parsed(request, job)
        if parsed is None:
            return redirect("import-detail", pk=job.pk)
        mapping = {}
        for i, header in enumerate(parsed.headers):
            target = request.POST.get(f"col_{i}", "")
            if target == "__property__":
                target = csv_import.PROPERTIES_PREFIX + csv_import.property_key(header)
            mapping[header] = target
        try:
            imports.import_job_start(job_id=job.pk, mapping=mapping, dry_run=request.POST.get("action") == "dry_run")
        except ServiceError:
            messages.error(request, _("Map one column to the e-mail: it is required."))
        return redirect("import-detail", pk=job.pk)

    context = {"job": job, "fields": csv_import.FIELDS}
    if job.status == ImportStatus.PENDING or (job.status == ImportStatus.DONE and job.dry_run):
        parsed = _parsed(request, job) or csv_import.ParsedFile(job.encoding, job.delimiter, [], [])
        preview = []
        for line, cells in parsed.rows[:PREVIEW_LINES]:
            result = csv_import.validate_line(line, parsed.headers, cells, job.mapping)
            preview.append({"line": line, "cells": cells[: len(parsed.headers)], "errors": result.errors})
        columns = []
        for i, header in enumerate(parsed.headers):
            target = job.mapping.get(header, "")
            columns.append(
                {
                    "index": i,
                    "header": header,
                    "target": "__property__" if target.startswith(csv_import.PROPERTIES_PREFIX) else target,
                    "property": csv_import.property_key(header),
                }
            )
        context.update(columns=columns, preview=preview)
    return render(request, "leads/import_detail.html", context)


@login_required
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    response = render(request, "leads/_import_progress.html", {"job": job})
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED) and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"  # the page then shows the error table and the report link
    return response


@login_required
def import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job(request, pk)
    rows = ([e["line"], e["column"], e["message"]] for e in job.errors)
    return csv_response(f"import-{job.pk}-errors.csv", ["line", "column", "message"], rows)

"""CSV files that cannot be read answer a clear error naming the line (a form error on the
upload page, a failed job with the message in the runner), never a 500 nor a job left
"running"; lines naming a lead the importer cannot see are counted as "recorded" (issue 14)."""

from __future__ import annotations

import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from leadcrm.models import Job, JobStatus
from leads import imports
from leads.models import ImportJob, ImportStatus, Lead
from tests.factories import LeadFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

_noise = random.Random(14)
BINARY = bytes(_noise.randrange(256) for _ in range(20_000))
ZIP_LIKE = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + BINARY

REFUSED = {
    "binary": (BINARY, "not a CSV text file"),
    "xlsx": (ZIP_LIKE, "not a CSV text file"),
    "nul-in-header": (b"email,fi\x00rst name\na@example.com,Al\n", "Line 1: the header"),
    "huge-field": (b"email,notes\na@example.com,ok\nb@x.com," + b"x" * 140_000 + b"\n", "Line 3: a cell is longer"),
    "huge-quoted-field": (b'email,notes\na@example.com,"' + b"x" * 140_000 + b'"\n', "Line 2: a cell is longer"),
    "unterminated-quote": (b'email,notes\na@example.com,"open\nb@example.com,x\n', "Line 2: a quoted cell is never"),
    "empty": (b"", "The file is empty."),
    "blank-lines-only": (b"\n\n \n", "No header line found."),
    "header-only": (b"email,first name\n", "header line but no lead lines"),
}


def _upload(client, data: bytes):
    return client.post("/import/", {"file": SimpleUploadedFile("leads.csv", data, "text/csv")})


@pytest.mark.parametrize("name", REFUSED)
def test_unreadable_file_is_a_form_error_naming_the_line(browser, name):
    data, message = REFUSED[name]
    r = _upload(browser, data)
    assert r.status_code == 400
    assert message in r.content.decode()
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    "data,encoding,first_name",
    [
        (b"\xef\xbb\xbfemail,first name\na@example.com,Zo\xc3\xa9\n", "utf-8-sig", "Zoé"),
        (b"email,first name\na@example.com,Zo\xe9\n", "cp1252", "Zoé"),  # invalid UTF-8: Windows-1252
        (b"email,first name\na@example.com,\x81\x8d\xe9\n", "latin-1", "\x81\x8dé"),  # not cp1252 either
        ("email,first name\na@example.com,Zoé\n".encode("utf-16"), "utf-16", "Zoé"),
    ],
    ids=["bom", "invalid-utf8", "latin-1", "utf-16-bom"],
)
def test_encodings_are_read_not_refused(browser, django_capture_on_commit_callbacks, data, encoding, first_name):
    r = _upload(browser, data)
    assert r.status_code == 302, r.content[:300]
    job = ImportJob.objects.get()
    assert job.encoding == encoding and job.mapping["email"] == "email"
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_start(job_id=job.pk, mapping=job.mapping, dry_run=False)
    assert Lead.objects.get().first_name == first_name


def test_nul_or_control_characters_in_a_cell_refuse_that_line_only(browser, django_capture_on_commit_callbacks):
    data = b"email,first name,plan\na@example.com,A\x00l,pro\nb@example.com,Bo,f\x00ree\nc@example.com,C\x07y,x\n"
    assert _upload(browser, data).status_code == 302
    job = ImportJob.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_start(job_id=job.pk, mapping=job.mapping, dry_run=False)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.failed_count) == (1, 2)
    assert {(e["line"], e["column"]) for e in job.errors} == {(2, "first name"), (3, "plan")}
    assert "NUL" in job.errors[0]["message"]
    assert list(Lead.objects.values_list("email", flat=True)) == ["c@example.com"]


def test_a_stored_file_that_cannot_be_read_fails_its_job_with_the_line(browser):
    """A file stored before the upload refused it: the job fails for good with a readable
    message (not retried, not left running), and the pages still answer."""
    job = ImportJob.objects.create(
        created_by=UserFactory(role=Role.MARKETING),
        filename="old.csv",
        data=b'email,notes\na@example.com,"never closed\n',
        encoding="utf-8-sig",
        delimiter=",",
        mapping={"email": "email", "notes": "properties.notes"},
        total_rows=1,
    )
    imports.import_job_start(job_id=job.pk, mapping=job.mapping, dry_run=False)
    imports.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.message == 'Line 2: a quoted cell is never closed (a " is missing).'
    assert Job.objects.get(params__import_id=job.pk).status == JobStatus.FAILED
    assert browser.get(f"/import/{job.pk}/").status_code == 200
    assert browser.get(f"/import/{job.pk}/progress/").status_code == 200
    r = browser.post(f"/import/{job.pk}/", {"col_0": "email", "action": "import"})
    assert r.status_code == 302


def test_an_encoding_the_stored_file_does_not_match_fails_the_job():
    job = ImportJob.objects.create(
        created_by=UserFactory(role=Role.MARKETING),
        filename="x.csv",
        data=b"email\n\xff@example.com\n",
        encoding="utf-8",
        delimiter=",",
        mapping={"email": "email"},
    )
    imports.import_job_start(job_id=job.pk, mapping=job.mapping, dry_run=False)
    imports.import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "not valid utf-8" in job.message


# --- rows of a lead the importer cannot see ----------------------------------------------------


def test_lines_of_leads_the_importer_cannot_see_are_counted_as_recorded(client, django_capture_on_commit_callbacks):
    """The importer (an SDR here: their rights are those of the day the job runs) cannot see
    another team's lead: its line is kept as a touchpoint, the lead unchanged, and counted
    as recorded, not as updated."""
    team, other = TeamFactory(name="A"), TeamFactory(name="B")
    importer = UserFactory(role=Role.SDR, team=team)
    hidden = LeadFactory(email="hidden@example.com", first_name="Kept", owner=UserFactory(role=Role.SDR, team=other))
    LeadFactory(email="mine@example.com", first_name="Old", owner=importer)
    data = b"email,first name\nhidden@example.com,Mallory\nmine@example.com,New\nfresh@example.com,Bob\n"
    job = imports.import_job_create(data=data, filename="x.csv", user=importer)
    with django_capture_on_commit_callbacks(execute=True):
        imports.import_job_start(job_id=job.pk, mapping=job.mapping, dry_run=False)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert (job.created_count, job.updated_count, job.recorded_count, job.failed_count) == (1, 1, 1, 0)
    assert Job.objects.get(params__import_id=job.pk).counts["recorded_count"] == 1
    hidden.refresh_from_db()
    assert hidden.first_name == "Kept"

    importer.role, importer.team = Role.MARKETING, None  # the page is marketing's
    importer.save(update_fields=["role", "team"])
    client.force_login(importer)
    page = client.get(f"/import/{job.pk}/progress/").content.decode()
    assert 'data-count="recorded">1<' in page and 'data-count="updated">1<' in page

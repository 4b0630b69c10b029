"""CSV import: the parser on messy files, then upload → mapping → dry run → import (Celery
eager) → error report, and who may import."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Role
from leads import csv_import
from leads.models import ImportJob, ImportStatus, Lead
from tests.factories import LeadFactory, UserFactory

# --- parser (no database) --------------------------------------------------------------------


def test_bom_semicolons_and_french_headers():
    data = "\ufeffPrénom;Nom;Adresse e-mail;Société;Pays;Effectif\nÉlise;Dupont;elise@acme.fr;Acme;France;1 200\n"
    parsed = csv_import.parse(data.encode("utf-8"))
    assert parsed.delimiter == ";" and parsed.encoding == "utf-8-sig"
    assert parsed.headers[0] == "Prénom"
    mapping = csv_import.guess_mapping(parsed.headers)
    assert mapping == {
        "Prénom": "first_name",
        "Nom": "last_name",
        "Adresse e-mail": "email",
        "Société": "company",
        "Pays": "country",
        "Effectif": "company_size",
    }
    [result] = list(csv_import.validate(parsed, mapping))
    assert result.errors == []
    assert result.clean["country"] == "FR" and result.clean["company_size"] == 1200
    assert result.clean["first_name"] == "Élise"


def test_latin1_file_is_decoded():
    data = "email,first_name,city\nzoe@example.com,Zoé,Orléans\n".encode("latin-1")
    parsed = csv_import.parse(data)
    assert parsed.encoding in ("cp1252", "latin-1")
    assert parsed.rows[0][1] == ["zoe@example.com", "Zoé", "Orléans"]


def test_quoted_commas_blank_cells_placeholders_and_custom_columns():
    data = (
        b"Email,Company,Industry,Country,Budget range,Phone\n"
        b'"ann@example.com","Smith, Jones & Co",Select,N/A,"10k, maybe 20k",\n'
        b"\n"
        b"bob@example.com,,--,France,,+33 1 23 45 67 89\n"
    )
    parsed = csv_import.parse(data)
    mapping = csv_import.guess_mapping(parsed.headers)
    assert mapping["Budget range"] == "properties.budget_range"
    results = list(csv_import.validate(parsed, mapping))
    assert [r.line for r in results] == [2, 4]  # the blank line is skipped, numbers stay true
    ann, bob = results
    assert ann.errors == [] and ann.clean["company_name"] == "Smith, Jones & Co"
    assert ann.clean["industry"] == "" and ann.clean["country"] == ""  # placeholders are blank
    assert ann.clean["properties"] == {"budget_range": "10k, maybe 20k"}
    assert bob.errors == [] and bob.clean["country"] == "FR"


def test_errors_name_the_line_and_the_csv_column():
    data = b"Courriel,Pays,Employees\nnot-an-email,Atlantis,lots\n"
    parsed = csv_import.parse(data)
    [result] = list(csv_import.validate(parsed, csv_import.guess_mapping(parsed.headers)))
    assert result.clean is None
    columns = {e["column"] for e in result.errors}
    assert columns == {"Courriel", "Pays", "Employees"}
    assert all(e["line"] == 2 for e in result.errors)


def test_tab_separated_and_error_report_csv():
    parsed = csv_import.parse(b"email\tfirst name\na@example.com\tAl\n")
    assert parsed.delimiter == "\t"
    report = csv_import.error_report([{"line": 3, "column": "Email", "message": "Enter a valid email address."}])
    assert list(csv.reader(io.StringIO(report))) == [
        ["line", "column", "message"],
        ["3", "Email", "Enter a valid email address."],
    ]


def test_mapping_needs_an_email_column():
    assert csv_import.mapping_errors({"Name": "first_name"}) == ["email"]
    assert csv_import.mapping_errors({"Mail": "email", "X": "properties.x"}) == []


# --- end to end (Celery eager) ------------------------------------------------------------

MESSY = (
    "E-mail;Prénom;Société;Pays;Taille;Intérêt\n"
    "ok1@example.com;Anne;Acme, Inc;France;250;CRM\n"
    "bad-email;Bruno;Foo;France;10;ERP\n"
    "ok2@example.com;Chloé;Select;N/A;--;\n"
    "ok3@example.com;Denis;Bar;Narnia;12;CRM\n"
    "existing@example.com;Eve;Baz;Belgique;;\n"
).encode("cp1252", errors="replace")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_upload_dry_run_then_import_with_error_report(client, django_capture_on_commit_callbacks):
    marketing = UserFactory(role=Role.MARKETING)
    LeadFactory(email="existing@example.com", first_name="")
    client.force_login(marketing)

    response = client.post(reverse("import"), {"file": SimpleUploadedFile("leads.csv", MESSY, "text/csv")})
    job = ImportJob.objects.get()
    assert response["Location"] == reverse("import-detail", args=[job.pk])
    assert job.total_rows == 5 and job.delimiter == ";"
    page = client.get(reverse("import-detail", args=[job.pk]))
    assert page.status_code == 200 and len(page.context["preview"]) == 5
    columns = page.context["columns"]
    form = {f"col_{c['index']}": c["target"] for c in columns}
    assert form["col_0"] == "email" and form["col_5"] == "__property__"

    with django_capture_on_commit_callbacks(execute=True):  # the run is queued after commit
        client.post(reverse("import-detail", args=[job.pk]), {**form, "action": "dry_run"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.dry_run
    # What the import will do: the known e-mail is an update, not a creation.
    assert (job.created_count, job.updated_count, job.failed_count) == (2, 1, 2)
    assert Lead.objects.count() == 1  # a dry run writes nothing
    assert Lead.objects.get(email="existing@example.com").first_name == ""

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("import-detail", args=[job.pk]), {**form, "action": "import"})
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and not job.dry_run
    assert (job.created_count, job.updated_count, job.failed_count, job.processed_rows) == (2, 1, 2, 5)
    assert Lead.objects.get(email="ok1@example.com").company_name == "Acme, Inc"
    assert Lead.objects.get(email="ok1@example.com").properties == {"interet": "CRM"}
    assert Lead.objects.get(email="existing@example.com").first_name == "Eve"
    assert Lead.objects.get(email="ok2@example.com").country == ""

    report = client.get(reverse("import-errors", args=[job.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode("utf-8-sig"))))
    assert rows[0] == ["line", "column", "message"]
    assert {(r[0], r[1]) for r in rows[1:]} == {("3", "E-mail"), ("5", "Pays")}

    progress = client.get(reverse("import-progress", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert progress["HX-Refresh"] == "true" and b'data-status="done"' in progress.content
    # Imported once: a second run is refused.
    client.post(reverse("import-detail", args=[job.pk]), {**form, "action": "import"})
    assert Lead.objects.count() == 3


@pytest.mark.django_db
def test_mapping_without_email_is_refused(client):
    admin = UserFactory(role=Role.ADMIN)
    client.force_login(admin)
    client.post(reverse("import"), {"file": SimpleUploadedFile("x.csv", b"Mail,Name\na@example.com,A\n")})
    job = ImportJob.objects.get()
    response = client.post(reverse("import-detail", args=[job.pk]), {"col_0": "", "col_1": "first_name"}, follow=True)
    assert "e-mail" in response.content.decode()
    job.refresh_from_db()
    assert job.status == ImportStatus.PENDING


@pytest.mark.django_db
def test_only_marketing_and_admins_import(client):
    sdr = UserFactory(role=Role.SDR)
    client.force_login(sdr)
    assert client.get(reverse("import")).status_code == 403
    marketing = UserFactory(role=Role.MARKETING)
    client.force_login(marketing)
    client.post(reverse("import"), {"file": SimpleUploadedFile("a.csv", b"email\na@example.com\n")})
    job = ImportJob.objects.get()
    client.force_login(UserFactory(role=Role.MARKETING))  # another marketer: not their job
    assert client.get(reverse("import-detail", args=[job.pk])).status_code == 404
    client.force_login(sdr)
    assert client.get(reverse("import-errors", args=[job.pk])).status_code == 403


@pytest.mark.django_db
def test_an_empty_file_is_refused(client):
    client.force_login(UserFactory(role=Role.ADMIN))
    response = client.post(reverse("import"), {"file": SimpleUploadedFile("e.csv", b"")}, follow=True)
    assert ImportJob.objects.count() == 0
    assert response.status_code == 400 and b"The file is empty." in response.content

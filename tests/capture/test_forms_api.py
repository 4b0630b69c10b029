"""Marketing's forms API (`/api/v1/forms/`): shapes, the 400s of a bad configuration, who may
read and write, and the audit of every change."""

from __future__ import annotations

import pytest

from capture.models import Form
from leadcrm.models import AuditEntry

pytestmark = pytest.mark.django_db

EMAIL = {"name": "email", "maps_to": "email", "label": {"en": "E-mail", "fr": "Courriel"}}
BODY = {
    "name": "Webinar sign-up",
    "allowed_origins": ["https://www.Example.com/", "http://localhost:8080"],
    "fields": [
        EMAIL,
        {"name": "first_name", "maps_to": "first_name", "required": True, "label": {"en": "First name"}},
        {"name": "team_size", "maps_to": "properties.team_size", "help": "People in your team"},
    ],
    "progressive": [{"name": "job_title", "maps_to": "job_title", "label": {"en": "Job title", "fr": "Fonction"}}],
    "consent_text": "I agree to receive the webinar's e-mails.",
    "double_opt_in": True,
    "redirect_url": "https://www.example.com/thanks",
    "thank_you": "See you there!",
}


def test_marketing_creates_reads_and_edits_a_form(people, auth_client):
    client = auth_client(people.marketing)
    created = client.post("/api/v1/forms/", BODY, format="json")
    assert created.status_code == 201, created.content
    data = created.json()
    assert data["allowed_origins"] == ["https://www.example.com", "http://localhost:8080"]
    assert data["fields"][0] == {
        "name": "email",
        "maps_to": "email",
        "required": True,  # the e-mail is always required
        "label": {"en": "E-mail", "fr": "Courriel"},
        "help": "",
    }
    assert data["fields"][2]["label"] == {"en": "Team size", "fr": ""}
    assert len(data["site_key"]) >= 30 and data["hosted_url"] == f"/f/{data['site_key']}/"
    other = client.post("/api/v1/forms/", {**BODY, "name": "Other"}, format="json").json()
    assert other["site_key"] != data["site_key"]

    patched = client.patch(
        f"/api/v1/forms/{data['id']}/",
        {"name": "Webinar", "site_key": "mine-now", "double_opt_in": False},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "Webinar" and patched.json()["site_key"] == data["site_key"]  # read-only
    assert client.get(f"/api/v1/forms/{data['id']}/").json()["double_opt_in"] is False
    assert {f["name"] for f in client.get("/api/v1/forms/").json()} == {"Webinar", "Other"}
    entries = AuditEntry.objects.filter(target_type="capture.form", target_id=str(data["id"]))
    assert set(entries.values_list("action", flat=True)) == {"capture.form.create", "capture.form.update"}
    update = entries.get(action="capture.form.update")
    assert update.changes["name"] == ["Webinar sign-up", "Webinar"]
    assert update.changes["double_opt_in"] == [True, False]
    assert update.actor_id == people.marketing.pk


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"fields": "email"}, "fields"),
        ({"fields": []}, "fields"),
        ({"fields": [{"name": "first_name", "maps_to": "first_name"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "x", "maps_to": "salary"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "Bad Name", "maps_to": "city"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "homepage", "maps_to": "city"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "utm_source", "maps_to": "city"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "city", "maps_to": "city", "colour": "red"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "city", "maps_to": "city", "label": {"de": "Stadt"}}]}, "fields"),
        ({"fields": [EMAIL, {"name": "city", "maps_to": "city", "required": "yes"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "email", "maps_to": "city"}]}, "fields"),
        ({"fields": [EMAIL, {"name": "mail2", "maps_to": "email"}]}, "fields"),
        ({"progressive": [{"name": "city", "maps_to": "first_name"}]}, "progressive"),
        ({"progressive": [{"name": "e2", "maps_to": "email"}]}, "progressive"),
        ({"allowed_origins": ["ftp://www.example.com"]}, "allowed_origins"),
        ({"allowed_origins": ["https://www.example.com/path"]}, "allowed_origins"),
        ({"allowed_origins": "https://www.example.com"}, "allowed_origins"),
        ({"allowed_origins": [42]}, "allowed_origins"),
        ({"redirect_url": "javascript:alert(1)"}, "redirect_url"),
        ({"double_opt_in": True, "consent_text": ""}, "double_opt_in"),
        ({"name": ""}, "name"),
        ({"consent_text": "x" * 2001}, "consent_text"),
    ],
)
def test_a_bad_configuration_is_a_400_naming_the_field(people, auth_client, change, key):
    client = auth_client(people.marketing)
    response = client.post("/api/v1/forms/", {**BODY, **change}, format="json")
    assert response.status_code == 400 and key in response.json(), response.content
    assert not Form.objects.exists()


def test_the_same_name_twice_is_a_400(people, auth_client):
    client = auth_client(people.admin)
    assert client.post("/api/v1/forms/", BODY, format="json").status_code == 201
    again = client.post("/api/v1/forms/", {**BODY, "name": BODY["name"].upper()}, format="json")
    assert again.status_code == 400 and "name" in again.json()


def test_only_marketing_and_admins_read_or_write_forms(people, auth_client):
    form_id = auth_client(people.admin).post("/api/v1/forms/", BODY, format="json").json()["id"]
    for user in (people.manager_a, people.sdr_a):
        client = auth_client(user)
        assert client.get("/api/v1/forms/").status_code == 403
        assert client.post("/api/v1/forms/", {**BODY, "name": "x"}, format="json").status_code == 403
        assert client.get(f"/api/v1/forms/{form_id}/").status_code == 403
        assert client.patch(f"/api/v1/forms/{form_id}/", {"name": "y"}, format="json").status_code == 403
    assert auth_client(people.marketing).get(f"/api/v1/forms/{form_id + 1000}/").status_code == 404

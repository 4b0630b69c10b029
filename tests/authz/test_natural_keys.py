"""Natural-key lookups (SPEC "Roles"): a capture, bulk row, event or import naming by e-mail a
lead the caller cannot see never changes it nor reveals it; what was sent is kept as a
touchpoint on it and its owner is told."""

from __future__ import annotations

import pytest

from accounts.models import Notification, Role
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from leads import imports, services
from leads.models import ImportJob, Lead, Touchpoint, TouchpointType

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"


@pytest.fixture
def their_lead(people, mk_lead):
    """A lead of team B's seller, with known fields."""
    return mk_lead("known@corp.example", owner=people.sdr_b, first_name="Ann", city="Lyon", job_title="CTO")


def captures(lead) -> list[Touchpoint]:
    return list(Touchpoint.objects.filter(lead=lead, type=TouchpointType.CAPTURE))


def assert_unchanged(lead) -> None:
    fresh = Lead.objects.get(pk=lead.pk)
    assert (fresh.first_name, fresh.city, fresh.job_title, fresh.owner_id) == (
        lead.first_name,
        lead.city,
        lead.job_title,
        lead.owner_id,
    )


@pytest.mark.parametrize("who", ["sdr_a", "manager_a"])
def test_capture_of_an_invisible_lead_is_recorded_not_applied(people, their_lead, auth_client, who):
    caller = getattr(people, who)
    body = {"email": "KNOWN@corp.example", "first_name": "Mallory", "city": "Nice", "source": "fair"}
    r = auth_client(caller).post(LEADS, body, format="json")
    assert r.status_code == 202
    assert r.json() == {"status": "recorded"}
    assert_unchanged(their_lead)
    (tp,) = captures(their_lead)
    assert tp.author == caller and tp.properties["submitted"]["first_name"] == "Mallory"
    note = Notification.objects.get(user=people.sdr_b, kind="lead_recaptured")
    assert note.lead_id == their_lead.pk and caller.username in note.text


def test_capture_of_an_invisible_pool_lead_records_without_owner(people, mk_lead, auth_client):
    pool = mk_lead("pool@corp.example", team=people.team_b, city="Lyon")
    r = auth_client(people.sdr_a).post(LEADS, {"email": pool.email, "city": "Nice"}, format="json")
    assert r.status_code == 202 and r.json() == {"status": "recorded"}
    assert Lead.objects.get(pk=pool.pk).city == "Lyon"
    assert len(captures(pool)) == 1


@pytest.mark.parametrize("who", ["sdr_b", "manager_b", "marketing", "admin"])
def test_capture_of_a_visible_lead_updates_it(people, their_lead, auth_client, who):
    r = auth_client(getattr(people, who)).post(
        LEADS, {"email": their_lead.email, "phone": "+33612345678"}, format="json"
    )
    assert r.status_code == 200 and r.json()["id"] == their_lead.pk
    assert Lead.objects.get(pk=their_lead.pk).phone == "+33612345678"
    assert not Notification.objects.filter(kind="lead_recaptured").exists()


def test_teammates_pool_lead_is_visible_to_the_sdr(people, mk_lead, auth_client):
    pool = mk_lead("mypool@corp.example", team=people.team_a)
    r = auth_client(people.sdr_a).post(LEADS, {"email": pool.email, "city": "Nice"}, format="json")
    assert r.status_code == 200 and Lead.objects.get(pk=pool.pk).city == "Nice"
    mine_of_teammate = mk_lead("mate@corp.example", owner=people.sdr_a2, city="Lyon")
    r = auth_client(people.sdr_a).post(LEADS, {"email": mine_of_teammate.email, "city": "Nice"}, format="json")
    assert r.status_code == 202 and Lead.objects.get(pk=mine_of_teammate.pk).city == "Lyon"


def test_bulk_rows_of_invisible_leads_say_recorded_without_id(people, their_lead, mk_lead):
    mine = mk_lead("mine@corp.example", owner=people.sdr_a)
    rows = [
        (0, {"email": "known@corp.example", "city": "Nice", "first_name": "Mallory"}),
        (1, {"email": mine.email, "city": "Nice"}),
        (2, {"email": "new@corp.example"}),
        (3, {"email": "KNOWN@corp.example", "job_title": "Intern"}),
    ]
    results = services.leads_bulk_upsert(rows=rows, actor=Actor(people.sdr_a, ActorType.API))
    by_index = {r.index: r for r in results}
    assert [by_index[i].status for i in range(4)] == ["recorded", "updated", "created", "recorded"]
    assert by_index[0].id is None and by_index[3].id is None
    assert_unchanged(their_lead)
    assert len(captures(their_lead)) == 1
    assert Notification.objects.filter(user=people.sdr_b, kind="lead_recaptured").count() == 1
    assert Lead.objects.get(pk=mine.pk).city == "Nice"


def test_bulk_api_counts_recorded_rows(people, their_lead, auth_client):
    """Marketing sees every lead: its bulk rows update; the answer has a `recorded` count."""
    r = auth_client(people.marketing).post(
        "/api/v1/leads/bulk/", {"leads": [{"email": their_lead.email, "city": "Nice"}]}, format="json"
    )
    assert r.status_code == 200
    body = r.json()
    assert body["updated"] == 1 and body["recorded"] == 0 and body["results"][0]["id"] == their_lead.pk


def test_events_by_email_of_an_invisible_lead_keep_the_event_without_changing_it(people, their_lead):
    tps = services.events_record(
        items=[{"type": "page_view", "email": their_lead.email, "url": "https://x.example/"}],
        actor=Actor(people.sdr_a, ActorType.API),
    )
    assert [t.lead_id for t in tps] == [their_lead.pk]
    assert_unchanged(their_lead)


def test_events_by_id_of_an_invisible_lead_answer_as_unknown(people, their_lead):
    with pytest.raises(ServiceError) as exc:
        services.events_record(
            items=[{"type": "page_view", "lead_id": their_lead.pk}], actor=Actor(people.sdr_a, ActorType.API)
        )
    assert "lead_id" in exc.value.errors
    with pytest.raises(ServiceError) as missing:
        services.events_record(
            items=[{"type": "page_view", "lead_id": 10**9}], actor=Actor(people.sdr_a, ActorType.API)
        )
    assert str(missing.value.errors["lead_id"][0]).startswith("Unknown lead")
    assert str(exc.value.errors["lead_id"][0]).startswith("Unknown lead")


def test_events_api_answers_lead_ids(people, their_lead, auth_client):
    r = auth_client(people.marketing).post(
        "/api/v1/events/", {"type": "page_view", "email": their_lead.email}, format="json"
    )
    assert r.status_code == 201 and r.json()["events"][0]["lead_id"] == their_lead.pk


def test_csv_import_by_a_user_who_cannot_see_the_lead_does_not_overwrite_it(
    people, their_lead, django_capture_on_commit_callbacks
):
    """The importer's rights are those of today: a job whose creator lost marketing's role
    no longer overwrites leads they cannot see."""
    uploader = people.marketing
    data = b"email,first name,city\nknown@corp.example,Mallory,Nice\nfresh@corp.example,Bob,Paris\n"
    job = imports.import_job_create(data=data, filename="x.csv", user=uploader)
    uploader.role, uploader.team = Role.SDR, people.team_a
    uploader.save(update_fields=["role", "team"])
    with django_capture_on_commit_callbacks(execute=True):  # the run is a job, sent after commit
        imports.import_job_start(
            job_id=job.pk, mapping={"email": "email", "first name": "first_name", "city": "city"}, dry_run=False
        )
    assert ImportJob.objects.get(pk=job.pk).status == "done"
    assert_unchanged(their_lead)
    assert len(captures(their_lead)) == 1
    assert Lead.objects.filter(email="fresh@corp.example").exists()

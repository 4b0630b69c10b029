"""Tasks on leads: who may hold one, what the lists show, automation that runs twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Notification
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import AuditEntry
from leads import selectors, services
from leads.models import Task
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)


def test_a_task_goes_to_the_leads_owner_who_is_told(make_user, auth_client):
    manager, sdr = make_user("manager", team="A"), make_user("sdr", team="A")
    lead = LeadFactory(owner=sdr, team=sdr.team)
    answer = auth_client(manager).post(
        "/api/v1/tasks/", {"lead": lead.pk, "kind": "call", "due_at": "2026-12-03T09:00:00+01:00"}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["assignee"] == sdr.pk and answer.json()["done"] is False
    assert Notification.objects.filter(user=sdr, kind="task", lead_id=lead.pk).count() == 1
    assert AuditEntry.objects.filter(action="task.create", actor=manager).count() == 1


def test_nobody_gets_a_task_on_a_lead_they_cannot_see(make_user, auth_client):
    sdr, other = make_user("sdr", team="A"), make_user("sdr", team="B")
    hidden = LeadFactory(owner=other)
    mine = LeadFactory(owner=sdr)
    client = auth_client(sdr)
    body = {"kind": "todo", "due_at": "2026-12-03T09:00:00Z"}
    refused = client.post("/api/v1/tasks/", {**body, "lead": hidden.pk}, format="json")
    absent = client.post("/api/v1/tasks/", {**body, "lead": 10**9}, format="json")
    assert refused.status_code == absent.status_code == 400
    assert refused.json().keys() == absent.json().keys() == {"lead"}
    to_other = client.post("/api/v1/tasks/", {**body, "lead": mine.pk, "assignee": other.pk}, format="json")
    assert to_other.status_code == 400 and "assignee" in to_other.json()
    assert not Task.objects.exists()


def test_done_and_undone_and_the_lists(make_user, auth_client):
    sdr = make_user("sdr", team="A")
    lead = LeadFactory(owner=sdr)
    actor = Actor(sdr)
    late, today, later = (
        services.tasks_create(actor=actor, lead_ids=[lead.pk], kind="call", due_at=NOW + delta)[0]
        for delta in (dt.timedelta(hours=-3), dt.timedelta(hours=2), dt.timedelta(days=2))
    )
    panel = selectors.my_open_tasks(sdr, now=NOW)
    assert [t.pk for t in panel["overdue"]] == [late.pk] and [t.pk for t in panel["today"]] == [today.pk]
    client = auth_client(sdr)
    done = client.patch(f"/api/v1/tasks/{late.pk}/", {"done": True}, format="json")
    assert done.status_code == 200 and done.json()["done"] is True
    assert client.get("/api/v1/tasks/?done=false").json()["results"][0]["id"] in (today.pk, later.pk)
    undone = client.patch(f"/api/v1/tasks/{late.pk}/", {"done": False}, format="json")
    assert undone.json()["done_at"] is None
    changes = [e.changes["done_at"] for e in AuditEntry.objects.filter(action="task.update").order_by("id")]
    assert changes[0][0] is None and changes[1][1] is None


def test_automation_running_twice_makes_one_task(make_user):
    lead = LeadFactory(owner=make_user("sdr", team="A"))
    keys = {lead.pk: f"enrollment:1:step:2:lead:{lead.pk}"}
    first = services.tasks_create(actor=Actor.automation(), lead_ids=[lead.pk], kind="linkedin", due_at=NOW, keys=keys)
    again = services.tasks_create(actor=Actor.automation(), lead_ids=[lead.pk], kind="linkedin", due_at=NOW, keys=keys)
    assert [t.pk for t in first] == [t.pk for t in again] and Task.objects.count() == 1


def test_bad_input_is_a_field_error(make_user):
    lead = LeadFactory()
    actor = Actor(make_user("admin"))
    with pytest.raises(ServiceError) as err:
        services.tasks_create(actor=actor, lead_ids=[lead.pk], kind="fax", due_at=dt.datetime(2026, 1, 1), title="\x00")
    assert set(err.value.errors) == {"kind", "due_at", "title"}


def test_the_task_list_reads_in_a_fixed_number_of_queries(make_user, auth_client, django_assert_max_num_queries):
    sdr = make_user("sdr", team="A")
    for _ in range(8):
        services.tasks_create(
            actor=Actor(sdr), lead_ids=[LeadFactory(owner=sdr).pk], kind="call", due_at=timezone.now()
        )
    client = auth_client(sdr)
    with django_assert_max_num_queries(8):
        assert len(client.get("/api/v1/tasks/?assignee=me").json()["results"]) == 8

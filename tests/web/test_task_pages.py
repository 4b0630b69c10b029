"""Tasks on the lead page and the queue: add, tick off, reopen, a follow-up from a call."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from leadcrm.actors import Actor
from leads import services
from leads.models import Task
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdr(make_user):
    return make_user("sdr", team="A")


def test_a_seller_adds_and_ticks_off_a_task_on_the_lead_page(sdr, client):
    lead = LeadFactory(owner=sdr, team=sdr.team)
    client.force_login(sdr)
    added = client.post(
        reverse("lead-task-add", args=[lead.pk]),
        {"kind": "meeting", "title": "Demo with the CTO", "due_at": "2026-12-10T14:30"},
        follow=True,
    )
    task = Task.objects.get()
    assert "Demo with the CTO" in added.content.decode() and task.assignee == sdr
    assert timezone.localtime(task.due_at).hour == 14
    client.post(reverse("task-done", args=[task.pk]), {"done": "1"})
    task.refresh_from_db()
    assert task.done
    page = client.get(reverse("lead-detail", args=[lead.pk])).content.decode()
    assert "Reopen" in page
    client.post(reverse("task-done", args=[task.pk]), {"done": "0"})
    task.refresh_from_db()
    assert not task.done


def test_a_task_without_a_due_time_is_a_message(sdr, client):
    lead = LeadFactory(owner=sdr)
    client.force_login(sdr)
    answer = client.post(reverse("lead-task-add", args=[lead.pk]), {"kind": "call", "due_at": "soon"}, follow=True)
    assert answer.status_code == 200 and "due date and time" in answer.content.decode()
    assert not Task.objects.exists()


def test_logging_a_call_with_a_follow_up_makes_a_call_task(sdr, client):
    lead = LeadFactory(owner=sdr)
    client.force_login(sdr)
    client.post(
        reverse("lead-log", args=[lead.pk]), {"type": "call", "note": "voicemail", "follow_up": "2026-12-04T10:00"}
    )
    task = Task.objects.get()
    assert (task.kind, task.assignee, task.lead) == ("call", sdr, lead)
    assert lead.touchpoints.filter(type="call").count() == 1


def test_the_queue_shows_my_overdue_and_todays_tasks(sdr, client):
    now = timezone.now()
    for n, delta in enumerate((-5, 1, 48)):
        lead = LeadFactory(owner=sdr, team=sdr.team, first_name=f"Person{n}")
        services.tasks_create(
            actor=Actor(sdr), lead_ids=[lead.pk], kind="call", due_at=now + dt.timedelta(hours=delta), title=f"T{n}"
        )
    client.force_login(sdr)
    page = client.get(reverse("queue")).content.decode()
    assert "My tasks today" in page and "T0" in page
    if timezone.localtime(now + dt.timedelta(hours=1)).date() == timezone.localdate(now):
        assert "T1" in page
    assert "T2" not in page

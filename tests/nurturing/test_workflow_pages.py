"""Marketing's workflow pages: the list with run counts and errors, create and edit with
the service's errors shown on the form (never a 500), the trace of recent runs, the
navigation link; sellers are kept out."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from leadcrm import events
from leadcrm.actors import Actor
from leads.models import StageChange
from nurturing import services
from nurturing.models import Workflow, WorkflowRun
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

TASK = [{"type": "task", "kind": "call", "due_in_hours": 24, "title": "Call"}]


@pytest.fixture
def marketing_user(make_user):
    return make_user("marketing")


@pytest.fixture
def marketer(marketing_user, client):
    client.force_login(marketing_user)
    return client


def _form(**fields):
    data = {
        "name": "MQL call",
        "active": "on",
        "trigger": json.dumps({"event": "lead.stage_changed", "to": "MQL"}),
        "conditions": "",
        "actions": json.dumps(TASK),
    }
    return {**data, **fields}


def test_create_from_the_list_and_see_it_linked_from_the_navigation(marketer):
    page = marketer.get(reverse("workflows")).content.decode()
    assert f'href="{reverse("workflows")}"' in page and "No workflow yet." in page
    made = marketer.post(reverse("workflows"), _form())
    workflow = Workflow.objects.get(name="MQL call")
    assert made.status_code == 302 and made["Location"] == reverse("workflow-detail", args=[workflow.pk])
    assert workflow.trigger == {"event": "lead.stage_changed", "to": "MQL"} and workflow.conditions == {}
    listing = marketer.get(reverse("workflows")).content.decode()
    assert "MQL call" in listing and "lead.stage_changed" in listing


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"trigger": "{not json"}, "Enter a valid JSON"),
        ({"trigger": json.dumps({"event": "nope"})}, "event: one of"),
        ({"actions": json.dumps([{"type": "task", "kind": "fax"}])}, "actions[0]"),
        ({"conditions": json.dumps({"field": "shoe"})}, "field"),
    ],
)
def test_bad_input_is_shown_on_the_form_not_a_500(marketer, fields, shown):
    answer = marketer.post(reverse("workflows"), _form(**fields))
    assert answer.status_code == 200
    assert shown in answer.content.decode()
    assert not Workflow.objects.exists()


def test_the_workflow_page_edits_pauses_shows_the_trace_and_deletes(marketer, marketing_user):
    workflow = services.workflow_create(
        actor=Actor(marketing_user), name="Trace me", trigger={"event": "lead.stage_changed"}, actions=TASK
    )
    lead = LeadFactory(email="traced@x.example")
    StageChange.objects.create(
        lead=lead, from_stage="MCL", to_stage="MQL", actor_type="user", created_at=timezone.now()
    )
    services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk])
    url = reverse("workflow-detail", args=[workflow.pk])
    page = marketer.get(url).content.decode()
    assert "traced@x.example" in page and "Actions ran" in page and "done" in page
    saved = marketer.post(
        url, _form(name="Renamed", conditions=json.dumps({"field": "grade", "op": "eq", "value": "A"}))
    )
    assert saved.status_code == 302
    workflow.refresh_from_db()
    assert workflow.name == "Renamed" and workflow.conditions == {"field": "grade", "op": "eq", "value": "A"}
    bad = marketer.post(url, _form(actions='"route"'))
    assert bad.status_code == 200 and "at least one action" in bad.content.decode()
    marketer.post(url, {"action": "toggle"})
    workflow.refresh_from_db()
    assert workflow.active is False
    assert marketer.post(url, {"action": "delete"}).status_code == 302
    assert not Workflow.objects.exists() and not WorkflowRun.objects.exists()


def test_sellers_are_kept_out(client, make_user):
    client.force_login(make_user("sdr"))
    assert client.get(reverse("workflows")).status_code == 403
    assert reverse("workflows") not in client.get(reverse("dashboard")).content.decode()


def test_the_page_is_in_french(marketer):
    page = marketer.get(reverse("workflows"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Nouveau workflow" in page and "Aucun workflow" in page

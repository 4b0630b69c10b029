"""Workflows (nurturing.services.workflows): audited writes, triggers on the domain events
(each occurrence runs once), conditions, actions traced, loops stopped, timed triggers, and
end to end through the outbox reactions (eager in tests)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role
from leadcrm import events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import AuditEntry
from leads import services as lead_services
from leads.models import ConsentStatus, Lead, ScoreChange, StageChange, Task, Touchpoint
from nurturing import services
from nurturing.models import Enrollment, Message, SegmentChange, Workflow, WorkflowRun
from tests.factories import LeadFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

TASK = {"type": "task", "kind": "call", "due_in_hours": 4, "title": "Call the MQL"}


@pytest.fixture
def marketer(make_user):
    return Actor(make_user("marketing"))


@pytest.fixture
def seller(db):
    return UserFactory(role=Role.SDR, team=TeamFactory(name="FR"))


def _workflow(marketer, trigger, actions=(TASK,), conditions=None, name="WF"):
    return services.workflow_create(
        actor=marketer, name=name, trigger=trigger, actions=list(actions), conditions=conditions or {}
    )


def _stage_change(lead, to="MQL", src="MCL"):
    return StageChange.objects.create(
        lead=lead, from_stage=src, to_stage=to, actor_type="automation", created_at=timezone.now()
    )


# --- writes ------------------------------------------------------------------------------


def test_create_update_delete_are_validated_and_audited(marketer):
    with pytest.raises(ServiceError) as bad:
        services.workflow_create(actor=marketer, name="x", trigger={"event": "nope"}, actions=[])
    assert set(bad.value.errors) == {"trigger", "actions"}
    workflow = _workflow(marketer, {"event": "lead.stage_changed", "to": "MQL"})
    with pytest.raises(ServiceError) as dup:
        _workflow(marketer, {"inactive_days": 3})
    assert "name" in dup.value.errors
    updated = services.workflow_update(actor=marketer, workflow_id=workflow.pk, active=False, name=" Renamed ")
    assert (updated.active, updated.name) == (False, "Renamed")
    with pytest.raises(ServiceError):
        services.workflow_update(actor=marketer, workflow_id=workflow.pk, actions=[{"type": "assign"}])
    with pytest.raises(ServiceError):
        services.workflow_update(actor=marketer, workflow_id=workflow.pk, owner=3)
    services.workflow_delete(actor=marketer, workflow_id=workflow.pk)
    assert not Workflow.objects.exists()
    actions = list(
        AuditEntry.objects.filter(target_id=str(workflow.pk)).order_by("id").values_list("action", flat=True)
    )
    assert actions == ["nurturing.workflow.create", "nurturing.workflow.update", "nurturing.workflow.delete"]
    changes = AuditEntry.objects.get(action="nurturing.workflow.update").changes
    assert changes["active"] == [True, False]


# --- triggers ----------------------------------------------------------------------------


def test_a_stage_change_runs_the_workflow_once_per_occurrence(marketer, seller):
    workflow = _workflow(marketer, {"event": "lead.stage_changed", "to": "MQL"})
    lead, other = LeadFactory(owner=seller, stage="MQL"), LeadFactory(stage="SQL")
    _stage_change(lead)
    _stage_change(other, to="SQL", src="MQL")
    payload = {"from_stage": "MCL", "to_stage": "MQL"}
    counts = services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk, other.pk], payload=payload)
    assert counts["done"] == 1
    again = services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk], payload=payload)
    assert again["done"] == 0  # re-delivered: the run exists
    (run,) = WorkflowRun.objects.filter(workflow=workflow)
    assert run.lead == lead and run.result == "done" and run.trigger["to"] == "MQL"
    assert [s["step"] for s in run.trace] == ["trigger", "conditions", "action"]
    assert run.trace[2] == {"step": "action", "index": 0, "type": "task", "outcome": "done"}
    (task,) = Task.objects.all()
    assert task.lead == lead and task.assignee == seller and task.kind == "call"


def test_conditions_are_judged_on_the_lead_facts(marketer):
    _workflow(marketer, {"event": "lead.created"}, conditions={"field": "country", "op": "eq", "value": "FR"})
    fr, de = LeadFactory(country="FR"), LeadFactory(country="DE")
    counts = services.workflows_run(event=events.LEAD_CREATED, lead_ids=[fr.pk, de.pk])
    assert (counts["done"], counts["skipped"]) == (1, 1)
    skipped = WorkflowRun.objects.get(lead=de)
    assert skipped.result == "skipped" and skipped.trace[-1] == {"step": "conditions", "holds": False}
    assert list(Task.objects.values_list("lead_id", flat=True)) == [fr.pk]


def test_a_score_crossing_fires_once_and_a_move_that_does_not_cross_never(marketer):
    _workflow(marketer, {"event": "lead.score_changed", "crosses": 70})
    lead, calm = LeadFactory(score=75), LeadFactory(score=60)
    ScoreChange.objects.create(lead=lead, old_score=65, new_score=75)
    ScoreChange.objects.create(lead=calm, old_score=50, new_score=60)
    services.workflows_run(event=events.LEAD_SCORE_CHANGED, lead_ids=[lead.pk, calm.pk])
    services.workflows_run(event=events.LEAD_SCORE_CHANGED, lead_ids=[lead.pk, calm.pk])
    (run,) = WorkflowRun.objects.all()
    assert run.lead == lead and run.trigger == {"event": "lead.score_changed", "old": 65, "new": 75}


def test_a_form_submit_fires_per_touchpoint_of_that_type(marketer):
    _workflow(marketer, {"event": "lead.activity_recorded", "type": "form_submit"})
    lead = LeadFactory()
    now = timezone.now()
    for kind in ("form_submit", "page_view", "form_submit"):
        Touchpoint.objects.create(lead=lead, type=kind, occurred_at=now)
    services.workflows_run(event=events.LEAD_ACTIVITY_RECORDED, lead_ids=[lead.pk])
    runs = WorkflowRun.objects.filter(lead=lead)
    assert runs.count() == 2 and {r.trigger["type"] for r in runs} == {"form_submit"}
    assert Task.objects.filter(lead=lead).count() == 2  # two submits, two runs, two tasks


def test_segment_entered_fires_for_its_segment_only(marketer):
    segment = services.segment_create(actor=marketer, name="FR", filter={"country": "FR"})
    other = services.segment_create(actor=marketer, name="DE", filter={"country": "DE"})
    _workflow(marketer, {"segment_entered": segment.pk})
    lead = LeadFactory(country="FR")
    SegmentChange.objects.create(segment=segment, lead=lead, kind="entered", at=timezone.now())
    SegmentChange.objects.create(segment=other, lead=lead, kind="entered", at=timezone.now())
    services.workflows_run(event=events.SEGMENT_ENTERED, lead_ids=[lead.pk], payload={"segment_id": other.pk})
    assert not WorkflowRun.objects.exists()
    services.workflows_run(event=events.SEGMENT_ENTERED, lead_ids=[lead.pk], payload={"segment_id": segment.pk})
    assert WorkflowRun.objects.get().trigger == {"event": "segment.entered", "segment": segment.pk}


def test_an_email_click_fires_per_message_of_its_template(marketer):
    one = services.email_template_create(actor=marketer, name="One", subject="Hi", text="Hi")
    two = services.email_template_create(actor=marketer, name="Two", subject="Hi", text="Hi")
    _workflow(marketer, {"event": "email.clicked", "template": one.pk})
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    now = timezone.now()
    clicked = [
        Message.objects.create(lead=lead, template=t, kind="marketing", idempotency_key=f"k{t.pk}", queued_at=now)
        for t in (one, two)
    ]
    payload = {"message_ids": [m.pk for m in clicked]}
    services.workflows_run(event=events.EMAIL_CLICKED, lead_ids=[lead.pk], payload=payload)
    services.workflows_run(event=events.EMAIL_CLICKED, lead_ids=[lead.pk], payload=payload)
    (run,) = WorkflowRun.objects.all()
    assert run.trigger == {"event": "email.clicked", "message": clicked[0].pk}


def test_an_inactive_workflow_and_old_occurrences_do_not_fire(marketer):
    workflow = _workflow(marketer, {"event": "lead.stage_changed"})
    lead = LeadFactory()
    old = _stage_change(lead)
    StageChange.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk])
    assert not WorkflowRun.objects.exists()
    services.workflow_update(actor=marketer, workflow_id=workflow.pk, active=False)
    _stage_change(lead)
    services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk])
    assert not WorkflowRun.objects.exists()


def test_a_failing_action_is_recorded_as_failed_and_undone(marketer, monkeypatch):
    _workflow(marketer, {"event": "lead.created"}, actions=[TASK, {"type": "route"}])
    lead = LeadFactory()

    def boom(**_):
        raise RuntimeError("routing exploded")

    monkeypatch.setitem(__import__("nurturing.actions").actions._RUNNERS, "route", boom)
    counts = services.workflows_run(event=events.LEAD_CREATED, lead_ids=[lead.pk])
    assert counts["failed"] == 1
    run = WorkflowRun.objects.get()
    assert run.result == "failed" and "routing exploded" in run.error
    assert not Task.objects.exists()  # the batch's transaction was rolled back


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_occurrence_at_once_run_it_once(make_user, monkeypatch):
    """Both pass the "already ran?" read before either commits; the unique run key makes the
    second wait for the first, then fail as a whole: one run, one task."""
    import threading

    from django.db import connection

    from nurturing.services import workflows

    marketer = Actor(make_user("marketing"))
    _workflow(marketer, {"event": "lead.stage_changed"})
    lead = LeadFactory()
    _stage_change(lead)
    barrier = threading.Barrier(2, timeout=10)
    prior = workflows._prior_runs

    def both_inside(*args, **kwargs):
        barrier.wait()  # each worker is in its transaction, past the "already ran?" read
        return prior(*args, **kwargs)

    monkeypatch.setattr(workflows, "_prior_runs", both_inside)
    results = []

    def worker():
        try:
            results.append(services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk]))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(r["done"] for r in results) == [0, 1]
    assert WorkflowRun.objects.count() == 1 and Task.objects.count() == 1


# --- loops -------------------------------------------------------------------------------


def test_a_workflow_that_retriggers_itself_is_stopped(marketer):
    """Its own action (a field update) announces lead.activity-like events; here a
    stage-change workflow fired again and again for one lead stops at the window's limit."""
    from nurturing.services import workflows

    _workflow(marketer, {"event": "lead.stage_changed"})
    lead = LeadFactory()
    for _ in range(workflows.LOOP_MAX_RUNS + 2):
        _stage_change(lead)
        services.workflows_run(event=events.LEAD_STAGE_CHANGED, lead_ids=[lead.pk])
    results = list(WorkflowRun.objects.order_by("id").values_list("result", "depth"))
    assert [r for r, _ in results] == ["done"] * workflows.LOOP_MAX_RUNS + ["loop", "loop"]
    assert [d for _, d in results][: workflows.LOOP_MAX_RUNS] == list(range(workflows.LOOP_MAX_RUNS))
    assert Task.objects.count() == workflows.LOOP_MAX_RUNS


def test_two_workflows_feeding_each_other_through_the_outbox_stop(marketer, django_capture_on_commit_callbacks):
    """A real ping-pong through the domain events: entering the segment switches the flag
    off (so the lead leaves it), leaving it switches the flag on (so it enters again). The
    field update is rescored, the rescore re-checks the segments, the segment change
    triggers the other workflow: eager reactions run it all, until the loop guard stops it."""
    from nurturing.services import workflows

    segment = services.segment_create(actor=marketer, name="Flagged", filter={"properties": {"flag": "on"}})
    _workflow(
        marketer,
        {"segment_entered": segment.pk},
        actions=[{"type": "update", "field": "properties.flag", "value": "off"}],
        name="switch off",
    )
    _workflow(
        marketer,
        {"segment_left": segment.pk},
        actions=[{"type": "update", "field": "properties.flag", "value": "on"}],
        name="switch on",
    )
    lead = LeadFactory(properties={"flag": "off"})
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_update(lead_id=lead.pk, data={"properties": {"flag": "on"}}, actor=marketer)
    runs = WorkflowRun.objects.filter(lead=lead)
    assert runs.filter(result="loop").exists()
    assert runs.filter(result="done").count() <= 2 * workflows.LOOP_MAX_RUNS
    assert max(runs.filter(result="done").values_list("depth", flat=True)) == workflows.LOOP_MAX_RUNS - 1
    assert runs.get(result="loop").trace[-1]["step"] == "loop"


# --- timed triggers ----------------------------------------------------------------------


def test_inactive_leads_run_once_per_inactivity_period(marketer):
    _workflow(marketer, {"inactive_days": 30})
    now = timezone.now()
    quiet = LeadFactory()
    busy = LeadFactory()
    Lead.objects.filter(pk=quiet.pk).update(last_activity_at=now - dt.timedelta(days=31))
    Lead.objects.filter(pk=busy.pk).update(last_activity_at=now - dt.timedelta(days=2))
    assert services.workflows_timed_run(now=now)["done"] == 1
    assert services.workflows_timed_run(now=now + dt.timedelta(days=1))["done"] == 0
    run = WorkflowRun.objects.get()
    assert run.lead == quiet and run.trigger["event"] == "inactive"
    # Active again, then quiet for 30 more days: a new period, a new run.
    Lead.objects.filter(pk=quiet.pk).update(last_activity_at=now + dt.timedelta(days=2))
    Lead.objects.filter(pk=busy.pk).update(last_activity_at=now + dt.timedelta(days=20))
    assert services.workflows_timed_run(now=now + dt.timedelta(days=33))["done"] == 1
    assert WorkflowRun.objects.filter(lead=quiet).count() == 2 and not WorkflowRun.objects.filter(lead=busy).exists()


def test_the_timed_run_goes_through_every_due_lead_in_batches(marketer):
    _workflow(marketer, {"inactive_days": 7}, actions=[{"type": "update", "field": "city", "value": "Lyon"}])
    now = timezone.now()
    leads = [LeadFactory() for _ in range(5)]
    Lead.objects.filter(pk__in=[x.pk for x in leads]).update(last_activity_at=now - dt.timedelta(days=8))
    assert services.workflows_timed_run(now=now, batch=2)["done"] == 5
    assert set(Lead.objects.values_list("city", flat=True)) == {"Lyon"}
    assert services.workflows_timed_run(now=now, batch=2)["done"] == 0


def test_a_date_property_fires_on_its_day_once(marketer):
    _workflow(marketer, {"date_property": "renewal_date", "offset_days": -30})
    now = timezone.now()
    due = (timezone.localdate(now) + dt.timedelta(days=30)).isoformat()
    later = (timezone.localdate(now) + dt.timedelta(days=60)).isoformat()
    renewing = LeadFactory(properties={"renewal_date": due})
    LeadFactory(properties={"renewal_date": later})
    LeadFactory(properties={"renewal_date": "not a date"})
    assert services.workflows_timed_run(now=now)["done"] == 1
    assert services.workflows_timed_run(now=now + dt.timedelta(hours=1))["done"] == 0
    assert WorkflowRun.objects.get().lead == renewing
    # A beat that stopped for a day still runs it the day after (catch-up), once.
    WorkflowRun.objects.all().delete()
    assert services.workflows_timed_run(now=now + dt.timedelta(days=1))["done"] == 1


# --- end to end --------------------------------------------------------------------------


def test_a_captured_lead_runs_the_created_workflows_after_its_first_scoring(
    marketer, django_capture_on_commit_callbacks
):
    workflow = _workflow(
        marketer, {"event": "lead.created"}, actions=[{"type": "update", "field": "city", "value": "Nantes"}]
    )
    with django_capture_on_commit_callbacks(execute=True):
        lead, created = lead_services.lead_capture(data={"email": "new@x.example", "source": "web"}, actor=marketer)
    assert created
    run = WorkflowRun.objects.get(workflow=workflow)
    assert run.lead == lead and run.result == "done" and run.key == f"wf:{workflow.pk}:created:{lead.pk}"
    assert Lead.objects.get(pk=lead.pk).city == "Nantes"


def test_a_move_to_mql_creates_a_task_and_enrolls_in_a_sequence(marketer, seller, django_capture_on_commit_callbacks):
    template = services.email_template_create(actor=marketer, name="Nurture", subject="Hi", text="Hi", html="<p>Hi</p>")
    sequence = services.sequence_create(
        actor=marketer,
        name="MQL nurture",
        steps=[{"type": "wait", "days": 2}, {"type": "email", "template": template.pk}],
    )
    workflow = _workflow(
        marketer,
        {"event": "lead.stage_changed", "to": "MQL"},
        actions=[TASK, {"type": "enroll", "sequence": sequence.pk}],
        name="MQL follow-up",
    )
    lead = LeadFactory(owner=seller, score=90, consent_status=ConsentStatus.OPT_IN)
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_promote(lead_id=lead.pk, actor=marketer)
    run = WorkflowRun.objects.get(workflow=workflow, lead=lead)
    assert run.result == "done"
    assert [s.get("outcome") for s in run.trace if s["step"] == "action"] == ["done", "done"]
    assert Task.objects.get(lead=lead).assignee == seller
    enrollment = Enrollment.objects.get(lead=lead, sequence=sequence)
    assert enrollment.state == "active" and enrollment.enrolled_by == f"workflow:{workflow.pk}"


# --- API ---------------------------------------------------------------------------------


def test_the_api_creates_edits_lists_and_deletes(marketer, auth_client):
    client = auth_client(marketer.user)
    body = {"name": "API flow", "trigger": {"event": "lead.stage_changed", "to": "MQL"}, "actions": [TASK]}
    created = client.post("/api/v1/workflows/", body, format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["trigger"] == {"event": "lead.stage_changed", "to": "MQL"} and data["conditions"] == {}
    assert data["runs"]["total"] == 0
    pk = data["id"]
    patched = client.patch(f"/api/v1/workflows/{pk}/", {"active": False}, format="json")
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert [w["name"] for w in client.get("/api/v1/workflows/").json()] == ["API flow"]
    assert client.delete(f"/api/v1/workflows/{pk}/").status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "trigger": {"event": "nope"}, "actions": [TASK]},
        {"name": "x", "trigger": {"inactive_days": 3}, "actions": [{"type": "task", "kind": "fax"}]},
        {"name": "x", "trigger": {"inactive_days": 3}, "actions": "route"},
        {"name": "x", "trigger": {"inactive_days": 3}, "actions": [{"type": "notify_owner", "text": "a\x00b"}]},
        {"name": "x", "trigger": {"inactive_days": 3}, "conditions": {"field": "x"}, "actions": [TASK]},
        {"name": "x", "trigger": [], "actions": [TASK]},
        {"name": "x" * 300, "trigger": {"inactive_days": 3}, "actions": [TASK]},
    ],
)
def test_bad_bodies_answer_400_with_field_errors(marketer, auth_client, body):
    answer = auth_client(marketer.user).post("/api/v1/workflows/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()


def test_runs_are_paged_and_an_sdr_sees_only_its_leads_runs(marketer, auth_client, make_user):
    team = TeamFactory(name="Runs team")
    sdr = make_user("sdr", team=team)
    other = make_user("sdr", team=team)
    workflow = _workflow(marketer, {"event": "lead.created"})
    mine, theirs = LeadFactory(owner=sdr), LeadFactory(owner=other)
    services.workflows_run(event=events.LEAD_CREATED, lead_ids=[mine.pk, theirs.pk])
    page = auth_client(marketer.user).get(f"/api/v1/workflows/{workflow.pk}/runs/?page_size=1").json()
    assert len(page["results"]) == 1 and page["next"]
    seen = auth_client(sdr).get(f"/api/v1/workflows/{workflow.pk}/runs/").json()["results"]
    assert [r["lead"] for r in seen] == [mine.pk]
    assert seen[0]["trace"][-1]["outcome"] == "done"
    listed = auth_client(sdr).get(f"/api/v1/workflows/{workflow.pk}/").json()
    assert listed["runs"]["total"] == 1
    assert (
        auth_client(sdr).patch(f"/api/v1/workflows/{workflow.pk}/", {"active": False}, format="json").status_code == 403
    )

"""The actions sequences and workflows run (nurturing.actions): their pure validation, and
each type through the owning service on PostgreSQL, idempotent by key."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Notification, Role
from leadcrm.actors import Actor
from leads.models import ConsentStatus, Lead, Stage, Task
from nurturing import actions, services
from nurturing.models import Enrollment, Message, Sequence, SequenceVersion
from routing.models import RoutingRule
from tests.factories import LeadFactory, TeamFactory, UserFactory

AUTO = Actor.automation()

# --- action_errors (pure) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        {"type": "email", "template": 3},
        {"type": "task", "kind": "call", "due_in_hours": 24, "title": "Call them"},
        {"type": "task"},
        {"type": "update", "field": "city", "value": "Lyon"},
        {"type": "update", "field": "country", "value": "Allemagne"},
        {"type": "update", "field": "company_size", "value": 40},
        {"type": "update", "field": "properties.plan", "value": "pro"},
        {"type": "update", "field": "properties.plan", "value": None},
        {"type": "notify_owner"},
        {"type": "notify_owner", "text": "Hot lead"},
        {"type": "move_stage", "to": "MQL"},
        {"type": "enroll", "sequence": 2},
        {"type": "assign", "user": 7},
        {"type": "route"},
    ],
)
def test_valid_actions_have_no_errors(action):
    assert actions.action_errors(action) == []


@pytest.mark.parametrize(
    ("action", "word"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ({}, "type"),
        ({"type": "webhook"}, "type"),
        ({"type": "email"}, "template"),
        ({"type": "email", "template": True}, "template"),
        ({"type": "email", "template": "3"}, "template"),
        ({"type": "email", "template": 3, "extra": 1}, "extra"),
        ({"type": "task", "kind": "fax"}, "kind"),
        ({"type": "task", "due_in_hours": -1}, "due_in_hours"),
        ({"type": "task", "due_in_hours": 10**9}, "due_in_hours"),
        ({"type": "task", "due_in_hours": "24"}, "due_in_hours"),
        ({"type": "task", "title": "x" * 201}, "title"),
        ({"type": "task", "title": "nul\x00byte"}, "title"),
        ({"type": "update", "field": "stage", "value": "SQL"}, "field"),
        ({"type": "update", "field": "email", "value": "a@b.example"}, "field"),
        ({"type": "update", "field": "city"}, "value"),
        ({"type": "update", "field": "company_size", "value": "many"}, "value"),
        ({"type": "update", "field": "country", "value": "Atlantis"}, "value"),
        ({"type": "update", "field": "properties.plan", "value": {"nested": 1}}, "value"),
        ({"type": "update", "field": 3, "value": 1}, "field"),
        ({"type": "notify_owner", "text": 5}, "text"),
        ({"type": "move_stage", "to": "NOPE"}, "to"),
        ({"type": "enroll"}, "sequence"),
        ({"type": "assign", "user": 0}, "user"),
        ({"type": "route", "team": 1}, "team"),
    ],
)
def test_invalid_actions_name_what_is_wrong(action, word):
    errors = actions.action_errors(action)
    assert errors and any(word in e for e in errors), errors


def test_long_keys_are_hashed_to_fit_the_key_columns():
    short = actions.lead_key("wf:1:abc", 7)
    assert short == "wf:1:abc:7"
    long = actions.lead_key("k" * 300, 7)
    assert len(long) <= 200 and long != actions.lead_key("k" * 300, 8)


# --- running (PostgreSQL) ---------------------------------------------------------------


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def seller(db):
    return UserFactory(role=Role.SDR, team=TeamFactory(name="FR"))


@pytest.fixture
def template(db, make_user):
    return services.email_template_create(
        actor=Actor(make_user("marketing")), name="Hello", subject="Hi", html="<p>Hi</p>", text="Hi"
    )


@pytest.mark.django_db
def test_email_is_queued_once_per_key_and_refused_without_consent(template, now):
    ok = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    no = LeadFactory(consent_status=ConsentStatus.NONE)
    action = {"type": "email", "template": template.pk}
    first = actions.actions_run(actor=AUTO, action=action, lead_ids=[ok.pk, no.pk, 999999], key="wf:1:x", now=now)
    assert first == {ok.pk: "done", no.pk: "refused:no_consent", 999999: "skipped:not_found"}
    again = actions.actions_run(actor=AUTO, action=action, lead_ids=[ok.pk], key="wf:1:x", now=now)
    assert again == {ok.pk: "done"}
    assert Message.objects.filter(lead=ok).count() == 1
    assert Message.objects.get(lead=ok).idempotency_key == "wf:1:x:" + str(ok.pk)


@pytest.mark.django_db
def test_email_of_a_sequence_step_carries_its_enrollment_step_and_variant(template, now):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    sequence = Sequence.objects.create(name="Drip")
    version = SequenceVersion.objects.create(sequence=sequence, number=1, steps=[{"type": "email"}])
    enrollment = Enrollment.objects.create(sequence=sequence, version=version, lead=lead, enrolled_at=now)
    outcome = actions.actions_run(
        actor=AUTO,
        action={"type": "email", "template": template.pk},
        lead_ids=[lead.pk],
        key=f"enr:{enrollment.pk}:1",
        now=now,
        context={"enrollments": {lead.pk: enrollment.pk}, "step": "1.variants.0.steps.0", "variant": "1:0"},
    )
    assert outcome == {lead.pk: "done"}
    message = Message.objects.get(lead=lead)
    assert (message.enrollment_id, message.step, message.variant) == (enrollment.pk, "1.variants.0.steps.0", "1:0")


@pytest.mark.django_db
def test_task_goes_to_the_owner_once_per_key(seller, now):
    owned, pooled = LeadFactory(owner=seller), LeadFactory()
    action = {"type": "task", "kind": "call", "due_in_hours": 24, "title": "Call back"}
    for _ in range(2):
        outcome = actions.actions_run(actor=AUTO, action=action, lead_ids=[owned.pk, pooled.pk], key="wf:2:t", now=now)
        assert outcome == {owned.pk: "done", pooled.pk: "done"}
    tasks = {t.lead_id: t for t in Task.objects.all()}
    assert len(tasks) == 2
    assert tasks[owned.pk].assignee == seller and tasks[pooled.pk].assignee is None
    assert tasks[owned.pk].due_at == now + dt.timedelta(hours=24) and tasks[owned.pk].kind == "call"
    assert Notification.objects.filter(user=seller, kind="task").count() == 1


@pytest.mark.django_db
def test_update_sets_a_field_or_a_property_through_the_lead_service(now):
    lead = LeadFactory(city="Paris", properties={"plan": "free", "keep": 1})
    out = actions.actions_run(
        actor=AUTO, action={"type": "update", "field": "city", "value": " Lyon "}, lead_ids=[lead.pk], key="k", now=now
    )
    assert out == {lead.pk: "done"}
    actions.actions_run(
        actor=AUTO,
        action={"type": "update", "field": "properties.plan", "value": "pro"},
        lead_ids=[lead.pk],
        key="k2",
        now=now,
    )
    actions.actions_run(
        actor=AUTO,
        action={"type": "update", "field": "country", "value": "Germany"},
        lead_ids=[lead.pk],
        key="k",
        now=now,
    )
    lead.refresh_from_db()
    assert (lead.city, lead.country, lead.properties) == ("Lyon", "DE", {"plan": "pro", "keep": 1})
    bad = actions.actions_run(
        actor=AUTO,
        action={"type": "update", "field": "country", "value": "Atlantis"},
        lead_ids=[lead.pk],
        key="k",
        now=now,
    )
    assert bad == {lead.pk: "refused:invalid"}


@pytest.mark.django_db
def test_notify_owner_once_per_key_and_skips_leads_without_owner(seller, now):
    owned, pooled = LeadFactory(owner=seller), LeadFactory()
    action = {"type": "notify_owner", "text": "Pricing page twice"}
    first = actions.actions_run(actor=AUTO, action=action, lead_ids=[owned.pk, pooled.pk], key="wf:3", now=now)
    assert first == {owned.pk: "done", pooled.pk: "skipped:no_owner"}
    second = actions.actions_run(actor=AUTO, action=action, lead_ids=[owned.pk], key="wf:3", now=now)
    assert second == {owned.pk: "skipped:already_done"}
    (note,) = Notification.objects.filter(user=seller, kind="automation")
    assert note.lead_id == owned.pk and "Pricing page twice" in note.text


@pytest.mark.django_db
def test_move_stage_goes_through_the_guards(now):
    hot, cold = LeadFactory(score=95), LeadFactory(score=1)
    out = actions.actions_run(
        actor=AUTO, action={"type": "move_stage", "to": "MQL"}, lead_ids=[hot.pk, cold.pk], key="m", now=now
    )
    assert out == {hot.pk: "done", cold.pk: "refused:mql_threshold"}
    assert Lead.objects.get(pk=hot.pk).stage == Stage.MQL and Lead.objects.get(pk=cold.pk).stage == Stage.MCL
    again = actions.actions_run(
        actor=AUTO, action={"type": "move_stage", "to": "MQL"}, lead_ids=[hot.pk], key="m", now=now
    )
    assert again == {hot.pk: "skipped:already_there"}
    won = actions.actions_run(
        actor=AUTO, action={"type": "move_stage", "to": "WO"}, lead_ids=[cold.pk], key="w", now=now
    )
    assert won[cold.pk].startswith("refused:")


@pytest.mark.django_db
def test_assign_only_to_active_sellers_and_once(seller, make_user, now):
    lead = LeadFactory()
    marketer = make_user("marketing")
    refused = actions.actions_run(
        actor=AUTO, action={"type": "assign", "user": marketer.pk}, lead_ids=[lead.pk], key="a", now=now
    )
    assert refused == {lead.pk: "refused:not_a_seller"}
    action = {"type": "assign", "user": seller.pk}
    assert actions.actions_run(actor=AUTO, action=action, lead_ids=[lead.pk], key="a", now=now) == {lead.pk: "done"}
    assert actions.actions_run(actor=AUTO, action=action, lead_ids=[lead.pk], key="a", now=now) == {
        lead.pk: "skipped:unchanged"
    }
    assert Lead.objects.get(pk=lead.pk).owner == seller


@pytest.mark.django_db
def test_route_gives_unowned_leads_by_the_rules_and_leaves_owned_ones(seller, now):
    RoutingRule.objects.create(name="All", position=1, conditions={}, team=seller.team)
    unowned, owned = LeadFactory(country="FR"), LeadFactory(owner=UserFactory(role=Role.SDR))
    out = actions.actions_run(actor=AUTO, action={"type": "route"}, lead_ids=[unowned.pk, owned.pk], key="r", now=now)
    assert out == {unowned.pk: "done", owned.pk: "skipped:owned_or_closed"}
    assert Lead.objects.get(pk=unowned.pk).team == seller.team


@pytest.mark.django_db
def test_enroll_through_the_sequence_service_when_it_exists(template, make_user, now):
    lead = LeadFactory(consent_status=ConsentStatus.OPT_IN)
    if not hasattr(services, "sequence_enroll"):
        out = actions.actions_run(
            actor=AUTO, action={"type": "enroll", "sequence": 1}, lead_ids=[lead.pk], key="e", now=now
        )
        assert out == {lead.pk: "skipped:unavailable"}
        return
    sequence = services.sequence_create(
        actor=Actor(make_user("marketing")),
        name="Welcome drip",
        steps=[{"type": "wait", "days": 2}, {"type": "email", "template": template.pk}],
    )
    action = {"type": "enroll", "sequence": sequence.pk}
    assert actions.actions_run(actor=AUTO, action=action, lead_ids=[lead.pk], key="e", now=now) == {lead.pk: "done"}
    again = actions.actions_run(actor=AUTO, action=action, lead_ids=[lead.pk], key="e", now=now)
    assert again == {lead.pk: "skipped:already_enrolled"}
    assert Enrollment.objects.filter(lead=lead, sequence=sequence, state="active").count() == 1


@pytest.mark.django_db
def test_an_invalid_stored_action_refuses_every_lead(now):
    lead = LeadFactory()
    out = actions.actions_run(actor=AUTO, action={"type": "nope"}, lead_ids=[lead.pk], key="x", now=now)
    assert out == {lead.pk: "refused:invalid"}

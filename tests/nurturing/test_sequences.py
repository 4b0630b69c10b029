"""The sequence engine on PostgreSQL, times injected (never slept): versions, enrollment
rules (consent, visibility, active once, re-entry), steps at their times, branches and
splits, send windows in the lead's zone, exits on reply / opt-out / stage change, the
frequency cap across sequences, a task delivered twice sending once, a failing enrollment
not stopping its batch; and a property over random orders of consent, opt-out, bounce,
enrollment, tick and send events."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import AuditEntry
from leads import services as lead_services
from leads.models import ConsentStatus, Lead, Stage
from nurturing import sequence_rules as rules
from nurturing import services, tasks
from nurturing.models import (
    Enrollment,
    EnrollmentState,
    Message,
    MessageStatus,
    Segment,
    SegmentKind,
    SegmentMembership,
    StepRun,
    Suppression,
    SuppressionReason,
)
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

# A Monday, 10:00 UTC, well after the real clock (messages_queue stamps the real time).
T0 = dt.datetime(2031, 1, 6, 10, 0, tzinfo=dt.UTC)
_names = itertools.count(1)


@pytest.fixture
def marketer(make_user):
    return Actor(make_user("marketing"))


@pytest.fixture
def templates(marketer):
    return [
        services.email_template_create(actor=marketer, name=f"T{i}", subject=f"Subject {i}", text=f"Body {i}")
        for i in range(4)
    ]


def opted_in(**fields) -> Lead:
    return LeadFactory(consent_status=ConsentStatus.OPT_IN, **fields)


def make(marketer, steps, **fields):
    return services.sequence_create(actor=marketer, name=f"Seq {next(_names)}", steps=steps, **fields)


def email(template) -> dict:
    return {"type": "email", "template": template.pk}


def send_all(now: dt.datetime) -> dict:
    ids = list(Message.objects.filter(status=MessageStatus.QUEUED).values_list("pk", flat=True))
    return services.messages_send(message_ids=ids, now=now)


# --- configuration -------------------------------------------------------------------------


def test_editing_steps_makes_a_version_and_running_enrollments_stay_unless_moved(marketer, templates):
    seq = make(marketer, [email(templates[0]), {"type": "wait", "days": 1}, email(templates[1])])
    lead = opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk], now=T0)
    services.sequences_tick(now=T0)
    v1 = seq.current_version
    seq = services.sequence_update(
        actor=marketer,
        sequence_id=seq.pk,
        steps=[email(templates[0]), {"type": "wait", "days": 1}, email(templates[2])],
    )
    assert seq.current_version.number == 2
    enrollment = Enrollment.objects.get()
    assert enrollment.version_id == v1.pk
    services.sequences_tick(now=T0 + dt.timedelta(days=1))
    assert Message.objects.order_by("-id").first().template_id == templates[1].pk  # its own version's step
    services.sequence_update(actor=marketer, sequence_id=seq.pk, name=seq.name)  # no new version
    assert seq.versions.count() == 2
    other = opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[other.pk], now=T0)
    services.sequence_update(
        actor=marketer,
        sequence_id=seq.pk,
        steps=[{"type": "wait", "days": 5}, email(templates[3])],
        move_running=True,
    )
    moved = Enrollment.objects.get(lead=other)
    assert moved.version.number == 3 and moved.cursor == [0]
    actions = set(AuditEntry.objects.filter(target_type="nurturing.sequence").values_list("action", flat=True))
    assert actions >= {"nurturing.sequence.create", "nurturing.sequence.update", "nurturing.sequence.enroll"}


def test_bad_configuration_is_field_errors(marketer, templates):
    with pytest.raises(ServiceError) as err:
        make(marketer, [{"type": "email", "template": 10**9}, {"type": "wait"}], exit_on=["never"], reentry="x")
    assert set(err.value.errors) == {"steps[0].template", "steps[1]", "exit_on", "reentry"}
    seq = make(marketer, [])
    with pytest.raises(ServiceError) as err:
        services.sequence_update(actor=marketer, sequence_id=seq.pk, steps=[{"type": "enroll", "sequence": seq.pk}])
    assert "steps" in err.value.errors


# --- enrolling -----------------------------------------------------------------------------


def test_enrollment_outcomes(marketer, templates, make_user):
    seq = make(marketer, [email(templates[0])], reentry="never")
    sdr = make_user("sdr", team="A")
    mine, theirs = opted_in(owner=sdr), opted_in(owner=make_user("sdr", team="B"))
    no_consent = LeadFactory(owner=sdr)
    got = services.sequence_enroll(
        actor=Actor(sdr), sequence_id=seq.pk, lead_ids=[mine.pk, theirs.pk, no_consent.pk, 10**9], now=T0
    )
    assert got == {mine.pk: "enrolled", theirs.pk: "not_found", no_consent.pk: "no_consent", 10**9: "not_found"}
    assert services.sequence_enroll(actor=Actor(sdr), sequence_id=seq.pk, lead_ids=[mine.pk], now=T0) == {
        mine.pk: "already_enrolled"
    }
    services.sequences_tick(now=T0)
    assert Enrollment.objects.get(lead=mine).state == EnrollmentState.COMPLETED
    assert services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[mine.pk], now=T0) == {
        mine.pk: "reentry"
    }
    services.sequence_update(actor=marketer, sequence_id=seq.pk, active=False)
    assert services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[theirs.pk], now=T0) == {
        theirs.pk: "inactive"
    }


def test_reentry_after_days_and_always(marketer, templates):
    later = make(marketer, [email(templates[0])], reentry="after_days:10")
    always = make(marketer, [email(templates[0])], reentry="always")
    lead = opted_in()
    for seq in (later, always):
        services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk], now=T0)
    services.sequences_tick(now=T0)
    assert Enrollment.objects.filter(state=EnrollmentState.COMPLETED).count() == 2
    soon, after = T0 + dt.timedelta(days=3), T0 + dt.timedelta(days=11)
    assert services.sequence_enroll(actor=marketer, sequence_id=later.pk, lead_ids=[lead.pk], now=soon)[lead.pk] == (
        "reentry"
    )
    assert services.sequence_enroll(actor=marketer, sequence_id=always.pk, lead_ids=[lead.pk], now=soon)[lead.pk] == (
        "enrolled"
    )
    assert services.sequence_enroll(actor=marketer, sequence_id=later.pk, lead_ids=[lead.pk], now=after)[lead.pk] == (
        "enrolled"
    )


def test_a_segment_is_enrolled_by_its_members(marketer, templates):
    seq = make(marketer, [email(templates[0])])
    segment = Segment.objects.create(name="List", kind=SegmentKind.STATIC)
    members = [opted_in() for _ in range(3)] + [LeadFactory()]
    SegmentMembership.objects.bulk_create([SegmentMembership(segment=segment, lead=m, added_at=T0) for m in members])
    got = services.sequence_enroll(actor=marketer, sequence_id=seq.pk, segment_id=segment.pk, now=T0)
    assert sorted(got.values()) == ["enrolled"] * 3 + ["no_consent"]
    assert set(Enrollment.objects.values_list("enrolled_by", flat=True)) == {f"segment:{segment.pk}"}


def test_a_lead_enrolled_now_starts_at_once(marketer, templates, django_capture_on_commit_callbacks):
    seq = make(marketer, [email(templates[0]), {"type": "wait", "days": 3}, email(templates[1])])
    lead = opted_in()
    with django_capture_on_commit_callbacks(execute=True):
        services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk])
    # enrollments_run, then messages_send, ran after the commit (eager here, a worker in production)
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "Subject 0"
    enrollment = Enrollment.objects.get()
    assert enrollment.cursor == [2] and enrollment.next_run_at > enrollment.enrolled_at + dt.timedelta(days=2)


# --- walking -------------------------------------------------------------------------------


def test_steps_run_at_their_times_and_every_step_is_kept(marketer, templates):
    seq = make(marketer, [email(templates[0]), {"type": "wait", "days": 2}, email(templates[1])])
    lead = opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk], now=T0)
    assert services.sequences_tick(now=T0) == 1
    assert send_all(T0)["sent"] == 1
    assert services.sequences_tick(now=T0 + dt.timedelta(days=1)) == 0  # not due
    assert services.sequences_tick(now=T0 + dt.timedelta(days=2)) == 1
    assert send_all(T0 + dt.timedelta(days=2))["sent"] == 1
    enrollment = Enrollment.objects.get()
    assert enrollment.state == EnrollmentState.COMPLETED and enrollment.steps_run == 3
    runs = list(StepRun.objects.filter(enrollment=enrollment).values_list("path", "type", "outcome"))
    assert runs == [
        ("0", "email", "queued"),
        ("1", "wait", "waiting"),
        ("2", "email", "queued"),
        ("", "end", "completed"),
    ]
    keys = sorted(Message.objects.values_list("idempotency_key", "step"))
    assert keys == [(f"enr:{enrollment.pk}:0", "0"), (f"enr:{enrollment.pk}:2", "2")]
    assert set(Message.objects.values_list("enrollment_id", flat=True)) == {enrollment.pk}


def test_branches_and_splits_as_configured(marketer, templates):
    steps = [
        {
            "type": "branch",
            "if": {"field": "score", "op": "gte", "value": 50},
            "then": [email(templates[0])],
            "else": [
                {
                    "type": "split",
                    "variants": [
                        {"weight": 1, "steps": [email(templates[1])]},
                        {"weight": 3, "steps": [email(templates[2])]},
                    ],
                }
            ],
        },
        email(templates[3]),
    ]
    seq = make(marketer, steps)
    hot, cold = opted_in(score=80), [opted_in(score=10) for _ in range(12)]
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[hot.pk, *[c.pk for c in cold]], now=T0)
    services.sequences_tick(now=T0)
    hot_enrollment = Enrollment.objects.get(lead=hot)
    branch = StepRun.objects.get(enrollment=hot_enrollment, type="branch")
    assert branch.outcome == "then" and branch.detail["facts"] == {"score": 80}
    assert list(Message.objects.filter(lead=hot).order_by("id").values_list("template_id", flat=True)) == [
        templates[0].pk,
        templates[3].pk,
    ]
    for enrollment in Enrollment.objects.filter(lead__in=cold):
        chosen = rules.choose_variant([1, 3], enrollment_id=enrollment.pk, path="0.else.0")
        split = StepRun.objects.get(enrollment=enrollment, type="split")
        assert split.outcome == f"variant:{chosen}" and split.path == "0.else.0"
        message = Message.objects.filter(enrollment=enrollment).order_by("id").first()
        assert message.template_id == templates[1 + chosen].pk
        assert message.variant == f"0.else.0:{chosen}" and message.step == f"0.else.0.variants.{chosen}.steps.0"


def test_opened_last_reads_the_previous_email_of_the_enrollment(marketer, templates):
    steps = [
        email(templates[0]),
        {"type": "wait", "days": 1},
        {"type": "branch", "if": {"opened_last": True}, "then": [email(templates[1])], "else": [email(templates[2])]},
    ]
    seq = make(marketer, steps)
    a, b = opted_in(), opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[a.pk, b.pk], now=T0)
    services.sequences_tick(now=T0)
    Message.objects.filter(lead=a).update(opened_at=T0)
    services.sequences_tick(now=T0 + dt.timedelta(days=1))
    assert Message.objects.filter(lead=a).order_by("-id").first().template_id == templates[1].pk
    assert Message.objects.filter(lead=b).order_by("-id").first().template_id == templates[2].pk


def test_the_send_window_is_in_the_leads_zone(marketer, templates):
    window = {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}
    seq = make(marketer, [{"type": "wait", "hours": 1, "window": window}, email(templates[0])])
    tokyo = opted_in(properties={"timezone": "Asia/Tokyo"})
    new_york = opted_in(country="US")
    paris = opted_in(country="FR")
    services.sequence_enroll(
        actor=marketer, sequence_id=seq.pk, lead_ids=[tokyo.pk, new_york.pk, paris.pk], now=T0
    )  # Monday 10:00 UTC: 19:00 in Tokyo, 05:00 in New York, 11:00 in Paris
    services.sequences_tick(now=T0)
    due = dict(Enrollment.objects.values_list("lead_id", "next_run_at"))
    assert due[paris.pk] == T0 + dt.timedelta(hours=1)
    assert due[new_york.pk] == dt.datetime(2031, 1, 6, 14, 0, tzinfo=dt.UTC)  # 09:00 in New York
    assert due[tokyo.pk] == dt.datetime(2031, 1, 7, 0, 0, tzinfo=dt.UTC)  # Tuesday 09:00 in Tokyo
    services.sequences_tick(now=T0 + dt.timedelta(hours=1))
    assert list(Message.objects.values_list("lead_id", flat=True)) == [paris.pk]
    # The tick comes late, after the window closed in New York: the e-mail waits for the next one.
    late = dt.datetime(2031, 1, 6, 23, 0, tzinfo=dt.UTC)  # 18:00 in New York
    services.sequences_tick(now=late)
    enrollment = Enrollment.objects.get(lead=new_york)
    assert enrollment.next_run_at == dt.datetime(2031, 1, 7, 14, 0, tzinfo=dt.UTC)
    assert StepRun.objects.filter(enrollment=enrollment, outcome="waiting:window").exists()
    assert not Message.objects.filter(lead=new_york).exists()


# --- exits ---------------------------------------------------------------------------------


def _enrolled(marketer, templates, *, exit_on, n=1, steps=None):
    seq = make(
        marketer, steps or [email(templates[0]), {"type": "wait", "days": 1}, email(templates[1])], exit_on=exit_on
    )
    leads = [opted_in(score=90) for _ in range(n)]
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk for lead in leads], now=T0)
    services.sequences_tick(now=T0)
    send_all(T0)
    return seq, leads


def test_a_reply_ends_the_enrollment(marketer, templates, django_capture_on_commit_callbacks):
    seq, (lead,) = _enrolled(marketer, templates, exit_on=["reply"])
    message = Message.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.reply_record(reply=services.InboundReply(from_email=lead.email, in_reply_to=message.smtp_id))
    enrollment = Enrollment.objects.get()
    assert enrollment.state == EnrollmentState.EXITED and enrollment.exit_reason == "reply"
    assert services.sequences_tick(now=T0 + dt.timedelta(days=2)) == 0
    assert Message.objects.count() == 1


def test_an_email_reply_event_from_an_integration_ends_the_enrollment(
    marketer, templates, django_capture_on_commit_callbacks
):
    """A reply seen by another tool (a sales inbox) reaches us as an `email_reply` event."""
    _, (lead,) = _enrolled(marketer, templates, exit_on=["reply"])
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.events_record(items=[{"lead_id": lead.pk, "type": "email_reply"}], actor=marketer)
    enrollment = Enrollment.objects.get()
    assert enrollment.state == EnrollmentState.EXITED and enrollment.exit_reason == "reply"


def test_an_opt_out_ends_the_enrollment_only_where_listed(marketer, templates, django_capture_on_commit_callbacks):
    _, (lead,) = _enrolled(marketer, templates, exit_on=["opt_out"])
    other = make(marketer, [{"type": "wait", "days": 1}, email(templates[1])], exit_on=["reply"])
    services.sequence_enroll(actor=marketer, sequence_id=other.pk, lead_ids=[lead.pk], now=T0)
    services.sequences_tick(now=T0)  # its wait starts
    message = Message.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        services.unsubscribe(token=services.mail.unsubscribe_token(message))
    states = dict(Enrollment.objects.values_list("sequence_id", "exit_reason"))
    assert states[other.pk] == "" and "opt_out" in states.values()
    services.sequences_tick(now=T0 + dt.timedelta(days=1))
    assert send_all(T0 + dt.timedelta(days=1))["sent"] == 0  # the other sequence's e-mail: refused
    assert StepRun.objects.filter(outcome="refused:no_consent").exists()


def test_stage_changes_exit_but_not_the_sequences_own_move(marketer, templates, django_capture_on_commit_callbacks):
    _, (moved_by_hand,) = _enrolled(marketer, templates, exit_on=["stage_change"])
    own_steps = [{"type": "move_stage", "to": "MQL"}, {"type": "wait", "days": 1}, email(templates[1])]
    own_seq = make(marketer, own_steps, exit_on=["stage_change"])
    lead = opted_in(score=90)
    with django_capture_on_commit_callbacks(execute=True):
        services.sequence_enroll(actor=marketer, sequence_id=own_seq.pk, lead_ids=[lead.pk], now=T0)
        services.sequences_tick(now=T0)
    assert Lead.objects.get(pk=lead.pk).stage == Stage.MQL
    assert Enrollment.objects.get(lead=lead).state == EnrollmentState.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_transition(lead_id=moved_by_hand.pk, to=Stage.MQL, actor=marketer, override=True)
    assert Enrollment.objects.get(lead=moved_by_hand).exit_reason == "stage_change"


def test_converted_is_reaching_sql(marketer, templates):
    _, (lead,) = _enrolled(marketer, templates, exit_on=["converted"])
    assert services.enrollments_exit(lead_ids=[lead.pk], reason="stage_change", to_stage=Stage.MQL) == 0
    assert services.enrollments_exit(lead_ids=[lead.pk], reason="stage_change", to_stage=Stage.SQL) == 1
    assert Enrollment.objects.get().exit_reason == "converted"


def test_a_bounce_ends_the_enrollment(marketer, templates):
    _, (lead,) = _enrolled(marketer, templates, exit_on=["bounce"])
    tasks.enrollments_exit(lead_ids=[lead.pk], reason="bounce", message_ids=[1])
    assert Enrollment.objects.get().exit_reason == "bounce"


# --- sending once, the cap, failures --------------------------------------------------------


def test_the_frequency_cap_holds_across_sequences(marketer, templates, settings):
    settings.LEADCRM_EMAIL_FREQUENCY_CAP = "2/7"
    lead = opted_in()
    for _ in range(2):
        seq = make(marketer, [email(templates[0]), email(templates[1])])
        services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk], now=T0)
    services.sequences_tick(now=T0)
    send_all(T0)
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 2 and len(mail.outbox) == 2
    later = make(marketer, [email(templates[2])])
    services.sequence_enroll(actor=marketer, sequence_id=later.pk, lead_ids=[lead.pk], now=T0)
    services.sequences_tick(now=T0)
    run = StepRun.objects.get(enrollment__sequence=later, type="email")
    assert run.outcome == "refused:frequency_cap"  # at queue time; the walk went on
    assert Enrollment.objects.get(sequence=later).state == EnrollmentState.COMPLETED


def test_a_task_delivered_twice_sends_once(marketer, templates):
    seq = make(marketer, [email(templates[0]), {"type": "wait", "days": 1}, email(templates[1])])
    leads = [opted_in() for _ in range(3)]
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk for lead in leads], now=T0)
    ids = list(Enrollment.objects.values_list("pk", flat=True))
    assert services.enrollments_run(enrollment_ids=ids, now=T0) == 3
    assert services.enrollments_run(enrollment_ids=ids, now=T0) == 0  # re-delivered: not due any more
    tasks.enrollments_run(enrollment_ids=ids)  # the task itself (its own clock: not due)
    message_ids = list(Message.objects.values_list("pk", flat=True))
    tasks.messages_send(message_ids=message_ids)
    tasks.messages_send(message_ids=message_ids)
    assert len(mail.outbox) == 3 and Message.objects.count() == 3


def test_a_batch_rolled_back_and_run_again_queues_the_same_messages(marketer, templates):
    """A worker killed after queueing loses its transaction; the next run uses the same keys."""
    seq = make(marketer, [email(templates[0])])
    lead = opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk], now=T0)
    enrollment = Enrollment.objects.get()
    services.messages_queue(
        actor=marketer,
        requests=[services.MessageRequest(lead.pk, templates[0].pk, f"enr:{enrollment.pk}:0", enrollment.pk, "0")],
    )  # as if an earlier run's rows survived
    services.sequences_tick(now=T0)
    assert Message.objects.count() == 1
    assert StepRun.objects.get(type="email").message_id == Message.objects.get().pk


def test_an_error_in_one_enrollment_marks_it_failed_and_the_batch_goes_on(marketer, templates, monkeypatch):
    seq = make(marketer, [{"type": "notify_owner"}, email(templates[0])])
    bad, good = opted_in(), opted_in()
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[bad.pk, good.pk], now=T0)
    from nurturing import actions

    real = actions.actions_run

    def flaky(**kwargs):
        if kwargs["lead_ids"] == [bad.pk]:
            raise RuntimeError("boom")
        return real(**kwargs)

    monkeypatch.setattr(actions, "actions_run", flaky)
    assert services.sequences_tick(now=T0) == 2
    failed, done = Enrollment.objects.get(lead=bad), Enrollment.objects.get(lead=good)
    assert failed.state == EnrollmentState.FAILED and "boom" in failed.last_error
    assert done.state == EnrollmentState.COMPLETED and Message.objects.filter(lead=good).count() == 1
    assert not Message.objects.filter(lead=bad).exists()
    assert StepRun.objects.get(enrollment=failed).outcome == "failed"
    monkeypatch.setattr(actions, "actions_run", real)
    assert services.enrollments_retry(actor=marketer, enrollment_ids=[failed.pk, done.pk], now=T0) == 1
    assert services.sequences_tick(now=T0) == 1
    assert Enrollment.objects.get(lead=bad).state == EnrollmentState.COMPLETED
    assert Message.objects.filter(lead=bad).count() == 1


def test_stopping_by_hand(marketer, templates, make_user):
    seq = make(marketer, [{"type": "wait", "days": 1}, email(templates[0])])
    sdr = make_user("sdr", team="A")
    mine, theirs = opted_in(owner=sdr), opted_in(owner=make_user("sdr", team="B"))
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[mine.pk, theirs.pk], now=T0)
    services.sequences_tick(now=T0)
    ids = list(Enrollment.objects.values_list("pk", flat=True))
    assert services.enrollments_stop(actor=Actor(sdr), enrollment_ids=ids) == 1
    assert Enrollment.objects.get(lead=mine).state == EnrollmentState.STOPPED
    assert services.sequences_tick(now=T0 + dt.timedelta(days=1)) == 1
    assert list(Message.objects.values_list("lead_id", flat=True)) == [theirs.pk]


# --- consent, whatever the order of events -------------------------------------------------

OPS = st.lists(
    st.sampled_from(["opt_in", "opt_out", "bounce", "unbounce", "enroll", "tick", "send"]), min_size=1, max_size=14
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_no_marketing_email_to_a_lead_without_valid_consent_at_its_send_time(make_user, ops):
    actor = Actor(make_user("marketing"))
    n = next(_names)
    template = services.email_template_create(actor=actor, name=f"P{n}", subject="Hi", text="x")
    seq = services.sequence_create(
        actor=actor,
        name=f"P{n}",
        steps=[email(template), {"type": "wait", "hours": 1}, email(template), {"type": "wait", "hours": 1}]
        + [email(template)],
        reentry="always",
    )
    lead = LeadFactory(consent_status=ConsentStatus.NONE)
    now = T0
    mail.outbox.clear()
    for op in ops:
        if op in ("opt_in", "opt_out"):
            Lead.objects.filter(pk=lead.pk).update(consent_status=op)
        elif op == "bounce":
            Suppression.objects.get_or_create(email=lead.email, defaults={"reason": SuppressionReason.HARD_BOUNCE})
        elif op == "unbounce":
            Suppression.objects.filter(email=lead.email).delete()
        elif op == "enroll":
            services.sequence_enroll(actor=actor, sequence_id=seq.pk, lead_ids=[lead.pk], now=now)
        elif op == "tick":
            now += dt.timedelta(minutes=61)
            services.sequences_tick(now=now)
        else:
            before = len(mail.outbox)
            ids = list(Message.objects.filter(lead=lead).values_list("pk", flat=True))
            services.messages_send(message_ids=ids, now=now)
            if len(mail.outbox) > before:
                current = Lead.objects.get(pk=lead.pk)
                assert current.consent_status == ConsentStatus.OPT_IN
                assert not Suppression.objects.filter(email=lead.email).exists()


def test_a_backlog_is_shared_with_more_ticks(marketer, templates):
    """A full first batch sends `fanout - 1` more ticks (through the outbox) to the other
    workers; they drain the same rows side by side, SKIP LOCKED keeping them apart."""
    from leadcrm.models import OutboxMessage

    seq = make(marketer, [email(templates[0])])
    leads = [opted_in() for _ in range(5)]
    services.sequence_enroll(actor=marketer, sequence_id=seq.pk, lead_ids=[lead.pk for lead in leads], now=T0)
    assert services.sequences_tick(now=T0, batch=2, fanout=3) == 5
    sent = OutboxMessage.objects.filter(task="nurturing.tasks.sequences_tick")
    assert sorted(row.payload["part"] for row in sent) == [1, 2]
    assert services.sequences_tick(now=T0, batch=2, fanout=3) == 0 and sent.count() == 2

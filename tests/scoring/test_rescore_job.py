"""The full rescore as the resumable job `scoring.rescore` (issue 14): chunks by lead id, each
chunk's score writes with the cursor and counts in one transaction, so a crash mid-chunk
rolls back that chunk with its cursor and the next run redoes it once; one live rescore at a
time (two requests: one job, or one run after the current one); who asked is audited; the
rule-set changes, the nightly decay and `manage.py rescore` all go through it."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from leadcrm import jobs
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry, Job, JobStatus
from leads import services as lead_services
from leads.models import Lead, ScoreChange
from scoring import services, tasks

pytestmark = pytest.mark.django_db

AUTO = Actor.automation()


def _leads(n: int) -> list[int]:
    """n unscored leads the active set gives 20 points each (Software), in id order."""
    Lead.objects.bulk_create(Lead(email=f"r{i}@example.com", industry="Software") for i in range(n))
    return list(Lead.objects.order_by("pk").values_list("pk", flat=True))


def _changes_per_lead() -> set[int]:
    from django.db.models import Count

    return set(ScoreChange.objects.values("lead").annotate(n=Count("id")).values_list("n", flat=True))


def test_rescore_job_goes_by_chunks_and_counts(active_ruleset):
    ids = _leads(25)
    request = services.rescore_start(actor=AUTO, chunk_size=10, enqueue=False)
    seen = []
    job = jobs.job_run(request.job.pk, on_chunk=lambda cursor, counts: seen.append(cursor["after"]))
    assert job.status == JobStatus.DONE and job.attempts == 1
    assert seen == [ids[9], ids[19], ids[24]]  # three chunks by id, the cursor after each
    assert job.counts == {"leads": 25, "changed": 25, "promoted": 0} and job.cursor == {"after": ids[24]}
    assert set(Lead.objects.values_list("score", flat=True)) == {20}
    assert ScoreChange.objects.count() == 25 and _changes_per_lead() == {1}
    # Idempotent: the same rules again change nothing and write no second history row.
    again = jobs.job_run(services.rescore_start(actor=AUTO, chunk_size=10, enqueue=False).job.pk)
    assert again.counts == {"leads": 25, "changed": 0, "promoted": 0}
    assert ScoreChange.objects.count() == 25


def test_a_crash_mid_chunk_rolls_back_its_writes_with_its_cursor(active_ruleset, monkeypatch):
    ids = _leads(25)
    calls = []
    original = lead_services.lead_scores_set

    def crash_after_the_third_write(**kwargs):
        result = original(**kwargs)  # the chunk's scores are written ...
        calls.append(len(kwargs["updates"]))
        if len(calls) == 3:
            raise RuntimeError("worker lost")  # ... then the process dies before the cursor moves
        return result

    monkeypatch.setattr(lead_services, "lead_scores_set", crash_after_the_third_write)
    job = services.rescore_start(actor=AUTO, chunk_size=10, enqueue=False).job
    left = jobs.job_run(job.pk)
    assert left.status == JobStatus.QUEUED and left.error == "worker lost"
    assert left.cursor == {"after": ids[19]} and left.counts == {"leads": 20, "changed": 20, "promoted": 0}
    assert ScoreChange.objects.count() == 20  # the third chunk's writes went with its transaction
    assert set(Lead.objects.filter(pk__in=ids[20:]).values_list("score", flat=True)) == {0}

    done = jobs.job_run(job.pk)  # the retry starts after the cursor: chunk 3 once
    assert done.status == JobStatus.DONE and done.attempts == 2
    assert done.counts == {"leads": 25, "changed": 25, "promoted": 0}
    assert calls == [10, 10, 5, 5]
    assert ScoreChange.objects.count() == 25 and _changes_per_lead() == {1}


def test_two_requests_make_one_job_and_a_request_during_a_run_one_more(active_ruleset, make_user):
    _leads(3)
    admin = make_user(role="admin")
    first = services.rescore_start(actor=Actor(admin, "user"), engaged_only=True, enqueue=False)
    second = services.rescore_start(actor=AUTO, enqueue=False)  # a second click, wider
    assert first.created and not second.created and second.job.pk == first.job.pk
    job = Job.objects.get(pk=first.job.pk)
    assert job.params["engaged_only"] is False and Job.objects.filter(kind="scoring.rescore").count() == 2
    # (the other one is the fixture's activation, done.)
    assert Job.objects.filter(kind="scoring.rescore", status=JobStatus.QUEUED).count() == 1

    # Its worker started (and died); a request now is run once after it, not beside it.
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, attempts=1, holder="dead", heartbeat_at=timezone.now() - dt.timedelta(minutes=5)
    )
    third = services.rescore_start(actor=AUTO, group="default", enqueue=False)
    fourth = services.rescore_start(actor=AUTO, enqueue=False)
    assert third.follow_up and fourth.follow_up and fourth.job.pk == job.pk
    assert Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).count() == 1
    jobs.job_run(job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.key == ""
    then = Job.objects.get(status=JobStatus.QUEUED)
    assert then.key == jobs.LANE_PREFIX + services.RESCORE_LANE
    assert then.params["group"] is None and then.params["engaged_only"] is False
    assert jobs.job_run(then.pk).counts["leads"] == 3
    assert not Job.objects.filter(kind="scoring.rescore").exclude(key="").exists()  # the lane is free


def test_who_started_a_rescore_is_audited(active_ruleset, make_user):
    admin = make_user(role="admin")
    job = services.rescore_start(actor=Actor(admin, "user"), reason="manual", enqueue=False).job
    services.rescore_start(actor=AUTO, reason="again", enqueue=False)
    entries = list(AuditEntry.objects.filter(action="scoring.rescore.start").order_by("id"))
    mine = [e for e in entries if e.target_id == str(job.pk)]
    assert [(e.actor_id, e.details["reason"], e.details["joined"]) for e in mine] == [
        (admin.pk, "manual", False),
        (None, "again", True),
    ]
    assert mine[0].target_type == "leadcrm.job"


def test_activation_and_rule_edits_go_through_the_job(capture, ruleset_data, django_capture_on_commit_callbacks):
    leads = [capture(industry="Software", company_size=100) for _ in range(3)]
    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True):  # eager: the job runs on commit
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    job = Job.objects.get(kind="scoring.rescore")
    assert job.status == JobStatus.DONE and job.counts["leads"] == 3 and job.counts["changed"] == 3
    assert {x.score for x in Lead.objects.filter(pk__in=[lead.pk for lead in leads])} == {35}
    starts = AuditEntry.objects.filter(action="scoring.rescore.start", target_id=str(job.pk))
    assert [e.details["reason"] for e in starts] == ["scoring.ruleset.activate"]

    # Two edits of the active set in one transaction: one job.
    with django_capture_on_commit_callbacks(execute=True):
        from django.db import transaction

        with transaction.atomic():
            services.ruleset_update(ruleset_id=rs.pk, data={"mql_threshold": 60}, actor=AUTO)
            services.rule_create(
                ruleset_id=rs.pk,
                kind="fit",
                data={"field": "company_size", "operator": "exists", "points": 1},
                actor=AUTO,
            )
    assert Job.objects.filter(kind="scoring.rescore").count() == 2
    assert set(Lead.objects.values_list("score", flat=True)) == {36}


def test_the_nightly_decay_is_one_job_per_night(active_ruleset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.scores_decay.delay().get()
    assert first and tasks.scores_decay.delay().get() == 0  # a second delivery that night
    job = Job.objects.get(pk=first)
    assert job.params["engaged_only"] is True and job.status == JobStatus.DONE
    assert AuditEntry.objects.get(action="scoring.rescore.start", target_id=str(first)).details["reason"] == (
        "nightly decay"
    )


def test_rescore_command_queues_the_job():
    from scoring.models import RuleSet

    out = io.StringIO()
    call_command("rescore", stdout=out)
    assert "No active rule set" in out.getvalue() and not Job.objects.exists()
    RuleSet.objects.create(name="x", version=1, is_active=True)
    call_command("rescore", stdout=out)
    job = Job.objects.get(kind="scoring.rescore")
    assert f"queued as job {job.pk}" in out.getvalue() and job.status == JobStatus.QUEUED


def test_rescore_command_waits_with_progress(active_ruleset):
    _leads(30)
    out = io.StringIO()
    call_command("rescore", "--wait", "--chunk-size", "10", stdout=out)
    text = out.getvalue()
    assert "[" in text and "30/30" in text and "30 leads rescored" in text and "30 changed" in text
    assert Job.objects.filter(kind="scoring.rescore").latest("pk").status == JobStatus.DONE


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--chunk-size", "0"], "must be from 1 to 100000"),
        (["--chunk-size", "ten"], "not a whole number"),
        (["--group", "nope"], "No active rule set in the group 'nope'"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_rescore_command_refuses_bad_arguments(active_ruleset, argv, message):
    n = Job.objects.count()
    with pytest.raises(CommandError, match=message):
        call_command("rescore", *argv, stdout=io.StringIO())
    assert Job.objects.count() == n

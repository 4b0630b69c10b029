"""Scoring tasks and their wiring to domain events; the rescore command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from leadcrm import events
from leadcrm.actors import Actor
from leads.models import Lead, ScoreChange
from scoring import tasks

pytestmark = pytest.mark.django_db


def test_events_are_wired_to_the_rescore_task():
    for event in (events.LEAD_CREATED, events.LEAD_UPDATED, events.LEAD_ACTIVITY_RECORDED):
        assert "scoring.tasks.leads_rescore" in events.REACTIONS[event]


def test_task_options():
    for task in (tasks.leads_rescore, tasks.leads_rescore_all, tasks.scores_decay, tasks.predictive_train):
        assert task.acks_late and task.reject_on_worker_lost
        assert task.autoretry_for == (Exception,)


def test_one_batch_of_events_is_one_rescore(active_ruleset, capture, django_capture_on_commit_callbacks, monkeypatch):
    from leads import services

    a, b = capture(industry="Software"), capture(industry="Retail")
    calls = []
    original = tasks.leads_rescore.apply_async  # how the outbox sends (its rows' ids in a header)
    monkeypatch.setattr(
        tasks.leads_rescore,
        "apply_async",
        lambda kwargs=None, **options: calls.append(kwargs["lead_ids"]) or original(kwargs=kwargs, **options),
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.events_record(
            items=[{"lead_id": a.pk, "type": "demo_request"}] * 3 + [{"lead_id": b.pk, "type": "webinar"}] * 2,
            actor=Actor.automation(),
        )
    assert calls == [[a.pk, b.pk]]
    a.refresh_from_db()
    assert a.engagement_score == 90  # three demo requests of 30 (that rule has no cap)


def test_task_is_idempotent(active_ruleset, capture):
    lead = capture(industry="Software")
    n = ScoreChange.objects.count()
    assert tasks.leads_rescore.delay(lead_ids=[lead.pk, lead.pk]).get() == 0
    assert ScoreChange.objects.count() == n


def test_decay_and_retrain_tasks(active_ruleset, capture):
    capture(industry="Software")
    assert tasks.scores_decay.delay().get() > 0  # the night's rescore job (tests/scoring/test_rescore_job.py)
    assert tasks.predictive_train.delay().get() == 0  # no history: nothing to learn, no retry


def test_beat_schedule_has_decay_and_retrain(settings):
    names = {v["task"] for v in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"scoring.tasks.scores_decay", "scoring.tasks.predictive_train"} <= names


def test_rescore_command_prints_progress(active_ruleset, capture):
    lead = capture(industry="Software")
    Lead.objects.filter(pk=lead.pk).update(score=0, fit_score=0)
    out = io.StringIO()
    call_command("rescore", "--wait", stdout=out)
    text = out.getvalue()
    assert "[" in text and "1/1" in text and "1 changed" in text
    lead.refresh_from_db()
    assert lead.score == 20

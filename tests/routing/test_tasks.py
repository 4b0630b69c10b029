"""Routing tasks: reactions wired in the events table, beat jobs in the schedule, options."""

from __future__ import annotations

import pytest
from django.conf import settings

from leadcrm import events
from leads.models import Lead, Stage
from routing import tasks
from routing.models import RoutingRule, RoutingSettings, SlaClock, SlaPolicy
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_reactions_are_in_the_one_table():
    assert "routing.tasks.leads_route_on_stage" in events.REACTIONS[events.LEAD_STAGE_CHANGED]
    assert "routing.tasks.sla_first_touch" in events.REACTIONS[events.LEAD_STAGE_CHANGED]
    assert "routing.tasks.sla_first_touch" in events.REACTIONS[events.LEAD_ACTIVITY_RECORDED]
    # Routing at capture follows the first scoring (issue 14), not lead.created itself.
    assert "routing.tasks.leads_route_on_capture" in events.REACTIONS[events.LEAD_SCORED]
    assert "routing.tasks.sla_clocks_sync" in events.REACTIONS[events.LEAD_ASSIGNED]


def test_beat_jobs_are_scheduled_and_tasks_are_safe_to_redeliver():
    scheduled = {v["task"] for v in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"routing.tasks.sla_check", "routing.tasks.partner_offers_expire"} <= scheduled
    for t in (tasks.sla_check, tasks.partner_offers_expire, tasks.leads_route_on_stage, tasks.sla_first_touch):
        assert t.acks_late and t.reject_on_worker_lost and t.max_retries


def test_route_on_stage_only_for_mql_and_when_enabled(org):
    RoutingRule.objects.create(name="FR", position=1, conditions={}, team=org.fr)
    lead = LeadFactory(stage=Stage.MQL)
    assert tasks.leads_route_on_stage.delay(lead_ids=[lead.pk], from_stage="MQL", to_stage="SQL").get() == {}
    RoutingSettings.objects.create(pk=1, route_on_mql=False)
    assert tasks.leads_route_on_stage.delay(lead_ids=[lead.pk], to_stage="MQL").get() == {}
    RoutingSettings.objects.filter(pk=1).update(route_on_mql=True)
    got = tasks.leads_route_on_stage.delay(lead_ids=[lead.pk], from_stage="MCL", to_stage="MQL").get()
    assert got["assigned"] == 1
    assert Lead.objects.get(pk=lead.pk).owner.team == org.fr
    # already owned: a second event does nothing
    assert tasks.leads_route_on_stage.delay(lead_ids=[lead.pk], to_stage="MQL").get()["assigned"] == 0


def test_sla_beat_job(org, clock):
    SlaPolicy.objects.create(name="All", minutes_to_first_touch=30, reassign_after_minutes=30)
    RoutingRule.objects.create(name="FR", position=1, conditions={}, team=org.fr)
    clock.set(2026, 11, 23, 10)
    lead = LeadFactory(stage=Stage.MQL)
    tasks.lead_route.delay(lead_id=lead.pk).get()
    first = Lead.objects.get(pk=lead.pk).owner_id
    clock.set(2026, 11, 23, 10, 45)
    assert tasks.sla_check.delay().get()["breached"] == 1
    clock.set(2026, 11, 23, 11, 15)
    assert tasks.sla_check.delay().get()["reassigned"] == 1
    assert Lead.objects.get(pk=lead.pk).owner_id != first
    assert SlaClock.objects.filter(lead=lead).count() == 2


def test_partner_deadline_beat_job_with_nothing_due():
    assert tasks.partner_offers_expire.delay().get() == 0

"""Reactions in their order and once (issue 14): routing at capture follows the first scoring,
so a score or grade rule judges the lead's real score; a reaction delivered twice (a broker
redelivery, an outbox row sent again) has one effect. The eager path here; the same world
on a real worker and Redis is in tests/test_outbox_worker.py."""

from __future__ import annotations

import pytest
from django.utils.module_loading import import_string

from leadcrm import outbox

pytestmark = pytest.mark.django_db

RULESET = {
    "name": "ICP",
    "mql_threshold": 50,
    "grade_a_min": 50,
    "grade_b_min": 30,
    "grade_c_min": 10,
    "fit_rules": [
        {"name": "Software", "field": "industry", "operator": "equals", "value": "Software", "points": 40},
        {"name": "Big", "field": "company_size", "operator": "range", "value": {"min": 100}, "points": 15},
    ],
    "engagement_rules": [],
}


@pytest.fixture
def world(make_user, auth_client, django_capture_on_commit_callbacks):
    """Routing at capture: leads scoring 40 or more go to "Enterprise", the rest to the
    default team "Inbound" (one seller each); marketing's API client."""
    from leadcrm.actors import Actor
    from routing.models import RoutingSettings
    from scoring import services as scoring

    enterprise, inbound = make_user("sdr", team="Enterprise"), make_user("sdr", team="Inbound")
    RoutingSettings.objects.create(pk=1, route_on_capture=True, default_team=inbound.team)
    rs = scoring.ruleset_create(data=RULESET, actor=Actor.automation())
    with django_capture_on_commit_callbacks(execute=True):
        scoring.ruleset_activate(ruleset_id=rs.pk, actor=Actor.automation())
    return auth_client(make_user("marketing")), enterprise, inbound


def _rule(conditions: dict, user) -> None:
    from routing.models import RoutingRule

    RoutingRule.objects.create(name="Big fish", position=1, conditions=conditions, team=user.team)


@pytest.mark.parametrize("conditions", [{"score_min": 40}, {"grade": ["A", "B"]}], ids=["score", "grade"])
def test_a_captured_lead_is_routed_by_its_real_score(world, conditions, django_capture_on_commit_callbacks):
    from leads.models import Assignment, Lead

    client, enterprise, inbound = world
    _rule(conditions, enterprise)
    with django_capture_on_commit_callbacks(execute=True):
        hot = client.post("/api/v1/leads/", {"email": "cto@big.example", "industry": "Software"}, format="json")
        cold = client.post("/api/v1/leads/", {"email": "intern@small.example", "industry": "Retail"}, format="json")
    assert (hot.status_code, cold.status_code) == (201, 201)

    hot_lead, cold_lead = Lead.objects.get(email="cto@big.example"), Lead.objects.get(email="intern@small.example")
    assert (hot_lead.score, hot_lead.grade) == (40, "B")  # below the MQL threshold: routed at capture
    assert hot_lead.owner == enterprise  # judged by its score, not by the 0 it had before scoring
    assert cold_lead.owner == inbound  # no rule matched: the default team
    assert Assignment.objects.filter(lead=hot_lead).count() == Assignment.objects.filter(lead=cold_lead).count() == 1


def test_a_reaction_delivered_twice_has_one_effect(world, monkeypatch, django_capture_on_commit_callbacks):
    """Every message the outbox sends is run twice, its own reactions too (a broker that
    redelivers everything): one score change, one promotion, one assignment, one clock, one
    notification."""
    from accounts.models import Notification
    from leads.models import Assignment, Lead, ScoreChange, StageChange
    from routing.models import SlaClock, SlaPolicy

    client, enterprise, _ = world
    _rule({"score_min": 40}, enterprise)
    SlaPolicy.objects.create(name="All", minutes_to_first_touch=60)
    broker: list[tuple[str, dict, list[int]]] = []
    monkeypatch.setattr(outbox, "_publish", lambda task, kwargs, ids: broker.append((task, kwargs, ids)))
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/api/v1/leads/", {"email": "vp@big.example", "industry": "Software", "company_size": 500})
    assert r.status_code == 201

    delivered: list[str] = []
    while broker:
        task, kwargs, ids = broker.pop(0)
        for _ in range(2):
            with django_capture_on_commit_callbacks(execute=True):
                import_string(task).apply(kwargs=kwargs, headers={"outbox_ids": ids}, throw=True)
            delivered.append(task)
    assert {"scoring.tasks.leads_rescore", "routing.tasks.leads_route_on_capture"} <= set(delivered)
    assert "routing.tasks.leads_route_on_stage" in delivered and "routing.tasks.sla_clocks_sync" in delivered

    lead = Lead.objects.get(email="vp@big.example")
    assert (lead.score, lead.stage, lead.owner) == (55, "MQL", enterprise)
    assert list(ScoreChange.objects.filter(lead=lead).values_list("old_score", "new_score")) == [(0, 55)]
    assert StageChange.objects.filter(lead=lead, to_stage="MQL").count() == 1
    assert Assignment.objects.filter(lead=lead).count() == 1
    assert SlaClock.objects.filter(lead=lead).count() == 1
    assert Notification.objects.filter(user=enterprise, kind="lead_assigned").count() == 1

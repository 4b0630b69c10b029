"""Several score models side by side: one active rule set per score group."""

from __future__ import annotations

import pytest

from leadcrm.actors import Actor
from scoring import services
from scoring.models import LeadScore

pytestmark = pytest.mark.django_db
AUTO = Actor.automation()

ANALYTICS = {
    "group": "analytics",
    "name": "Analytics product line",
    "mql_threshold": 30,
    "fit_rules": [{"name": "Retail", "field": "industry", "operator": "equals", "value": "Retail", "points": 40}],
    "engagement_rules": [
        {"name": "Analytics pages", "event_type": "page_view", "url_pattern": "/analytics", "points": 10, "cap": 30}
    ],
}


@pytest.fixture
def analytics(active_ruleset, django_capture_on_commit_callbacks):
    rs = services.ruleset_create(data=ANALYTICS, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    return rs


def test_each_group_has_its_own_active_version(active_ruleset, analytics):
    active_ruleset.refresh_from_db()
    analytics.refresh_from_db()
    assert active_ruleset.is_active and analytics.is_active and analytics.version == 1


def test_leads_are_scored_in_every_group(analytics, capture, send_events, make_user, auth_client):
    lead = capture(industry="Retail", company_size=100)
    assert lead.score == 15  # default group: mid-market only
    lead = send_events(lead, [{"type": "page_view", "url": "https://acme.example/analytics/demo"}] * 5)
    row = LeadScore.objects.get(lead=lead, group="analytics")
    assert (row.fit_score, row.engagement_score, row.score, row.grade) == (40, 30, 70, "C")
    assert lead.stage == "MCL"  # another group's threshold never moves the lifecycle
    body = auth_client(make_user("marketing")).get(f"/api/v1/scoring/leads/{lead.pk}/scores/").json()
    assert [(g["group"], g["score"], g["qualified"]) for g in body] == [("default", 15, False), ("analytics", 70, True)]


def test_activating_a_group_rescores_only_that_group(active_ruleset, capture, django_capture_on_commit_callbacks):
    lead = capture(industry="Retail")
    assert not LeadScore.objects.exists()
    rs = services.ruleset_create(data=ANALYTICS, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    assert LeadScore.objects.get(lead=lead).score == 40
    assert services.leads_rescore_all(group="analytics").changed == 0

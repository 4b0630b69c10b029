"""Fixtures for scoring tests: a typical rule set (made through the service) and leads."""

from __future__ import annotations

import itertools

import pytest

from leadcrm.actors import Actor

_n = itertools.count(1)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


RULESET = {
    "name": "ICP 2026",
    "mql_threshold": 50,
    "grade_a_min": 60,
    "grade_b_min": 40,
    "grade_c_min": 20,
    "fit_rules": [
        {"name": "Software", "field": "industry", "operator": "equals", "value": "Software", "points": 20},
        {
            "name": "Mid-market",
            "field": "company_size",
            "operator": "range",
            "value": {"min": 50, "max": 5000},
            "points": 15,
        },
        {"name": "France/Benelux", "field": "country", "operator": "in", "value": ["FR", "BE", "LU"], "points": 5},
        {"name": "Student", "field": "properties.student", "operator": "equals", "value": True, "points": -30},
    ],
    "engagement_rules": [
        {"name": "Demo request", "event_type": "demo_request", "points": 30, "half_life_days": 30},
        {
            "name": "Pricing",
            "event_type": "page_view",
            "url_pattern": "/pricing",
            "points": 10,
            "cap": 20,
            "cap_period_days": 7,
            "half_life_days": 14,
        },
        {
            "name": "Unsubscribed",
            "event_type": "custom",
            "property_key": "kind",
            "property_value": "unsubscribe",
            "points": -40,
        },
    ],
}


@pytest.fixture
def ruleset_data():
    import copy

    return copy.deepcopy(RULESET)


@pytest.fixture
def active_ruleset(db, ruleset_data, django_capture_on_commit_callbacks):
    from leadcrm.actors import Actor
    from scoring import services

    rs = services.ruleset_create(data=ruleset_data, actor=Actor.automation())
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=rs.pk, actor=Actor.automation())
    rs.refresh_from_db()
    return rs


@pytest.fixture
def capture(db, django_capture_on_commit_callbacks):
    """`capture(**data)`: a lead through the capture service, reactions run (rescored)."""
    from leads import services

    def make(**data):
        data.setdefault("email", f"lead{next(_n)}@acme{next(_n)}.example")
        with django_capture_on_commit_callbacks(execute=True):
            lead, _ = services.lead_capture(data=data, actor=Actor.automation())
        lead.refresh_from_db()
        return lead

    return make


@pytest.fixture
def send_events(db, django_capture_on_commit_callbacks):
    """`send_events(lead, [{"type": ..., ...}, ...])`: through the events service, reactions run."""
    from leads import services

    def send(lead, items):
        with django_capture_on_commit_callbacks(execute=True):
            services.events_record(items=[{"lead_id": lead.pk, **i} for i in items], actor=Actor.automation())
        lead.refresh_from_db()
        return lead

    return send

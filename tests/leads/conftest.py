"""Fixtures for the leads tests: a small organisation (two teams, one user per role) and a
lead maker that goes through the capture service, then puts the lead where a test needs it."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest

_emails = itertools.count(1)


@pytest.fixture
def people(make_user):
    """Team A (manager_a, sdr_a, sdr_a2), team B (manager_b, sdr_b), an admin and marketing."""
    from accounts.models import Team

    team_a = Team.objects.create(name="Team A")
    team_b = Team.objects.create(name="Team B")
    org = SimpleNamespace(
        team_a=team_a,
        team_b=team_b,
        admin=make_user("admin"),
        marketing=make_user("marketing"),
        manager_a=make_user("manager", team_a),
        manager_b=make_user("manager", team_b),
        sdr_a=make_user("sdr", team_a),
        sdr_a2=make_user("sdr", team_a),
        sdr_b=make_user("sdr", team_b),
    )
    team_a.manager, team_b.manager = org.manager_a, org.manager_b
    team_a.save()
    team_b.save()
    return org


@pytest.fixture
def mk_lead(db):
    """`mk_lead(email=None, *, stage=None, owner=None, team=None, score=None, **data)`: a lead
    captured through `services.lead_capture`, then (test set-up only) placed in a stage, given
    an owner / team pool and a score directly."""
    from leads import services
    from leads.models import Lead

    def make(email: str | None = None, *, stage=None, owner=None, team=None, score=None, **data):
        email = email or f"lead{next(_emails)}@company{next(_emails)}.example"
        lead, _ = services.lead_capture(data={"email": email, **data}, actor=services.Actor.automation())
        updates: dict = {}
        if stage is not None:
            updates["stage"] = stage
        if owner is not None:
            updates["owner"] = owner
            updates["team"] = owner.team
        if team is not None:
            updates["team"] = team
        if score is not None:
            updates["score"] = score
        if updates:
            Lead.objects.filter(pk=lead.pk).update(**updates)
            lead.refresh_from_db()
        return lead

    return make

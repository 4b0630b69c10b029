"""Fixtures for the leads tests: a lead maker that goes through the capture service, then
puts the lead where a test needs it (the small organisation `people` is in tests/conftest.py)."""

from __future__ import annotations

import itertools

import pytest

from leadcrm.actors import Actor

_emails = itertools.count(1)


@pytest.fixture
def mk_lead(db):
    """`mk_lead(email=None, *, stage=None, owner=None, team=None, score=None, **data)`: a lead
    captured through `services.lead_capture`, then (test set-up only) placed in a stage, given
    an owner / team pool and a score directly."""
    from leads import services
    from leads.models import Lead

    def make(email: str | None = None, *, stage=None, owner=None, team=None, score=None, **data):
        email = email or f"lead{next(_emails)}@company{next(_emails)}.example"
        lead, _ = services.lead_capture(data={"email": email, **data}, actor=Actor.automation())
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

"""`manage.py seed_demo`: users of every role with tokens, leads in every stage, histories
the lifecycle allows, and a second run that changes nothing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token

from accounts.models import Role, Team, User
from leads import lifecycle
from leads.models import (
    CLOSED_STAGES,
    Bant,
    Company,
    Lead,
    Opportunity,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded():
    out = StringIO()
    call_command("seed_demo", "--leads", "200", stdout=out)
    return out.getvalue()


def histories() -> dict[int, list[StageChange]]:
    by_lead = defaultdict(list)
    for change in StageChange.objects.order_by("created_at", "id"):
        by_lead[change.lead_id].append(change)
    return by_lead


def assert_valid_path(changes: list[StageChange]) -> None:
    first = changes[0]
    assert (first.from_stage, first.to_stage) == ("", Stage.MCL)
    for before, after in zip(changes, changes[1:], strict=False):
        assert after.from_stage == before.to_stage
        move = (after.from_stage, after.to_stage)
        assert after.to_stage in lifecycle.ALLOWED_MOVES[after.from_stage] or move in lifecycle.SKIP_RULES, move
        assert after.created_at > before.created_at


def test_users_of_every_role_with_tokens(seeded):
    users = {u.username: u for u in User.objects.select_related("team")}
    expected = {"admin", "marketing", "manager", "manager2", "sdr1", "sdr2", "sdr3", "sdr4"}
    assert expected <= set(users)
    assert {u.role for u in users.values()} == set(Role.values)
    assert users["admin"].is_superuser and users["admin"].check_password("admin123!")
    assert users["sdr1"].check_password("demo1234!")
    assert Team.objects.get(name="Inside Sales FR").manager == users["manager"]
    assert Team.objects.get(name="Inside Sales EMEA").manager == users["manager2"]
    assert {users[f"sdr{i}"].team.name for i in range(1, 5)} == {"Inside Sales FR", "Inside Sales EMEA"}
    for name in expected:
        token = Token.objects.get(user=users[name])
        assert token.key in seeded

    marketing = users["marketing"]
    assert marketing.is_staff and not marketing.is_superuser
    assert marketing.has_perm("leads.change_lead") and marketing.has_perm("leads.view_stagechange")
    assert not marketing.has_perm("leads.change_stagechange")
    assert not marketing.has_perm("leads.change_assignment")
    assert not marketing.has_perm("leads.delete_lead")


def test_leads_in_every_stage_with_a_funnel_shape(seeded):
    assert Lead.objects.count() == 200
    counts = {s: Lead.objects.filter(stage=s).count() for s in Stage.values}
    assert all(counts[s] > 0 for s in Stage.values), counts
    assert counts[Stage.MCL] > counts[Stage.MQL] > counts[Stage.SQL] > counts[Stage.WO]
    assert Company.objects.exists()
    horizon = timezone.now() - dt.timedelta(days=91)
    assert not Lead.objects.filter(created_at__lt=horizon).exists()
    assert not Touchpoint.objects.filter(occurred_at__lt=horizon).exists()
    assert Touchpoint.objects.filter(lead__isnull=False).count() >= 200 * 5


def test_every_history_is_a_path_the_lifecycle_allows(seeded):
    by_lead = histories()
    stages = dict(Lead.objects.values_list("id", "stage"))
    assert set(by_lead) == set(stages)
    won = [pk for pk, stage in stages.items() if stage == Stage.WO]
    assert won
    for pk in won:
        path = [c.to_stage for c in by_lead[pk]]
        assert_valid_path(by_lead[pk])
        assert path[-3:] == [Stage.SAL, Stage.CO, Stage.WO]
    for pk, changes in by_lead.items():
        assert_valid_path(changes)
        assert changes[-1].to_stage == stages[pk]


def test_skips_are_backed_by_a_demo_request(seeded):
    skips = StageChange.objects.filter(from_stage=Stage.MCL, to_stage=Stage.SQL)
    for change in skips:
        assert "demo_request" in change.reason
        assert Touchpoint.objects.filter(
            lead=change.lead_id, type=TouchpointType.DEMO_REQUEST, occurred_at__lt=change.created_at
        ).exists()


def test_qualification_offers_and_owners_match_the_stage(seeded):
    sales = [Stage.SQL, Stage.SAL, Stage.CO, Stage.WO, Stage.LOST]
    for lead in Lead.objects.filter(stage__in=sales).select_related("owner"):
        assert Bant.objects.get(lead=lead).is_complete
        assert lead.owner is not None and lead.owner.role == Role.SDR
        assert lead.team_id == lead.owner.team_id
    statuses = {Stage.CO: "open", Stage.WO: "won", Stage.LOST: "lost"}
    for stage, status in statuses.items():
        for lead in Lead.objects.filter(stage=stage):
            assert Opportunity.objects.get(lead=lead).status == status
    assert not Opportunity.objects.exclude(lead__stage__in=list(statuses)).exists()
    for lead in Lead.objects.all():
        assert (lead.closed_at is not None) == (lead.stage in CLOSED_STAGES)
    mcl_scores = Lead.objects.filter(stage=Stage.MCL).values_list("score", flat=True)
    assert max(mcl_scores) < django_settings.LEADCRM_MQL_THRESHOLD  # above it they would have been promoted


def test_second_run_changes_nothing(seeded):
    before = (User.objects.count(), Lead.objects.count(), StageChange.objects.count(), Touchpoint.objects.count())
    out = StringIO()
    call_command("seed_demo", "--leads", "200", stdout=out)
    assert "demo data already present" in out.getvalue()
    after = (User.objects.count(), Lead.objects.count(), StageChange.objects.count(), Touchpoint.objects.count())
    assert after == before

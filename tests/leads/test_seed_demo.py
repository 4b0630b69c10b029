"""`manage.py seed_demo`: users of every role with tokens, leads in every stage, histories
the lifecycle allows, an active scoring rule set the leads are scored with, the routing
configuration (rules, partner, SLA per grade), and a second run that changes nothing."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from io import StringIO

import pytest
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
from routing.models import Partner, RoutingRule, RoutingSettings, SlaPolicy
from scoring import selectors as scoring_selectors
from scoring import services as scoring_services
from scoring.models import DEFAULT_GROUP, RuleSet

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


def test_activity_rollups_are_the_touchpoints(seeded):
    """Last activity and activity count come from the touchpoints (the leads service's
    roll-up), not from a second computation in the seed."""
    counts = defaultdict(int)
    last = {}
    for lead_id, at in Touchpoint.objects.filter(lead__isnull=False).values_list("lead_id", "occurred_at"):
        counts[lead_id] += 1
        last[lead_id] = max(at, last.get(lead_id, at))
    for lead in Lead.objects.only("pk", "activity_count", "last_activity_at"):
        assert lead.activity_count == counts[lead.pk]
        assert lead.last_activity_at == last.get(lead.pk)


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
    threshold = scoring_selectors.active_ruleset().mql_threshold
    mcl_scores = Lead.objects.filter(stage=Stage.MCL).values_list("score", flat=True)
    assert max(mcl_scores) < threshold  # above it the rescore promoted them


def test_an_active_rule_set_scored_every_lead(seeded):
    ruleset = scoring_selectors.active_ruleset()
    assert ruleset is not None and ruleset.group == DEFAULT_GROUP and ruleset.version == 1
    assert RuleSet.objects.filter(is_active=True).count() == 1
    assert ruleset.mql_threshold == 50
    assert ruleset.grade_a_min > ruleset.grade_b_min > ruleset.grade_c_min
    fit_fields = set(ruleset.fit_rules.values_list("field", flat=True))
    assert {"industry", "company_size", "job_title", "country", "properties.product_interest"} <= fit_fields
    events = set(ruleset.engagement_rules.values_list("event_type", flat=True))
    assert {"pricing_view", "demo_request", "download", "webinar", "email_click", "page_view"} <= events
    assert ruleset.engagement_rules.filter(points__lt=0).exists()
    assert not ruleset.engagement_rules.filter(cap__isnull=True).exists()
    assert f"rule set {ruleset}" in seeded and "Scoring:" in seeded and "Routing:" in seeded

    leads = list(Lead.objects.values("stage", "score", "fit_score", "engagement_score", "grade"))
    assert sum(1 for r in leads if r["score"] > 0) >= 0.9 * len(leads)
    for r in leads:
        assert r["score"] == min(100, r["fit_score"] + r["engagement_score"])
        fit = r["fit_score"]
        bands = (ruleset.grade_a_min, ruleset.grade_b_min, ruleset.grade_c_min)
        assert r["grade"] == ("A" if fit >= bands[0] else "B" if fit >= bands[1] else "C" if fit >= bands[2] else "D")
    won = [r["score"] for r in leads if r["stage"] == Stage.WO]
    mcl = [r["score"] for r in leads if r["stage"] == Stage.MCL]
    assert sum(won) / len(won) > sum(mcl) / len(mcl)  # the rules rank the buyers higher

    # The stored scores are the rule set's: a rescore now finds (almost) nothing to change
    # (only engagement decay over the seconds since) and promotes no one.
    stats = scoring_services.leads_rescore_all()
    assert stats.leads == 200 and stats.changed <= 4 and stats.promoted == 0


def test_promotions_by_the_rescore_are_recorded_and_routed(seeded):
    threshold = scoring_selectors.active_ruleset().mql_threshold
    promotions = StageChange.objects.filter(reason__contains=f"crossed the MQL threshold {threshold}").select_related(
        "lead"
    )
    assert promotions.exists()  # the seed's MCL leads with the most engagement cross it
    for change in promotions:
        assert change.from_stage == Stage.MCL and change.to_stage == Stage.MQL
        assert change.lead.score >= threshold
        assert change.lead.owner_id is not None or change.lead.team_id is not None


def test_routing_is_configured(seeded):
    current = RoutingSettings.current()
    assert current.pk and current.route_on_mql and current.default_team.name == "Inside Sales EMEA"
    rules = list(RoutingRule.objects.filter(active=True).select_related("team", "partner"))
    assert len(rules) >= 4
    assert rules[-1].conditions == {} and rules[-1].team is not None  # the default rule, last
    fr = next(r for r in rules if r.team and r.team.name == "Inside Sales FR")
    assert set(fr.conditions["country"]) == {"FR", "BE", "CH"}
    assert any(r.team and r.team.name == "Inside Sales EMEA" and r.conditions for r in rules)
    partner = Partner.objects.get()
    partner_rule = next(r for r in rules if r.partner_id == partner.pk)
    assert "company_size_max" in partner_rule.conditions
    assert partner.kind == "reseller" and partner.active and partner.territories.exists()
    assert partner.user.check_password("demo1234!") and not partner.user.routing_active
    sla = {p.grade: p.minutes_to_first_touch for p in SlaPolicy.objects.filter(active=True)}
    assert sla == {"A": 60, "B": 240, "C": 24 * 60, "D": 72 * 60}
    for seller in User.objects.filter(username__in=["sdr1", "sdr2", "sdr3", "sdr4"]):
        assert seller.languages and seller.skills


def test_marketing_starts_from_a_sequence_it_can_switch_on(seeded):
    from nurturing.models import EmailTemplate, Segment, Sequence, Workflow

    assert EmailTemplate.objects.count() == 4 and Segment.objects.filter(member_count__gt=0).exists()
    sequence = Sequence.objects.select_related("current_version").get()
    assert not sequence.active and "reply" in sequence.exit_on
    assert [step["type"] for step in sequence.current_version.steps] == ["email", "wait", "split", "wait", "branch"]
    assert Workflow.objects.get().active
    assert "Nurturing: 4 e-mail templates" in seeded


def test_second_run_changes_nothing(seeded):
    def counts():
        return tuple(
            model.objects.count()
            for model in (User, Lead, StageChange, Touchpoint, RuleSet, RoutingRule, SlaPolicy, Partner)
        )

    before = counts()
    out = StringIO()
    call_command("seed_demo", "--leads", "200", stdout=out)
    assert "demo data already present" in out.getvalue()
    assert counts() == before

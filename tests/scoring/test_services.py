"""Scoring services on the database: rescoring, promotion, activation, validation, queries."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads.models import Lead, ScoreChange, Stage, StageChange
from leads.selectors import lead_history, mql_threshold
from scoring import services
from scoring.models import RuleSet

pytestmark = pytest.mark.django_db

AUTO = Actor.automation()


def test_capture_scores_the_lead_with_reasons(active_ruleset, capture):
    lead = capture(industry="Software", company_size=200, country="FR")
    assert (lead.fit_score, lead.engagement_score, lead.score, lead.grade) == (40, 0, 40, "B")
    change = ScoreChange.objects.get(lead=lead)
    assert (change.old_score, change.new_score) == (0, 40)
    assert {r["name"] for r in change.reasons} == {"Software", "Mid-market", "France/Benelux"}
    assert lead.stage == Stage.MCL


def test_no_active_ruleset_leaves_scores_alone(capture, settings):
    lead = capture(industry="Software")
    assert lead.score == 0 and not ScoreChange.objects.exists()
    settings.LEADCRM_MQL_THRESHOLD = 42
    assert mql_threshold() == 42


def test_threshold_comes_from_the_active_ruleset(active_ruleset):
    assert mql_threshold() == 50
    services.ruleset_update(ruleset_id=active_ruleset.pk, data={"mql_threshold": 65}, actor=AUTO)
    assert mql_threshold() == 65


def test_events_push_the_score_over_the_threshold_and_promote(active_ruleset, capture, send_events):
    lead = capture(industry="Software", company_size=200, country="FR")  # 40
    lead = send_events(lead, [{"type": "demo_request"}])
    assert lead.score == 70 and lead.stage == Stage.MQL
    move = StageChange.objects.get(lead=lead, to_stage=Stage.MQL)
    assert move.actor_type == "automation" and "crossed the MQL threshold 50" in move.reason
    # More events: no second promotion, still one move.
    lead = send_events(lead, [{"type": "page_view", "url": "https://acme.example/pricing"}])
    assert lead.score == 80
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    kinds = [i["kind"] for i in lead_history(lead=lead)]
    assert kinds.count("score_change") == 3 and "stage_change" in kinds


def test_recycled_lead_goes_back_to_mql_when_crossing_again(active_ruleset, capture, send_events):
    lead = capture(industry="Software", company_size=200, country="FR")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.RECYCLED)
    lead = send_events(lead, [{"type": "demo_request"}])
    assert lead.stage == Stage.MQL
    # A lead already past MQL is never moved by scoring.
    other = capture(industry="Software", company_size=200, country="FR")
    Lead.objects.filter(pk=other.pk).update(stage=Stage.SQL)
    other = send_events(other, [{"type": "demo_request"}])
    assert other.score == 70 and other.stage == Stage.SQL


def test_negative_property_and_unsubscribe(active_ruleset, capture, send_events):
    lead = capture(industry="Software", properties={"student": True})
    assert lead.fit_score == 0
    lead = send_events(lead, [{"type": "demo_request"}, {"type": "custom", "properties": {"kind": "unsubscribe"}}])
    assert lead.engagement_score == 0


def test_decay_lowers_scores_without_events(active_ruleset, capture, send_events):
    lead = capture(industry="Software", company_size=200, country="FR")
    lead = send_events(lead, [{"type": "demo_request"}])
    assert lead.engagement_score == 30
    stats = services.leads_rescore_all(now=timezone.now() + dt.timedelta(days=30), engaged_only=True)
    lead.refresh_from_db()
    assert stats.changed == 1 and lead.engagement_score == 15 and lead.score == 55


def test_rescore_is_idempotent(active_ruleset, capture):
    lead = capture(industry="Software")
    before = ScoreChange.objects.count()
    assert services.leads_rescore(lead_ids=[lead.pk, lead.pk]).changed == 0
    assert services.leads_rescore_all().changed == 0
    assert ScoreChange.objects.count() == before


def test_activation_rescores_everyone(capture, ruleset_data, django_capture_on_commit_callbacks):
    leads = [capture(industry="Software", company_size=100) for _ in range(3)]
    assert all(x.score == 0 for x in leads)
    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    assert callbacks
    assert set(Lead.objects.values_list("score", flat=True)) == {35}
    # A new version replaces it; the old one is kept, inactive.
    v2 = services.ruleset_copy(ruleset_id=rs.pk, actor=AUTO)
    services.rule_create(
        ruleset_id=v2.pk, kind="fit", data={"field": "city", "operator": "exists", "points": 5}, actor=AUTO
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=v2.pk, actor=AUTO)
    assert v2.version == 2
    assert list(RuleSet.objects.filter(is_active=True)) == [v2]
    assert RuleSet.objects.count() == 2
    assert set(Lead.objects.values_list("score", flat=True)) == {35}  # no city: unchanged
    Lead.objects.update(city="Lyon")
    services.leads_rescore_all()
    assert set(Lead.objects.values_list("score", flat=True)) == {40}


def test_many_promotions_at_once_are_set_based(ruleset_data, capture, django_capture_on_commit_callbacks, settings):
    from leads import services as lead_services

    settings.CELERY_TASK_ALWAYS_EAGER = True
    n = lead_services.PROMOTE_ONE_BY_ONE + 5
    for _ in range(n):
        capture(industry="Software", company_size=100, country="FR")
    ruleset_data["mql_threshold"] = 30
    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    assert Lead.objects.filter(stage=Stage.MQL).count() == n
    assert StageChange.objects.filter(to_stage=Stage.MQL, actor_type="automation").count() == n


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, key, text",
    [
        ({"field": "shoe_size", "operator": "equals", "value": 1, "points": 5}, "fit_rules[0].field", "Unknown field"),
        (
            {"field": "industry", "operator": "like", "value": "x", "points": 5},
            "fit_rules[0].operator",
            "Unknown operator",
        ),
        ({"field": "industry", "operator": "in", "value": "x", "points": 5}, "fit_rules[0].value", "list"),
        (
            {"field": "company_size", "operator": "range", "value": {"min": 9, "max": 1}, "points": 5},
            "fit_rules[0].value",
            "min",
        ),
        ({"field": "industry", "operator": "equals", "value": "x", "points": 500}, "fit_rules[0].points", "between"),
    ],
)
def test_bad_fit_rules_are_refused(ruleset_data, rule, key, text):
    ruleset_data["fit_rules"] = [rule]
    with pytest.raises(ServiceError) as exc:
        services.ruleset_create(data=ruleset_data, actor=AUTO)
    assert text in exc.value.errors[key][0]
    assert not RuleSet.objects.exists()


@pytest.mark.parametrize(
    "rule, key, text",
    [
        ({"event_type": "page_view", "url_pattern": "/pricing(", "points": 5}, "url_pattern", "regular expression"),
        ({"event_type": "teleport", "points": 5}, "event_type", "Unknown event type"),
        ({"event_type": "page_view", "points": 5, "cap_period_days": 7}, "cap_period_days", "needs a cap"),
        ({"event_type": "page_view", "points": 5, "half_life_days": -1}, "half_life_days", "half-life"),
    ],
)
def test_bad_engagement_rules_are_refused(active_ruleset, rule, key, text):
    with pytest.raises(ServiceError) as exc:
        services.rule_create(ruleset_id=active_ruleset.pk, kind="engagement", data=rule, actor=AUTO)
    assert text in exc.value.errors[key][0]


def test_grade_bands_must_be_ordered(active_ruleset):
    with pytest.raises(ServiceError) as exc:
        services.ruleset_update(ruleset_id=active_ruleset.pk, data={"grade_b_min": 90}, actor=AUTO)
    assert "ordered" in exc.value.errors["grade_a_min"][0]


# --- set-based full rescore ---------------------------------------------------------------


def _make_leads(n: int) -> None:
    from tests.factories import LeadFactory, TouchpointFactory

    for _ in range(n):
        lead = LeadFactory(industry="Software", company_size=100, country="DE")
        TouchpointFactory(lead=lead, type="page_view", url="https://x.example/pricing")


def test_full_rescore_queries_are_constant_in_n(active_ruleset):
    def count(n_new: int) -> tuple[int, int]:
        _make_leads(n_new)
        Lead.objects.update(score=0, fit_score=0, engagement_score=0, grade="")
        with CaptureQueriesContext(connection) as ctx:
            stats = services.leads_rescore_all(chunk_size=1000)
        return stats.changed, len(ctx.captured_queries)

    small, big = count(3), count(30)
    assert small[0] == 3 and big[0] == 33
    # rule set + rules + model; per chunk: leads + events; one compare-and-set (update + history)
    assert small[1] == big[1] <= 25


def test_full_rescore_streams_in_chunks(active_ruleset):
    _make_leads(7)
    seen = []
    stats = services.leads_rescore_all(chunk_size=3, progress=seen.append)
    assert seen == [3, 3, 1] and stats.changed == 7
    assert set(Lead.objects.values_list("score", flat=True)) == {45}


# --- concurrency: promotion exactly once --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_rescores_promote_exactly_once(ruleset_data):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from tests.factories import LeadFactory, TouchpointFactory

    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    lead = LeadFactory(industry="Software", company_size=100, country="FR")
    TouchpointFactory(lead=lead, type="demo_request")
    barrier, errors = threading.Barrier(6), []

    def work():
        from django.db import connection as conn

        try:
            barrier.wait()
            services.leads_rescore(lead_ids=[lead.pk])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lead.refresh_from_db()
    assert (lead.score, lead.stage) == (70, Stage.MQL)
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1
    assert ScoreChange.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db(transaction=True)
def test_full_rescore_outside_a_transaction_reads_and_writes_in_threads(ruleset_data, monkeypatch):
    """Committed data, no surrounding transaction: the reader and writer threads (their own
    connections) are used on PostgreSQL; the result is the same as inline. The writes are
    watched, so the test fails if they ran inline in this thread."""
    if connection.vendor != "postgresql":
        pytest.skip("the threaded path is PostgreSQL's")
    from leads import services as lead_services

    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    _make_leads(25)
    writers: set[str] = set()
    write = lead_services.lead_scores_set

    def watched(**kwargs):
        writers.add(threading.current_thread().name)
        return write(**kwargs)

    monkeypatch.setattr(lead_services, "lead_scores_set", watched)
    seen = []
    stats = services.leads_rescore_all(chunk_size=4, progress=seen.append)
    assert writers and threading.current_thread().name not in writers
    assert all(name.startswith("rescore-writer") for name in writers)
    assert sum(seen) == 25 and stats.changed == 25
    assert set(Lead.objects.values_list("score", flat=True)) == {45}
    assert ScoreChange.objects.count() == 25
    assert services.leads_rescore_all(chunk_size=4).changed == 0


def test_custom_field_names_with_quotes_and_percent(ruleset_data, capture, django_capture_on_commit_callbacks):
    ruleset_data["fit_rules"] = [
        {"field": "properties.it's 100%", "operator": "equals", "value": "yes", "points": 25},
    ]
    rs = services.ruleset_create(data=ruleset_data, actor=AUTO)
    with django_capture_on_commit_callbacks(execute=True):
        services.ruleset_activate(ruleset_id=rs.pk, actor=AUTO)
    lead = capture(properties={"it's 100%": "Yes"})
    assert lead.fit_score == 25
    services.leads_rescore_all()
    lead.refresh_from_db()
    assert lead.fit_score == 25

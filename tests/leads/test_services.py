"""Writes on leads (leads.services): capture and dedupe, updates, bulk upserts, events and
visitors, lifecycle moves with their audit trail, ownership; and their behaviour when two
requests race (PostgreSQL only)."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm.actors import Actor, ActorType
from leadcrm.errors import TransitionRefused
from leads import services
from leads.models import (
    Assignment,
    Bant,
    Company,
    Lead,
    Opportunity,
    ScoreChange,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
    Visitor,
)
from leads.services import ServiceError

pytestmark = pytest.mark.django_db
BOT = Actor.automation()
FULL_BANT = {"budget": "yes", "authority": "CEO", "need": "CRM", "timeline": "this quarter"}


def capture(email: str, **data):
    return services.lead_capture(data={"email": email, **data}, actor=BOT)


def stages(lead) -> list[tuple[str, str]]:
    return list(
        StageChange.objects.filter(lead=lead).order_by("created_at", "id").values_list("from_stage", "to_stage")
    )


# --- capture --------------------------------------------------------------------------------


def test_capture_creates_an_mcl_lead_with_its_first_history_row():
    lead, created = capture("Jane@Acme.com", source="seo", company_name="Acme")
    assert created
    assert (lead.email, lead.stage, lead.source) == ("jane@acme.com", Stage.MCL, "seo")
    assert lead.stage_changed_at is not None
    change = StageChange.objects.get(lead=lead)
    assert (change.from_stage, change.to_stage, change.actor_type) == ("", Stage.MCL, ActorType.AUTOMATION)
    assert "seo" in change.reason
    assert lead.company == Company.objects.get(domain="acme.com")
    assert lead.company.name == "Acme"


def test_capture_of_a_known_email_updates_and_records_a_touchpoint(django_capture_on_commit_callbacks):
    lead, _ = capture("jane@acme.com", first_name="Jane", city="Lyon")
    with django_capture_on_commit_callbacks(execute=True):
        again, created = capture("JANE@ACME.COM", first_name="", job_title="CTO", utm_campaign="spring")
    assert not created
    assert again.pk == lead.pk
    again.refresh_from_db()
    assert (again.first_name, again.city, again.job_title) == ("Jane", "Lyon", "CTO")
    touchpoint = Touchpoint.objects.get(lead=lead)
    assert (touchpoint.type, touchpoint.utm_campaign) == (TouchpointType.CAPTURE, "spring")
    assert Lead.objects.count() == 1
    assert StageChange.objects.filter(lead=lead).count() == 1
    assert (again.activity_count, again.last_activity_at) == (1, touchpoint.occurred_at)


def test_leads_of_one_domain_share_a_company_free_mail_gets_none():
    a, _ = capture("a@globex.com")
    b, _ = capture("b@globex.com", company_name="Globex")
    c, _ = capture("c@gmail.com")
    assert a.company_id == b.company_id is not None
    assert Company.objects.get(domain="globex.com").name == "Globex", "a real name replaces the domain"
    assert (c.company_id, c.company_domain) == (None, "")


def test_update_sets_blanks_and_merges_properties():
    lead, _ = capture("p@acme.com", first_name="P", properties={"a": 1, "b": "x"})
    services.lead_update(lead_id=lead.pk, data={"first_name": "", "properties": {"a": None, "c": True}}, actor=BOT)
    lead.refresh_from_db()
    assert lead.first_name == ""
    assert lead.properties == {"b": "x", "c": True}


def test_update_never_touches_the_stage_or_the_score():
    lead, _ = capture("p@acme.com")
    services.lead_update(lead_id=lead.pk, data={"stage": Stage.WO, "score": 99}, actor=BOT)
    lead.refresh_from_db()
    assert (lead.stage, lead.score) == (Stage.MCL, 0)


def test_update_changes_the_email_unless_another_lead_has_it():
    lead, _ = capture("p@acme.com")
    capture("taken@acme.com")
    services.lead_update(lead_id=lead.pk, data={"email": "new@acme.com"}, actor=BOT)
    lead.refresh_from_db()
    assert lead.email == "new@acme.com"
    with pytest.raises(ServiceError) as refused:
        services.lead_update(lead_id=lead.pk, data={"email": "taken@acme.com"}, actor=BOT)
    assert "email" in refused.value.errors
    lead.refresh_from_db()
    assert lead.email == "new@acme.com"


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_upsert_creates_updates_and_reports_by_index():
    known, _ = capture("known@acme.com", first_name="Known")
    rows = [
        (0, {"email": "new@acme.com", "first_name": "New"}),
        (3, {"email": "known@acme.com", "job_title": "CFO"}),
        (5, {"email": "NEW@acme.com", "last_name": "Later"}),
    ]
    results = services.leads_bulk_upsert(rows=rows, actor=BOT)
    assert [(r.index, r.status) for r in results] == [(0, "created"), (3, "updated"), (5, "updated")]
    new = Lead.objects.get(email="new@acme.com")
    assert results[0].id == results[2].id == new.pk
    assert (new.first_name, new.last_name) == ("New", "Later")
    known.refresh_from_db()
    assert (known.first_name, known.job_title) == ("Known", "CFO")
    assert Touchpoint.objects.filter(lead=known, type=TouchpointType.CAPTURE).count() == 1
    assert stages(new) == [("", Stage.MCL)]


def test_bulk_history_import_is_audited_as_an_import(make_user):
    seller = make_user("sdr", "Team A")
    admin = make_user("admin")
    results = services.leads_bulk_upsert(
        rows=[(0, {"email": "won@acme.com", "stage": Stage.WO, "owner": seller.pk})],
        actor=Actor(admin, ActorType.API),
        history=True,
    )
    lead = Lead.objects.get(pk=results[0].id)
    assert (lead.stage, lead.owner, lead.team) == (Stage.WO, seller, seller.team)
    assert lead.closed_at is not None
    imported = StageChange.objects.get(lead=lead, to_stage=Stage.WO)
    assert (imported.actor_type, imported.actor) == (ActorType.IMPORT, admin)
    assert Assignment.objects.get(lead=lead).actor_type == ActorType.IMPORT


# --- events and visitors --------------------------------------------------------------------


def test_visitor_events_move_to_the_lead_on_identification(django_capture_on_commit_callbacks):
    lead, _ = capture("v@acme.com")
    t0 = timezone.now() - dt.timedelta(days=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.events_record(
            items=[
                {"type": "page_view", "visitor_id": "abc", "occurred_at": t0},
                {"type": "download", "visitor_id": "abc", "occurred_at": t0 + dt.timedelta(hours=1)},
            ],
            actor=BOT,
        )
    assert Touchpoint.objects.filter(visitor__key="abc", lead__isnull=True).count() == 2
    lead.refresh_from_db()
    assert lead.activity_count == 0

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.events_record(
            items=[{"type": "form_submit", "visitor_id": "abc", "lead_id": lead.pk, "occurred_at": t0}], actor=BOT
        )
    assert callbacks, "the activity refresh runs after commit"
    visitor = Visitor.objects.get(key="abc")
    assert visitor.lead == lead and visitor.identified_at is not None
    assert Touchpoint.objects.filter(lead=lead).count() == 3
    lead.refresh_from_db()
    assert (lead.activity_count, lead.last_activity_at) == (3, t0 + dt.timedelta(hours=1))


def test_activity_refresh_waits_for_the_commit():
    lead, _ = capture("v@acme.com")
    services.events_record(items=[{"type": "page_view", "lead_id": lead.pk}], actor=BOT)
    lead.refresh_from_db()
    assert lead.activity_count == 0, "nothing runs for a transaction that has not committed"


def test_activity_refresh_is_idempotent():
    lead, _ = capture("v@acme.com")
    when = timezone.now() - dt.timedelta(hours=1)
    Touchpoint.objects.create(lead=lead, type=TouchpointType.CALL, occurred_at=when)
    for _ in range(2):
        assert services.lead_activity_refresh(lead_ids=[lead.pk]) == 1
        lead.refresh_from_db()
        assert (lead.activity_count, lead.last_activity_at) == (1, when)


def test_log_activity_refuses_types_that_are_not_sales_activities():
    lead, _ = capture("v@acme.com")
    with pytest.raises(ServiceError) as exc:
        services.lead_log_activity(lead_id=lead.pk, type="page_view", actor=BOT)
    assert "type" in exc.value.errors
    note = services.lead_log_activity(lead_id=lead.pk, type="note", actor=BOT, note="Called back")
    assert note.properties == {"note": "Called back"}


# --- lifecycle moves ------------------------------------------------------------------------


@pytest.fixture
def seller(make_user):
    return make_user("sdr", "Team A")


def refused(call, **kwargs) -> str:
    with pytest.raises(TransitionRefused) as exc:
        call(**kwargs)
    return exc.value.failure.guard


def test_promote_follows_the_threshold_or_an_override_with_a_reason(seller, settings):
    settings.LEADCRM_MQL_THRESHOLD = 60
    lead, _ = capture("m@acme.com")
    me = Actor(seller, ActorType.USER)
    assert refused(services.lead_promote, lead_id=lead.pk, actor=me) == "mql_threshold"
    assert refused(services.lead_promote, lead_id=lead.pk, actor=me, override=True) == "reason_required"
    services.lead_promote(lead_id=lead.pk, actor=me, override=True, reason="Referred by a customer")
    change = StageChange.objects.get(lead=lead, to_stage=Stage.MQL)
    assert (change.actor, change.actor_type) == (seller, ActorType.USER)
    assert "manual override, score 0" in change.reason and "Referred by a customer" in change.reason


def test_qualify_reads_bant_from_the_database(seller):
    lead, _ = capture("q@acme.com")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.MQL)
    me = Actor(seller, ActorType.USER)
    with pytest.raises(TransitionRefused) as exc:
        services.lead_qualify(lead_id=lead.pk, actor=me)
    assert exc.value.failure.details == {"missing": ["budget", "authority", "need", "timeline"]}
    services.lead_bant_set(lead_id=lead.pk, actor=me, **{**FULL_BANT, "need": ""})
    assert refused(services.lead_qualify, lead_id=lead.pk, actor=me) == "bant_complete"
    services.lead_bant_set(lead_id=lead.pk, actor=me, **FULL_BANT)
    assert services.lead_qualify(lead_id=lead.pk, actor=me).stage == Stage.SQL
    assert Bant.objects.get(lead=lead).updated_by == seller


def test_bant_refuses_unknown_fields(seller):
    lead, _ = capture("q@acme.com")
    with pytest.raises(ServiceError) as exc:
        services.lead_bant_set(lead_id=lead.pk, actor=BOT, budget="x", mood="happy")
    assert set(exc.value.errors) == {"mood"}


def test_accept_needs_the_owner(seller, make_user):
    lead, _ = capture("s@acme.com")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.SQL)
    assert refused(services.lead_accept, lead_id=lead.pk, actor=Actor(seller, ActorType.USER)) == "owner_accepts"
    services.lead_assign(lead_id=lead.pk, owner=seller, actor=BOT)
    other = make_user("sdr", "Team A")
    assert refused(services.lead_accept, lead_id=lead.pk, actor=Actor(other, ActorType.USER)) == "owner_accepts"
    assert refused(services.lead_accept, lead_id=lead.pk, actor=BOT) == "owner_accepts"
    assert services.lead_accept(lead_id=lead.pk, actor=Actor(seller, ActorType.USER)).stage == Stage.SAL


def test_an_opportunity_and_its_move_stand_or_fall_together(seller):
    lead, _ = capture("o@acme.com")
    offer = {"amount": Decimal("999.50"), "currency": "usd", "expected_close": dt.date(2030, 1, 31)}
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.SQL)
    assert refused(services.lead_create_opportunity, lead_id=lead.pk, actor=BOT, **offer) == "allowed_move"
    assert not Opportunity.objects.exists()

    Lead.objects.filter(pk=lead.pk).update(stage=Stage.SAL)
    moved = services.lead_create_opportunity(lead_id=lead.pk, actor=Actor(seller, ActorType.USER), **offer)
    assert moved.stage == Stage.CO
    opportunity = Opportunity.objects.get(lead=lead)
    assert (opportunity.amount, opportunity.currency, opportunity.status) == (Decimal("999.50"), "USD", "open")
    assert opportunity.created_by == seller


@pytest.mark.parametrize(
    ("close", "status", "reason"),
    [(services.lead_win, "won", ""), (services.lead_lose, "lost", "Too expensive")],
)
def test_closing_closes_the_opportunity(close, status, reason):
    lead, _ = capture("c@acme.com")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.SAL)
    services.lead_create_opportunity(
        lead_id=lead.pk, actor=BOT, amount=Decimal("10"), currency="EUR", expected_close=dt.date(2030, 1, 1)
    )
    closed = close(lead_id=lead.pk, actor=BOT, reason=reason)
    assert closed.closed_at is not None
    opportunity = Opportunity.objects.get(lead=lead)
    assert (opportunity.status, opportunity.lost_reason) == (status, reason)
    assert opportunity.closed_at == closed.closed_at


def test_disqualifying_an_offer_closes_it_as_lost():
    lead, _ = capture("c@acme.com")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.SAL)
    services.lead_create_opportunity(
        lead_id=lead.pk, actor=BOT, amount=Decimal("10"), currency="EUR", expected_close=dt.date(2030, 1, 1)
    )
    services.lead_disqualify(lead_id=lead.pk, actor=BOT, reason="Fake company")
    assert Opportunity.objects.get(lead=lead).status == "lost"


def test_a_refused_move_writes_nothing():
    lead, _ = capture("r@acme.com")
    before = lead.updated_at
    assert refused(services.lead_transition, lead_id=lead.pk, to=Stage.WO, actor=BOT) == "allowed_move"
    lead.refresh_from_db()
    assert (lead.stage, lead.updated_at) == (Stage.MCL, before)
    assert stages(lead) == [("", Stage.MCL)]


def test_demo_request_skip_is_recorded_with_its_rule():
    lead, _ = capture("d@acme.com")
    services.lead_bant_set(lead_id=lead.pk, actor=BOT, **FULL_BANT)
    assert refused(services.lead_qualify, lead_id=lead.pk, actor=BOT) == "allowed_move"
    services.events_record(items=[{"type": "demo_request", "lead_id": lead.pk}], actor=BOT)
    services.lead_qualify(lead_id=lead.pk, actor=BOT, reason="Wants a demo")
    change = StageChange.objects.get(lead=lead, to_stage=Stage.SQL)
    assert change.from_stage == Stage.MCL
    assert change.reason == "[skip MCL→SQL: demo_request] Wants a demo"


def test_time_in_each_stage_is_derivable_from_the_history():
    lead, _ = capture(
        "t@acme.com",
    )
    Lead.objects.filter(pk=lead.pk).update(score=90)
    services.lead_promote(lead_id=lead.pk, actor=BOT)
    services.lead_disqualify(lead_id=lead.pk, actor=BOT, reason="Competitor")
    rows = list(StageChange.objects.filter(lead=lead).order_by("created_at", "id"))
    assert [r.to_stage for r in rows] == [Stage.MCL, Stage.MQL, Stage.DISQUALIFIED]
    assert all(a.created_at <= b.created_at for a, b in zip(rows, rows[1:], strict=False))
    lead.refresh_from_db()
    assert lead.stage_changed_at == rows[-1].created_at == lead.closed_at


# --- ownership ------------------------------------------------------------------------------


def test_assignment_is_recorded_and_puts_the_lead_in_the_owner_team(seller, make_user):
    lead, _ = capture("a@acme.com")
    manager = make_user("manager", "Team A")
    services.lead_assign(lead_id=lead.pk, owner=seller, actor=Actor(manager, ActorType.USER), reason="Territory")
    lead.refresh_from_db()
    assert (lead.owner, lead.team) == (seller, seller.team)
    row = Assignment.objects.get(lead=lead)
    assert (row.from_owner, row.to_owner, row.actor, row.reason) == (None, seller, manager, "Territory")
    services.lead_assign(lead_id=lead.pk, owner=seller, actor=BOT)
    assert Assignment.objects.filter(lead=lead).count() == 1, "no-op reassignment writes nothing"


@pytest.mark.parametrize("role", ["marketing"])
def test_only_sellers_can_own_leads(make_user, role):
    lead, _ = capture("a@acme.com")
    with pytest.raises(ServiceError) as exc:
        services.lead_assign(lead_id=lead.pk, owner=make_user(role), actor=BOT)
    assert "owner" in exc.value.errors
    inactive = make_user("sdr", is_active=False)
    with pytest.raises(ServiceError):
        services.lead_assign(lead_id=lead.pk, owner=inactive, actor=BOT)


# --- concurrency (PostgreSQL: real row locks and a unique index decide) --------------------

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="real concurrent transactions need PostgreSQL"
)


def race(*calls, timeout: float = 20):
    """Run each call in its own thread (own DB connection), released together by a barrier.
    Returns each call's result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        from django.db import connection as thread_connection

        try:
            barrier.wait(timeout)
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[i] = exc
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racing call hung"
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_captures_of_one_email_make_one_lead(round_):
    email = f"race{round_}@acme.com"
    results = race(*[lambda i=i: capture(email.upper() if i % 2 else email, first_name=f"T{i}") for i in range(4)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Lead.objects.filter(email=email).count() == 1
    lead = Lead.objects.get(email=email)
    assert {r[0].pk for r in results} == {lead.pk}
    assert sum(created for _, created in results) == 1
    assert StageChange.objects.filter(lead=lead).count() == 1
    assert Touchpoint.objects.filter(lead=lead, type=TouchpointType.CAPTURE).count() == 3


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_api_creates_of_one_email_make_one_lead(make_user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    marketer = make_user("marketing")
    key = Token.objects.create(user=marketer).key

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client.post("/api/v1/leads/", {"email": "Same@Acme.com"}, format="json").status_code

    codes = race(post, post, post)
    assert sorted(codes) == [200, 200, 201]
    assert Lead.objects.filter(email="same@acme.com").count() == 1


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_bulk_imports_of_overlapping_emails_make_no_duplicates():
    first = [(i, {"email": f"b{i}@acme.com", "first_name": "one"}) for i in range(0, 60)]
    second = [(i, {"email": f"b{i + 30}@acme.com", "last_name": "two"}) for i in range(0, 60)]
    results = race(
        lambda: services.leads_bulk_upsert(rows=first, actor=BOT),
        lambda: services.leads_bulk_upsert(rows=second, actor=BOT),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Lead.objects.count() == 90
    created = sum(r.status == "created" for batch in results for r in batch)
    assert created == 90
    both = Lead.objects.get(email="b45@acme.com")
    assert (both.first_name, both.last_name) == ("one", "two")


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("moves", "allowed_outcomes"),
    [
        # Both want MQL→SQL: the second sees SQL and SQL→SQL is no move.
        ((Stage.SQL, Stage.SQL), {(Stage.SQL,)}),
        # MQL→SQL against MQL→DISQUALIFIED: whichever locks first wins from MQL; the other
        # is judged on the new stage (SQL→DISQUALIFIED is legal, DISQUALIFIED→SQL is not).
        ((Stage.SQL, Stage.DISQUALIFIED), {(Stage.SQL, Stage.DISQUALIFIED), (Stage.DISQUALIFIED,)}),
    ],
)
def test_concurrent_moves_of_one_lead_cannot_both_win_from_the_same_stage(moves, allowed_outcomes):
    lead, _ = capture("m@acme.com")
    Lead.objects.filter(pk=lead.pk).update(stage=Stage.MQL)
    Bant.objects.create(lead=lead, **FULL_BANT)

    def move(to):
        return lambda: services.lead_transition(lead_id=lead.pk, to=to, actor=BOT, reason="race")

    results = race(*[move(to) for to in moves])
    unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, TransitionRefused)]
    assert not unexpected, unexpected
    from_mql = StageChange.objects.filter(lead=lead, from_stage=Stage.MQL)
    assert from_mql.count() == 1
    path = tuple(
        StageChange.objects.filter(lead=lead).exclude(from_stage="").order_by("id").values_list("to_stage", flat=True)
    )
    assert path in allowed_outcomes
    lead.refresh_from_db()
    assert lead.stage == path[-1]
    refusals = [r for r in results if isinstance(r, TransitionRefused)]
    assert len(refusals) == len(moves) - len(path)


# --- scores: compare-and-set writes --------------------------------------------------------


def _read(lead) -> tuple:
    """What a rescore reads before scoring (the `expected` of a ScoreUpdate)."""
    return tuple(
        Lead.objects.filter(pk=lead.pk).values_list(
            "stage", "score", "fit_score", "engagement_score", "grade", "conversion_probability"
        )[0]
    )


def _update(lead, score: int, expected: tuple | None, **kw) -> services.ScoreUpdate:
    reasons = [{"rule": 1, "name": "Demo request", "kind": "engagement", "points": score}]
    return services.ScoreUpdate(
        lead_id=lead.pk,
        score=score,
        fit_score=0,
        engagement_score=score,
        grade="D",
        reasons=reasons,
        expected=expected,
        **kw,
    )


def test_scores_set_writes_history_and_promotes_a_lead_as_read():
    a, _ = capture("a@acme.com")
    b, _ = capture("b@acme.com")
    result = services.lead_scores_set(
        updates=[_update(a, 70, _read(a)), _update(b, 30, _read(b))], actor=BOT, mql_threshold=50
    )
    assert sorted(result.changed) == sorted([a.pk, b.pk]) and result.promoted == [a.pk]
    a.refresh_from_db()
    assert (a.score, a.engagement_score, a.grade, a.stage) == (70, 70, "D", Stage.MQL)
    change = a.score_changes.get()
    assert (change.old_score, change.new_score, change.reasons[0]["name"]) == (0, 70, "Demo request")
    assert StageChange.objects.get(lead=a, to_stage=Stage.MQL).actor_type == ActorType.AUTOMATION


def test_scores_set_compares_a_lead_changed_since_the_read_under_its_lock():
    lead, _ = capture("c@acme.com")
    stale = _read(lead)
    # Another rescore wrote 70 (and promoted) after this one read the lead at 0.
    services.lead_scores_set(updates=[_update(lead, 70, _read(lead))], actor=BOT, mql_threshold=50)
    again = services.lead_scores_set(updates=[_update(lead, 70, stale)], actor=BOT, mql_threshold=50)
    assert again.changed == [] and again.promoted == []
    later = services.lead_scores_set(updates=[_update(lead, 80, stale)], actor=BOT, mql_threshold=50)
    assert later.changed == [lead.pk] and later.promoted == []
    assert list(lead.score_changes.order_by("id").values_list("old_score", "new_score")) == [(0, 70), (70, 80)]
    assert StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).count() == 1


def test_scores_set_probability_alone_writes_no_history():
    lead, _ = capture("d@acme.com")
    services.lead_scores_set(
        updates=[
            services.ScoreUpdate(
                lead_id=lead.pk,
                score=0,
                fit_score=0,
                engagement_score=0,
                grade="",
                conversion_probability=0.25,
                expected=_read(lead),
            )
        ],
        actor=BOT,
        with_probability=True,
    )
    lead.refresh_from_db()
    assert lead.conversion_probability == 0.25 and not lead.score_changes.exists()


@pytest.mark.parametrize("odd", ['"', "\\", "{", ","])
def test_scores_set_compares_values_that_need_quoting(odd):
    """Values travel as array literals: a quote, a backslash, a brace or a comma in what was
    read still compares equal (the write is not sent back to the locked path for nothing)."""
    lead, _ = capture("e@acme.com")
    Lead.objects.filter(pk=lead.pk).update(grade=odd)
    with CaptureQueriesContext(connection) as ctx:
        result = services.lead_scores_set(updates=[_update(lead, 20, _read(lead))], actor=BOT, mql_threshold=50)
    assert result.changed == [lead.pk]
    if connection.vendor == "postgresql":
        assert not [q for q in ctx.captured_queries if "FOR UPDATE" in q["sql"]]
    lead.refresh_from_db()
    assert (lead.score, lead.grade) == (20, "D")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_racing_score_writes_of_the_same_leads_write_each_change_once():
    """Compare-and-set batches (in opposite orders) and a locked batch over the same leads,
    from the same stale read: no deadlock, one change and one promotion per lead."""
    leads = [capture(f"r{i}@acme.com")[0] for i in range(40)]
    read = [_read(lead) for lead in leads]

    def write(order, optimistic=True):
        return lambda: services.lead_scores_set(
            updates=[_update(leads[i], 70, read[i] if optimistic else None) for i in order],
            actor=BOT,
            mql_threshold=50,
        )

    forward, backward = list(range(40)), list(reversed(range(40)))
    results = race(write(forward), write(backward), write(forward, optimistic=False))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(len(r.changed) for r in results) == 40 and sum(len(r.promoted) for r in results) == 40
    assert ScoreChange.objects.filter(lead__in=leads).count() == 40
    assert StageChange.objects.filter(lead__in=leads, to_stage=Stage.MQL).count() == 40

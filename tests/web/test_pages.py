"""The work pages: queue, leads list, lead page, dashboard panels; permissions and constant
query counts whatever the number of leads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from leadcrm.actors import ActorType
from leads.models import Bant, Campaign, Lead, SavedFilter, ScoreChange, Stage, StageChange, Touchpoint, TouchpointType
from tests.factories import (
    BantFactory,
    LeadFactory,
    OpportunityFactory,
    TeamFactory,
    TouchpointFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team():
    return TeamFactory(name="Inside Sales FR")


@pytest.fixture
def sdr(team):
    return UserFactory(role=Role.SDR, team=team)


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    return len(ctx.captured_queries)


def hx(client, url, data=None, **headers):
    return client.post(url, data or {}, HTTP_HX_REQUEST="true", **{f"HTTP_{k}": v for k, v in headers.items()})


# --- queue ---------------------------------------------------------------------------------


def test_queue_shows_my_leads_and_my_team_pool_by_priority(client, sdr, team):
    other = UserFactory(role=Role.SDR, team=team)
    hot = LeadFactory(owner=sdr, grade="A", score=90, stage=Stage.MQL)
    cold = LeadFactory(owner=sdr, grade="C", score=20)
    pool = LeadFactory(team=team, grade="B", score=60)
    LeadFactory(owner=other)  # a colleague's lead: not in my queue
    LeadFactory(owner=sdr, stage=Stage.WO)  # closed: not in the queue
    client.force_login(sdr)
    response = client.get(reverse("queue"))
    assert response.status_code == 200
    assert [lead.pk for lead in response.context["leads"]] == [hot.pk, pool.pk, cold.pk]
    assert response.context["leads"][1].owner_id is None


def test_queue_orders_by_sla_due_time_first(client, sdr):
    from routing.models import SlaClock

    now = timezone.now()
    a = LeadFactory(owner=sdr, grade="A", score=99)
    b = LeadFactory(owner=sdr, grade="D", score=1)
    SlaClock.objects.create(lead=b, owner=sdr, started_at=now, due_at=now + dt.timedelta(minutes=5))
    SlaClock.objects.create(lead=a, owner=sdr, started_at=now, due_at=now + dt.timedelta(hours=5))
    client.force_login(sdr)
    response = client.get(reverse("queue"))
    assert [lead.pk for lead in response.context["leads"]] == [b.pk, a.pk]
    assert b"data-due=" in response.content


def test_the_pool_stays_in_sight_when_my_own_leads_fill_the_page(client, sdr, team):
    from routing.models import SlaClock

    now = timezone.now()
    mine = LeadFactory.create_batch(55, owner=sdr, grade="C")
    SlaClock.objects.bulk_create(
        SlaClock(lead=lead, owner=sdr, started_at=now, due_at=now + dt.timedelta(minutes=n))
        for n, lead in enumerate(mine)
    )
    best, other = LeadFactory(team=team, grade="A", score=90), LeadFactory(team=team, grade="B")
    client.force_login(sdr)
    first = client.get(reverse("queue"))
    assert all(lead.owner_id == sdr.pk for lead in first.context["leads"])
    pool = first.content.decode().split('id="queue-pool"')[1]
    assert pool.index(f"/leads/{best.pk}/") < pool.index(f"/leads/{other.pk}/")
    second = client.get(reverse("queue") + "?page=2")
    assert [lead.pk for lead in second.context["leads"]] == [lead.pk for lead in mine[50:]] + [best.pk, other.pk]
    assert 'id="queue-pool"' not in second.content.decode() and 'id="queue-next"' not in second.content.decode()


def test_queue_query_count_is_constant(client, sdr, team):
    client.force_login(sdr)
    LeadFactory.create_batch(3, owner=sdr)
    few = count_queries(client, reverse("queue"))
    LeadFactory.create_batch(40, owner=sdr)
    LeadFactory.create_batch(20, team=team)
    assert count_queries(client, reverse("queue")) == few
    assert few <= 8


def test_claim_a_pool_lead_with_htmx(client, sdr, team):
    lead = LeadFactory(team=team)
    client.force_login(sdr)
    response = hx(client, reverse("lead-claim", args=[lead.pk]))
    assert response.status_code == 200
    assert b"<tr" in response.content and b'data-action="call"' in response.content
    lead.refresh_from_db()
    assert lead.owner == sdr
    assert lead.assignments.get().actor_type == ActorType.USER


def test_log_a_call_and_a_note_with_htmx(client, sdr):
    lead = LeadFactory(owner=sdr)
    client.force_login(sdr)
    assert hx(client, reverse("lead-log", args=[lead.pk]), {"type": "call"}).status_code == 200
    response = hx(client, reverse("lead-log", args=[lead.pk]), {"type": "note"}, HX_PROMPT="Asked for pricing")
    assert b"Activity logged" in response.content
    notes = Touchpoint.objects.filter(lead=lead, type=TouchpointType.NOTE)
    assert notes.get().properties == {"note": "Asked for pricing"}
    assert Touchpoint.objects.filter(lead=lead, type=TouchpointType.CALL, author=sdr).exists()


def test_next_stage_refused_shows_the_guard_in_the_row(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.MQL)
    client.force_login(sdr)
    response = hx(client, reverse("lead-move", args=[lead.pk]), {"to": "SQL"})
    assert response.status_code == 200
    assert b"row-msg error" in response.content and b"BANT" in response.content
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_disqualify_with_reason_removes_the_lead_from_the_queue(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.MQL)
    client.force_login(sdr)
    response = hx(client, reverse("lead-move", args=[lead.pk]), {"to": "DISQUALIFIED"}, HX_PROMPT="Student")
    assert b"left your queue" in response.content
    lead.refresh_from_db()
    assert lead.stage == Stage.DISQUALIFIED
    assert lead.stage_changes.get(to_stage=Stage.DISQUALIFIED).reason == "Student"


def test_saved_filters_are_per_user(client, sdr):
    client.force_login(sdr)
    response = client.post(reverse("saved-filter-save"), {"page": "queue", "name": "Hot", "query": "grade=A"})
    assert response.status_code == 302 and response["Location"].endswith("?grade=A")
    saved = SavedFilter.objects.get(user=sdr)
    assert saved.query == "grade=A"
    assert b"Hot" in client.get(reverse("queue")).content
    other = UserFactory(role=Role.SDR)
    client.force_login(other)
    assert client.post(reverse("saved-filter-delete", args=[saved.pk])).status_code == 302
    assert SavedFilter.objects.filter(pk=saved.pk).exists()  # not theirs


def test_queue_csv_export_keeps_the_filters(client, sdr):
    LeadFactory(owner=sdr, grade="A", email="a@example.com")
    LeadFactory(owner=sdr, grade="B", email="b@example.com")
    client.force_login(sdr)
    response = client.get(reverse("queue") + "?grade=A&export=csv")
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert "a@example.com" in body and "b@example.com" not in body


def test_marketing_has_no_queue_but_a_leads_list(client):
    marketing = UserFactory(role=Role.MARKETING)
    LeadFactory(email="=cmd@example.com")
    client.force_login(marketing)
    assert client.get(reverse("queue"))["Location"] == reverse("leads-list")
    response = client.get(reverse("leads-list") + "?export=csv")
    assert "'=cmd@example.com" in b"".join(response.streaming_content).decode()  # no formula injection


def test_leads_list_query_count_is_constant(client):
    admin = UserFactory(role=Role.ADMIN)
    client.force_login(admin)
    LeadFactory.create_batch(3, owner=UserFactory(role=Role.SDR))
    few = count_queries(client, reverse("leads-list"))
    LeadFactory.create_batch(30, owner=UserFactory(role=Role.SDR))
    assert count_queries(client, reverse("leads-list")) == few


# --- lead page -----------------------------------------------------------------------------


def test_lead_page_is_404_for_a_lead_the_user_may_not_see(client, sdr):
    hidden = LeadFactory(owner=UserFactory(role=Role.SDR, team=TeamFactory(name="Other")))
    client.force_login(sdr)
    assert client.get(reverse("lead-detail", args=[hidden.pk])).status_code == 404
    assert client.post(reverse("lead-move", args=[hidden.pk]), {"to": "MQL"}).status_code == 404
    assert client.post(reverse("lead-bant", args=[hidden.pk]), {"budget": "x"}).status_code == 404
    assert not Bant.objects.exists()


def test_anonymous_users_are_sent_to_login_from_every_page(client):
    lead = LeadFactory()
    for url in ("queue", "leads-list", "import"):
        assert client.get(reverse(url)).status_code == 302
    assert client.get(reverse("lead-detail", args=[lead.pk])).status_code == 302


def test_marketing_reads_a_lead_but_cannot_fill_bant(client):
    marketing = UserFactory(role=Role.MARKETING)
    lead = LeadFactory(stage=Stage.MQL)
    client.force_login(marketing)
    assert client.get(reverse("lead-detail", args=[lead.pk])).status_code == 200
    assert client.post(reverse("lead-bant", args=[lead.pk]), {"budget": "x"}).status_code == 403


def test_lead_page_shows_identity_score_reasons_timeline_and_guarded_moves(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.MQL, score=72, grade="A", conversion_probability=0.42)
    lead.consent_status = "opt_in"
    lead.save()
    ScoreChange.objects.create(lead=lead, old_score=10, new_score=72, reasons=[{"rule": "Pricing page", "points": 20}])
    TouchpointFactory(lead=lead, type=TouchpointType.DEMO_REQUEST, utm_source="google")
    client.force_login(sdr)
    response = client.get(reverse("lead-detail", args=[lead.pk]))
    html = response.content.decode()
    assert lead.email in html and "Pricing page" in html and "42 %" in html
    assert 'data-consent="opt_in"' in html and "demo_request" in html
    options = {o["to"]: o for o in response.context["options"]}
    assert not options["SQL"]["allowed"] and options["SQL"]["guard"] == "bant_complete"
    assert options["DISQUALIFIED"]["allowed"]
    assert 'data-guard="bant_complete"' in html


def test_lead_page_query_count_is_constant(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.MQL)
    client.force_login(sdr)
    few = count_queries(client, reverse("lead-detail", args=[lead.pk]))
    TouchpointFactory.create_batch(30, lead=lead)
    for i in range(10):
        ScoreChange.objects.create(lead=lead, old_score=i, new_score=i + 1)
    LeadFactory.create_batch(20, owner=sdr)
    assert count_queries(client, reverse("lead-detail", args=[lead.pk])) == few
    assert few <= 25


def test_bant_then_move_to_sql_from_the_lead_page(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.MQL)
    client.force_login(sdr)
    url = reverse("lead-detail", args=[lead.pk])
    refused = client.post(reverse("lead-move", args=[lead.pk]), {"to": "SQL"}, follow=True)
    assert "refused" in refused.content.decode()
    fields = {"budget": "50k", "authority": "CMO", "need": "CRM", "timeline": "Q3"}
    assert client.post(reverse("lead-bant", args=[lead.pk]), fields)["Location"] == url
    response = client.post(reverse("lead-move", args=[lead.pk]), {"to": "SQL", "reason": "Qualified"}, follow=True)
    assert "Moved to SQL" in response.content.decode()
    lead.refresh_from_db()
    assert lead.stage == Stage.SQL
    assert response.context["history"][0]["to_stage"] == "SQL"


def test_opportunity_form_moves_sal_to_co(client, sdr):
    lead = LeadFactory(owner=sdr, stage=Stage.SAL)
    client.force_login(sdr)
    data = {"amount": "12 500,50", "currency": "eur", "expected_close": "2030-01-31"}
    client.post(reverse("lead-opportunity", args=[lead.pk]), data)
    lead.refresh_from_db()
    assert lead.stage == Stage.CO
    assert lead.opportunity.amount == Decimal("12500.50") and lead.opportunity.currency == "EUR"


def test_a_redirect_target_outside_the_site_is_ignored(client, sdr):
    lead = LeadFactory(owner=sdr)
    client.force_login(sdr)
    response = client.post(reverse("lead-log", args=[lead.pk]), {"type": "call", "next": "https://evil.example/"})
    assert response["Location"] == reverse("lead-detail", args=[lead.pk])


# --- dashboard -----------------------------------------------------------------------------


@pytest.fixture
def marketing_world(sdr):
    now = timezone.now()
    Campaign.objects.create(name="Google Q1", utm_campaign="g-q1", source="google-ads", spend=Decimal("1000"))
    Campaign.objects.create(name="Fair", utm_campaign="fair", source="trade-fair", spend=Decimal("500"))
    won = LeadFactory(source="google-ads", utm_campaign="g-q1", stage=Stage.WO, owner=sdr)
    for lead in LeadFactory.create_batch(3, source="google-ads", utm_campaign="g-q1", stage=Stage.MQL):
        StageChange.objects.create(lead=lead, to_stage=Stage.MCL, actor_type=ActorType.API, created_at=now)
    LeadFactory(source="trade-fair", utm_campaign="fair", stage=Stage.SQL, owner=sdr)
    LeadFactory(source="trade-fair", utm_campaign="fair", stage=Stage.DISQUALIFIED)
    OpportunityFactory(lead=won, amount=Decimal("10000"), status="won")
    StageChange.objects.create(
        lead=won, from_stage=Stage.CO, to_stage=Stage.WO, actor_type=ActorType.USER, created_at=now
    )
    OpportunityFactory(lead=LeadFactory(stage=Stage.CO, source="seo", owner=sdr), amount=Decimal("5000"))
    from routing.models import SlaClock

    hour = dt.timedelta(hours=1)
    for touched in (now - 3 * hour, now + hour, None):  # met, late, past due untouched
        SlaClock.objects.create(
            lead=won, owner=sdr, team=sdr.team, started_at=now - 5 * hour, due_at=now - 2 * hour,
            first_touch_at=touched, closed_at=touched,
        )  # fmt: skip
    SlaClock.objects.create(lead=won, owner=sdr, team=sdr.team, started_at=now, due_at=now + hour)  # undecided
    TouchpointFactory(lead=won, utm_source="linkedin", occurred_at=now - dt.timedelta(days=3))
    TouchpointFactory(lead=won, utm_source="google", occurred_at=now - dt.timedelta(days=1))
    return UserFactory(role=Role.MARKETING)


def test_dashboard_panels(client, marketing_world):
    client.force_login(marketing_world)
    response = client.get("/")
    ctx = response.context
    g = next(c for c in ctx["cpl"]["campaigns"] if c["key"] == "g-q1")
    assert g["counts"][0] == 4 and g["cpl"][0] == Decimal("250")  # 1000 / 4 MCL
    assert g["counts"][-1] == 1 and g["cpl"][-1] == Decimal("1000")
    assert ctx["pipeline"]["open"] == 1 and ctx["pipeline"]["value"] == Decimal("5000")
    assert ctx["pipeline"]["win_rate"] == 1.0 and ctx["pipeline"]["velocity"] is not None
    assert sum(s["total"] for s in ctx["over_time"]["series"]) == Lead.objects.count()
    first = {r["source"]: r["credit"] for r in ctx["attribution"]["rows"]}
    assert first["linkedin"] == 1  # the won lead's first touch
    last = {r["source"]: r["credit"] for r in client.get("/?model=last").context["attribution"]["rows"]}
    assert last["google"] == 1
    linear = {r["source"]: r["credit"] for r in client.get("/?model=linear").context["attribution"]["rows"]}
    assert linear["google"] == pytest.approx(0.5) and linear["linkedin"] == pytest.approx(0.5)
    assert b'id="dashboard-data"' in response.content and b"chart.umd.min.js" in response.content


def test_dashboard_filters_and_csv_exports(client, marketing_world):
    client.force_login(marketing_world)
    response = client.get("/?source=trade-fair")
    assert response.context["funnel"]["total"] == 2
    for name in ("funnel", "over_time", "cpl", "attribution", "pipeline", "sla"):
        export = client.get(f"/?export={name}")
        assert export["Content-Type"].startswith("text/csv"), name
        assert b"".join(export.streaming_content).strip(), name
    future = (timezone.localdate() + dt.timedelta(days=10)).isoformat()
    assert client.get(f"/?start={future}&end={future}").context["funnel"]["total"] == 0


def test_dashboard_query_count_is_constant(client, marketing_world):
    client.force_login(marketing_world)
    few = count_queries(client, "/?model=linear")
    LeadFactory.create_batch(30, source="google-ads", utm_campaign="g-q1", stage=Stage.SQL)
    for lead in LeadFactory.create_batch(10, stage=Stage.CO):
        OpportunityFactory(lead=lead)
    assert count_queries(client, "/?model=linear") == few


def test_pages_speak_french(client, sdr):
    LeadFactory(owner=sdr)
    client.force_login(sdr)
    client.post(reverse("set_language"), {"language": "fr", "next": "/queue/"})
    html = client.get(reverse("queue")).content.decode()
    assert "Ma file" in html and "Tableau de bord" in html
    html = client.get("/").content.decode()
    assert "Entonnoir" in html


def test_bant_is_complete_before_sql(sdr):
    """The factory used by the browser test seeds a complete BANT."""
    assert BantFactory(lead=LeadFactory(owner=sdr)).is_complete


# --- aggregate tables ------------------------------------------------------------------------


def _panels(response) -> dict:
    ctx = response.context
    return {
        "funnel": [(r["stage"], r["now"], r["reached"]) for r in ctx["funnel"]["rows"]],
        "exits": [(r["stage"], r["now"]) for r in ctx["funnel"]["exits"]],
        "over_time": ctx["over_time"],
        "cpl": [(c["key"], c["counts"], c["cpl"]) for c in ctx["cpl"]["campaigns"]],
        "pipeline": {k: v for k, v in ctx["pipeline"].items() if k not in ("cycle_days", "velocity")},
        "cycle": round(ctx["pipeline"]["cycle_days"] or 0, 3),
        "attribution": [(r["source"], round(r["credit"], 6)) for r in ctx["attribution"]["rows"]],
        "sla": [(r["team_name"], r["total"], r["met"]) for r in ctx["sla"]["teams"]],
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the aggregate tables are built on PostgreSQL")
@pytest.mark.parametrize(
    "query",
    [
        "",
        "?model=last",
        "?model=linear",
        f"?start={dt.date.today().replace(day=1)}",
        "?source=google-ads&model=linear",
        "?campaign=fair",
    ],
)
def test_the_aggregate_tables_give_the_live_figures(client, marketing_world, query):
    from leads import rollups
    from leads.models import RollupRun

    client.force_login(marketing_world)
    live = client.get("/" + query)
    assert live.context["as_of"] is None
    run = rollups.dashboard_rollup_refresh()
    assert run.leads == Lead.objects.count()
    rolled = client.get("/" + query)
    assert rolled.context["as_of"] == run.finished_at
    assert _panels(rolled) == _panels(live)
    if not query:
        assert _panels(live)["sla"] == [("Inside Sales FR", 3, 1)]  # decided clocks, one touched in time
    team = marketing_world.team_id or Lead.objects.exclude(team=None).values_list("team", flat=True).first()
    assert client.get(f"/?team={team}").context["as_of"] is None  # a team's view: live
    RollupRun.objects.update(finished_at=timezone.now() - dt.timedelta(hours=1))  # stale: live again
    assert client.get("/" + query).context["as_of"] is None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the aggregate tables are built on PostgreSQL")
def test_sellers_dashboards_stay_live(client, marketing_world, sdr):
    from leads import rollups

    rollups.dashboard_rollup_refresh()
    client.force_login(sdr)
    response = client.get("/")
    assert response.context["as_of"] is None
    assert response.context["funnel"]["total"] == Lead.objects.filter(owner=sdr).count()


def test_the_rollup_task_is_scheduled(settings):
    assert "leads.tasks.dashboard_rollup_refresh" in {v["task"] for v in settings.CELERY_BEAT_SCHEDULE.values()}

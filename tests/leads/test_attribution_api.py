"""`GET /api/v1/metrics/attribution/`: the credit of each model on a hand-built set of leads and
touchpoints (numbers worked out by hand below), the dashboard's panel and the API giving the
same figures (live and from the aggregate tables), bad parameters, roles and visibility."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from leads import reports
from leads.models import Lead, Stage
from tests.factories import LeadFactory, TouchpointFactory

URL = "/api/v1/metrics/attribution/"
pytestmark = pytest.mark.django_db


def _touch(lead: Lead, days_ago: int, source: str, campaign: str = "") -> None:
    occurred = timezone.now() - dt.timedelta(days=days_ago)
    TouchpointFactory(lead=lead, utm_source=source, utm_campaign=campaign, occurred_at=occurred)


@pytest.fixture
def world(people):
    """Seven leads; what each is worth under each model, by source, is in PER_LEAD."""
    won = LeadFactory(stage=Stage.WO, source="seo", utm_source="", owner=people.sdr_b)
    _touch(won, 4, "linkedin", "li-1")
    _touch(won, 3, "google", "g-1")
    _touch(won, 2, "newsletter")
    _touch(won, 1, "google", "g-1")
    sql = LeadFactory(stage=Stage.SQL, source="seo", owner=people.sdr_a)
    _touch(sql, 2, "google", "g-2")
    _touch(sql, 1, "facebook")
    mql = LeadFactory(stage=Stage.MQL, source="seo")
    _touch(mql, 1, "facebook", "fb-1")
    offer = LeadFactory(stage=Stage.CO, source="trade-fair", utm_campaign="fair")  # no touchpoint
    lost = LeadFactory(stage=Stage.LOST, source="seo")  # not credited: lost
    _touch(lost, 1, "google", "g-1")
    fresh = LeadFactory(stage=Stage.MCL, source="seo")  # not credited: not yet MQL
    _touch(fresh, 1, "google", "g-1")
    accepted = LeadFactory(stage=Stage.SAL, source="seo", utm_source="bing")
    TouchpointFactory(lead=accepted, utm_source="")  # no utm: credited to its own utm_source
    return {"won": won, "sql": sql, "mql": mql, "offer": offer, "accepted": accepted}


# By source, per lead and model (worked out by hand). Position-based: 40 % first, 40 % last,
# 20 % split between the middle touches (the won lead: linkedin, google, newsletter, google);
# 50/50 with two touches.
PER_LEAD = {
    "won": {
        "first": {"linkedin": 1},
        "last": {"google": 1},
        "linear": {"linkedin": 0.25, "google": 0.5, "newsletter": 0.25},
        "position": {"linkedin": 0.4, "google": 0.5, "newsletter": 0.1},
    },
    "sql": {
        "first": {"google": 1},
        "last": {"facebook": 1},
        "linear": {"google": 0.5, "facebook": 0.5},
        "position": {"google": 0.5, "facebook": 0.5},
    },
    "mql": {m: {"facebook": 1} for m in reports.ATTRIBUTION_ALL_MODELS},
    "offer": {m: {"trade-fair": 1} for m in reports.ATTRIBUTION_ALL_MODELS},
    "accepted": {m: {"bing": 1} for m in reports.ATTRIBUTION_ALL_MODELS},
}
# Credited leads per stage: now at that stage or further along the funnel, open or won.
CREDITED = {
    "MQL": ("won", "sql", "mql", "offer", "accepted"),
    "SQL": ("won", "sql", "offer", "accepted"),
    "CO": ("won", "offer"),
    "WO": ("won",),
}


def _expected(model: str, stage: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in CREDITED[stage]:
        for key, value in PER_LEAD[name][model].items():
            out[key] = out.get(key, 0) + value
    return out


def _credits(body: dict, stage: str) -> dict[str, float]:
    return {r["key"]: r["credit"] for r in body["stages"][stage]["rows"]}


@pytest.mark.parametrize("model", reports.ATTRIBUTION_ALL_MODELS)
def test_each_models_credit_per_stage_by_source(world, people, auth_client, model):
    body = auth_client(people.marketing).get(URL, {"model": model}).json()
    assert body["model"] == model and body["by"] == "source"
    assert set(body["stages"]) == {"MQL", "SQL", "CO", "WO"}
    for stage in CREDITED:
        assert _credits(body, stage) == pytest.approx(_expected(model, stage)), stage
        assert body["stages"][stage]["total"] == pytest.approx(len(CREDITED[stage]))  # each lead gives 1
        shares = [r["share"] for r in body["stages"][stage]["rows"]]
        assert sum(shares) == pytest.approx(1)


def test_position_based_exact_figures(world, people, auth_client):
    body = auth_client(people.admin).get(URL, {"model": "position", "stage": "MQL"}).json()
    assert list(body["stages"]) == ["MQL"]
    rows = body["stages"]["MQL"]["rows"]
    # highest credit first, ties by name
    assert [(r["key"], round(r["credit"], 6)) for r in rows] == [
        ("facebook", 1.5),
        ("bing", 1.0),
        ("google", 1.0),
        ("trade-fair", 1.0),
        ("linkedin", 0.4),
        ("newsletter", 0.1),
    ]
    assert rows[0]["share"] == pytest.approx(1.5 / 5)


def test_credit_per_campaign(world, people, auth_client):
    client = auth_client(people.marketing)
    # The won lead's touches with a campaign: li-1, g-1, g-1 (the newsletter has none).
    expected = {
        "first": {"li-1": 1, "g-2": 1, "fair": 1, "(none)": 1},
        "last": {"g-1": 1, "g-2": 1, "fair": 1, "(none)": 1},
        "linear": {"li-1": 1 / 3, "g-1": 2 / 3, "g-2": 1, "fair": 1, "(none)": 1},
        "position": {"li-1": 0.4, "g-1": 0.6, "g-2": 1, "fair": 1, "(none)": 1},
    }
    for model, credits in expected.items():
        body = client.get(URL, {"model": model, "by": "campaign", "stage": "SQL"}).json()
        assert body["by"] == "campaign"
        assert _credits(body, "SQL") == pytest.approx(credits), model
    wo = client.get(URL, {"model": "position", "by": "campaign", "stage": "WO"}).json()
    assert _credits(wo, "WO") == pytest.approx({"li-1": 0.4, "g-1": 0.6})


def test_period_source_and_campaign_filters(world, people, auth_client):
    client = auth_client(people.marketing)
    Lead.objects.filter(pk=world["won"].pk).update(created_at=timezone.now() - dt.timedelta(days=200))
    body = client.get(URL, {"model": "first", "stage": "WO"}).json()  # last 90 days by default
    assert body["stages"]["WO"]["rows"] == []
    old = (timezone.localdate() - dt.timedelta(days=201)).isoformat()
    body = client.get(URL, {"model": "first", "stage": "WO", "start": old}).json()
    assert _credits(body, "WO") == {"linkedin": 1}
    assert body["start"] == old and body["end"] == timezone.localdate().isoformat()
    body = client.get(URL, {"model": "first", "stage": "SQL", "source": "trade-fair"}).json()
    assert _credits(body, "SQL") == {"trade-fair": 1}
    body = client.get(URL, {"model": "first", "stage": "SQL", "campaign": "fair"}).json()
    assert _credits(body, "SQL") == {"trade-fair": 1}


@pytest.mark.parametrize("model", reports.ATTRIBUTION_MODELS)
def test_the_dashboard_and_the_api_agree(world, people, auth_client, client, model):
    """The dashboard's panel is the SQL stage by source, live and from the aggregate tables."""
    api = _credits(auth_client(people.marketing).get(URL, {"model": model}).json(), "SQL")
    client.force_login(people.marketing)
    live = client.get("/", {"model": model}).context["attribution"]
    assert {r["source"]: r["credit"] for r in live["rows"]} == pytest.approx(api)
    assert api == pytest.approx(_expected(model, "SQL"))
    if connection.vendor == "postgresql":
        from leads import rollups

        rollups.dashboard_rollup_refresh()
        rolled = client.get("/", {"model": model}).context
        assert rolled["as_of"] is not None
        assert {r["source"]: r["credit"] for r in rolled["attribution"]["rows"]} == pytest.approx(api)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"model": "w-shaped"}, "model"),
        ({"stage": "LOST"}, "stage"),
        ({"stage": "sql"}, "stage"),
        ({"by": "medium"}, "by"),
        ({"start": "2026-13-01"}, "start"),
        ({"end": "yesterday"}, "end"),
        ({"start": "9999-12-31"}, "start"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "start"),
        ({"team": "abc"}, "team"),
        ({"team": "99999999999999999999"}, "team"),
    ],
)
def test_bad_parameters_answer_400_with_field_errors(people, auth_client, params, field):
    response = auth_client(people.admin).get(URL, params)
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_roles_and_visibility(world, people, auth_client, api_client):
    assert api_client.get(URL).status_code == 401
    for user in (people.admin, people.marketing, people.manager_a, people.sdr_a):
        assert auth_client(user).get(URL).status_code == 200
    # A seller is credited only the leads it sees: its own (the SQL lead).
    body = auth_client(people.sdr_a).get(URL, {"model": "linear"}).json()
    assert _credits(body, "SQL") == pytest.approx({"google": 0.5, "facebook": 0.5})
    assert body["stages"]["WO"]["rows"] == []
    # Team B's manager sees the won lead of its seller, not team A's.
    body = auth_client(people.manager_b).get(URL, {"model": "last"}).json()
    assert _credits(body, "SQL") == {"google": 1}


def test_the_schema_documents_the_parameters():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/metrics/attribution/"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"model", "stage", "by", "start", "end", "source", "campaign", "team"} <= set(params)
    assert params["model"]["schema"]["enum"] == ["first", "last", "linear", "position"]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"model", "by", "start", "end", "stages"} <= set(schema["components"]["schemas"][ref]["properties"])

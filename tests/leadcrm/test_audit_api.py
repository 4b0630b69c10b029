"""`GET /api/v1/audit/`: each role reads only what it may (never an entry about a lead it
cannot see, whatever the filter), the filters narrow, bad filter values answer 400 with a
field error, pages walk every entry once, and the query count does not grow with the page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm import audit
from leadcrm.actors import Actor, ActorType
from leads import services
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit/"


@pytest.fixture
def org(people):
    """`people` (team A: manager_a, sdr_a, sdr_a2; team B: manager_b, sdr_b; an admin and
    marketing); a lead of each of sdr_a, sdr_b, team A's pool and team B's pool; one entry
    about each lead and one about each kind of configuration."""
    o = people
    team_a, team_b = o.team_a, o.team_b
    o.own = LeadFactory(owner=o.sdr_a, email="own@a.example")
    o.other = LeadFactory(owner=o.sdr_b, email="other@b.example")
    o.pool_a = LeadFactory(team=team_a, email="pool@a.example")
    o.pool_b = LeadFactory(team=team_b, email="pool@b.example")
    for lead in (o.own, o.other, o.pool_a, o.pool_b):
        services.lead_update(lead_id=lead.pk, data={"city": f"City of {lead.email}"}, actor=Actor(o.admin, "user"))
    o.config = {
        kind: audit.record(actor=o.admin, action=action, target=(kind, 1, label), changes={"name": [None, label]})
        for kind, action, label in [
            ("scoring.ruleset", "scoring.ruleset.create", "Default"),
            ("routing.routingrule", "routing.rule.create", "France"),
            ("accounts.team", "team.create", "Team C"),
        ]
    }
    o.member_a = audit.record(actor=o.admin, action="user.update", target=o.sdr_a, changes={"capacity": [50, 40]})
    o.member_b = audit.record(actor=o.admin, action="user.update", target=o.sdr_b, changes={"capacity": [50, 30]})
    return o


def _get(auth_client, user, **params):
    response = auth_client(user).get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def _seen(auth_client, user, **params) -> set[tuple[str, str]]:
    return {(e["target"]["type"], e["target"]["id"]) for e in _get(auth_client, user, **params)["results"]}


def _lead(lead) -> tuple[str, str]:
    return ("leads.lead", str(lead.pk))


def test_admins_read_every_entry(org, auth_client):
    seen = _seen(auth_client, org.admin)
    assert {_lead(x) for x in (org.own, org.other, org.pool_a, org.pool_b)} <= seen
    assert {(k, "1") for k in org.config} | {("accounts.user", str(org.sdr_a.pk))} <= seen


def test_a_seller_reads_only_entries_about_leads_they_can_see(org, auth_client):
    assert _seen(auth_client, org.sdr_a) == {_lead(org.own), _lead(org.pool_a)}


def test_a_lookup_never_reveals_an_entry_about_a_hidden_lead(org, auth_client):
    hidden = _get(auth_client, org.sdr_a, target=f"lead:{org.other.pk}")
    missing = _get(auth_client, org.sdr_a, target="lead:999999999")
    assert hidden == missing == {"next": None, "previous": None, "results": []}
    assert _get(auth_client, org.sdr_a, actor=org.admin.username, action="lead.update")["results"]
    assert _seen(auth_client, org.sdr_a, actor=org.admin.pk) == {_lead(org.own), _lead(org.pool_a)}


def test_a_manager_reads_their_teams_leads_and_members(org, auth_client):
    assert _seen(auth_client, org.manager_a) == {
        _lead(org.own),
        _lead(org.pool_a),
        ("accounts.user", str(org.sdr_a.pk)),
    }


def test_marketing_reads_every_lead_and_the_scoring_configuration(org, auth_client):
    seen = _seen(auth_client, org.marketing)
    assert seen == {_lead(x) for x in (org.own, org.other, org.pool_a, org.pool_b)} | {("scoring.ruleset", "1")}


def test_an_entry_names_actor_target_and_old_to_new(org, auth_client, make_user):
    services.lead_update(lead_id=org.own.pk, data={"city": "Lyon"}, actor=Actor(org.sdr_a, ActorType.API))
    services.lead_update(lead_id=org.own.pk, data={"city": "Nice"}, actor=Actor.automation())
    by_sdr, by_automation = _get(auth_client, org.sdr_a, target=f"leads.lead:{org.own.pk}")["results"][1::-1]
    assert by_sdr["actor"] == {"id": org.sdr_a.pk, "username": org.sdr_a.username}
    assert (by_sdr["actor_kind"], by_sdr["action"]) == ("api", "lead.update")
    assert by_sdr["target"] == {"type": "leads.lead", "id": str(org.own.pk), "label": "own@a.example"}
    assert by_sdr["changes"] == {"city": ["City of own@a.example", "Lyon"]}
    assert (by_automation["actor"], by_automation["actor_kind"]) == (None, "automation")
    assert by_automation["changes"] == {"city": ["Lyon", "Nice"]}
    assert dt.datetime.fromisoformat(by_automation["at"]) >= dt.datetime.fromisoformat(by_sdr["at"])


def test_filters_narrow_the_log(org, auth_client):
    admin = org.admin
    assert _seen(auth_client, admin, target=f"lead:{org.other.pk}") == {_lead(org.other)}
    assert _seen(auth_client, admin, target="scoring.ruleset") == {("scoring.ruleset", "1")}
    assert _seen(auth_client, admin, target="TEAM") == {("accounts.team", "1")}
    assert _seen(auth_client, admin, target=f"user:{org.sdr_b.pk}") == {("accounts.user", str(org.sdr_b.pk))}
    assert {e["action"] for e in _get(auth_client, admin, action="routing.*")["results"]} == {"routing.rule.create"}
    assert len(_get(auth_client, admin, action="lead.update")["results"]) == 4
    services.lead_update(lead_id=org.own.pk, data={"city": "Lyon"}, actor=Actor(org.sdr_a, ActorType.API))
    assert _seen(auth_client, admin, actor=org.sdr_a.username.upper()) == {_lead(org.own)}
    assert _seen(auth_client, admin, actor=str(org.sdr_a.pk)) == {_lead(org.own)}
    assert _seen(auth_client, admin, actor_kind="api") == {_lead(org.own)}
    assert _get(auth_client, admin, actor="nobody-here")["results"] == []


def test_since_and_until_bound_the_period(org, auth_client):
    from leadcrm.models import AuditEntry

    old = timezone.now() - dt.timedelta(days=10)
    AuditEntry.objects.filter(pk=org.config["accounts.team"].pk).update(at=old)
    cut = (old + dt.timedelta(days=1)).isoformat()
    assert _seen(auth_client, org.admin, until=cut) == {("accounts.team", "1")}
    assert ("accounts.team", "1") not in _seen(auth_client, org.admin, since=cut)
    assert _get(auth_client, org.admin, since=cut, until=cut)["results"] == []


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("target", "lead:"),
        ("target", "lead:1 2"),
        ("target", "nosuchmodel:1"),
        ("target", "Leads Lead:1"),
        ("target", "lead:" + "9" * 65),
        ("actor", "no such user!"),
        ("actor", "²"),
        ("actor", "99999999999999999999"),
        ("action", "lead update"),
        ("action", ".*x"),
        ("actor_kind", "robot"),
        ("since", "2026-13-01"),
        ("since", "yesterday"),
        ("until", "2026-01-01T00:00:00+22:24"),
        ("until", "9999-12-31T23:59:59Z"),
    ],
)
def test_bad_filter_values_answer_400_naming_the_field(org, auth_client, param, value):
    response = auth_client(org.admin).get(URL, {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()


def test_a_bad_cursor_is_a_404_not_a_500(org, auth_client):
    response = auth_client(org.admin).get(URL, {"cursor": "bz14JnA9MQ=="})  # base64 of "o=x&p=1"
    assert response.status_code == 404 and response.json()["detail"]


def test_pages_walk_every_entry_once_even_when_a_batch_shares_its_time(org, auth_client):
    now = timezone.now()
    audit.record_many(
        audit.entry(actor=org.admin, action="lead.create", target=org.own, details={"bulk": True}, at=now)
        for _ in range(7)
    )
    expected = _get(auth_client, org.admin, page_size=1000)["results"]
    client, url, ids = auth_client(org.admin), f"{URL}?page_size=3", []
    while url:
        page = client.get(url).json()
        ids += [e["id"] for e in page["results"]]
        url = page["next"]
    assert ids == [e["id"] for e in expected] and len(ids) == len(set(ids)) == 16


def test_anonymous_callers_are_refused(org, api_client):
    assert api_client.get(URL).status_code == 401


def _queries(client, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(URL, {"page_size": 100, **params})
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("role", ["admin", "sdr_a", "manager_a", "marketing"])
def test_the_query_count_does_not_grow_with_the_entries(org, auth_client, make_user, role):
    """50 entries by 10 different users cost the same queries as 5 (actors are joined)."""
    actors = [make_user("sdr", org.team_a) for _ in range(10)]
    user = getattr(org, role)
    client = auth_client(user)

    def add(n: int) -> None:
        audit.record_many(
            audit.entry(actor=actors[i % 10], action="lead.update", target=org.own, changes={"city": ["a", str(i)]})
            for i in range(n)
        )

    add(5)
    _queries(client)  # warm: the token's user, content types
    few = _queries(client)
    add(45)
    many = _queries(client)
    assert len(_get(auth_client, user, page_size=100)["results"]) >= 50
    print(f"audit list as {role}: {few} queries with 5 entries, {many} with 50")
    assert many == few <= 4

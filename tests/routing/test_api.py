"""Routing admin API: exact SPEC paths and shapes, permissions, manual routing, partner
answers, team load and SLA compliance; users' routing profile in /api/v1/users/."""

from __future__ import annotations

import pytest

from accounts.models import Role
from leads.models import Assignment, Stage
from routing.models import OfferStatus, Partner, PartnerOffer, RoutingRule, Territory
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api(org, auth_client):
    return auth_client(org.admin)


def test_rules_crud_exactly_per_spec(org, admin_api):
    body = {
        "name": "Big French software",
        "position": 10,
        "conditions": {
            "country": ["FR"],
            "industry": ["Software"],
            "source": ["seo"],
            "grade": ["A", "B"],
            "company_size_min": 200,
            "company_size_max": 5000,
            "score_min": 50,
            "score_max": 100,
            "properties": {"product_interest": ["analytics"]},
        },
        "team": org.fr.pk,
    }
    r = admin_api.post("/api/v1/routing-rules/", body, format="json")
    assert r.status_code == 201, r.content
    rule = r.json()
    assert rule["conditions"] == body["conditions"] and rule["team"] == org.fr.pk and rule["user"] is None
    r = admin_api.get("/api/v1/routing-rules/")
    assert [x["id"] for x in r.json()] == [rule["id"]]
    r = admin_api.patch(f"/api/v1/routing-rules/{rule['id']}/", {"user": org.s1.pk}, format="json")
    assert r.status_code == 200 and r.json()["user"] == org.s1.pk and r.json()["team"] is None
    assert admin_api.get(f"/api/v1/routing-rules/{rule['id']}/").json()["position"] == 10
    assert admin_api.delete(f"/api/v1/routing-rules/{rule['id']}/").status_code == 204
    assert admin_api.get(f"/api/v1/routing-rules/{rule['id']}/").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "x", "conditions": {"colour": ["red"]}, "team": None}, "conditions"),
        ({"name": "x", "conditions": {"country": "FR"}}, "conditions"),
        ({"name": "x", "conditions": {"score_min": "high"}}, "conditions"),
        ({"name": "x", "conditions": {}}, "target"),
        ({"name": "x", "conditions": {}, "team": 1, "user": 1}, "target"),
    ],
)
def test_bad_rules_are_400_with_field_errors(org, admin_api, body, field):
    if body.get("team") == 1:
        body = {**body, "team": org.fr.pk, "user": org.s1.pk}
    elif "team" not in body and field == "conditions":
        body = {**body, "team": org.fr.pk}
    r = admin_api.post("/api/v1/routing-rules/", body, format="json")
    assert r.status_code == 400 and field in r.json(), r.content


def test_managers_read_their_team_others_are_refused(org, auth_client):
    mine = RoutingRule.objects.create(name="FR", position=1, conditions={}, team=org.fr)
    RoutingRule.objects.create(name="DE", position=2, conditions={}, team=org.de)
    manager = auth_client(org.manager)
    assert [x["id"] for x in manager.get("/api/v1/routing-rules/").json()] == [mine.pk]
    assert manager.post("/api/v1/routing-rules/", {"name": "x", "team": org.fr.pk}, format="json").status_code == 403
    assert manager.patch(f"/api/v1/routing-rules/{mine.pk}/", {"name": "y"}, format="json").status_code == 403
    assert manager.delete(f"/api/v1/routing-rules/{mine.pk}/").status_code == 403
    assert auth_client(org.s1).get("/api/v1/routing-rules/").status_code == 403
    assert len(auth_client(org.marketing).get("/api/v1/routing-rules/").json()) == 2


def test_territories_partners_sla_policies_settings(org, admin_api):
    t = admin_api.post("/api/v1/territories/", {"name": "Benelux", "countries": ["be", "NL"]}, format="json")
    assert t.status_code == 201 and t.json()["countries"] == ["BE", "NL"]
    partner_user = UserFactory(role=Role.SDR)
    p = admin_api.post(
        "/api/v1/partners/",
        {"name": "BeneSales", "kind": "reseller", "user": partner_user.pk, "territories": [t.json()["id"]]},
        format="json",
    )
    assert p.status_code == 201, p.content
    assert p.json()["territories"] == [t.json()["id"]]
    s = admin_api.post(
        "/api/v1/sla-policies/",
        {"name": "A", "grade": "A", "minutes_to_first_touch": 60, "reassign_after_minutes": 120},
        format="json",
    )
    assert s.status_code == 201 and s.json()["weekdays"] == [0, 1, 2, 3, 4]
    bad = admin_api.post(
        "/api/v1/sla-policies/",
        {"name": "B", "minutes_to_first_touch": 60, "day_start": "18:00", "day_end": "09:00"},
        format="json",
    )
    assert bad.status_code == 400
    r = admin_api.patch(
        "/api/v1/routing-settings/", {"route_on_capture": True, "default_team": org.fr.pk}, format="json"
    )
    assert r.status_code == 200 and r.json() == {
        "route_on_mql": True,
        "route_on_capture": True,
        "default_team": org.fr.pk,
    }
    rule = admin_api.post(
        "/api/v1/routing-rules/",
        {"name": "Benelux partners", "conditions": {"region": ["Benelux"]}, "partner": p.json()["id"]},
        format="json",
    )
    assert rule.status_code == 201, rule.content
    assert (
        admin_api.post(
            "/api/v1/routing-rules/",
            {"name": "x", "conditions": {"region": ["Atlantis"]}, "team": org.fr.pk},
            format="json",
        ).status_code
        == 400
    )


def test_manual_route_and_history(org, admin_api, auth_client):
    RoutingRule.objects.create(name="FR", position=1, conditions={"country": ["FR"]}, team=org.fr)
    lead = LeadFactory(stage=Stage.MQL, country="FR")
    r = admin_api.post(f"/api/v1/leads/{lead.pk}/route/", {"reason": "Urgent"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["outcome"] == "assigned" and r.json()["team"] == org.fr.pk
    assert r.json()["details"]["rule"]["name"] == "FR"
    history = admin_api.get(f"/api/v1/leads/{lead.pk}/history/").json()
    items = history["results"] if isinstance(history, dict) else history
    assignment = next(i for i in items if i["kind"] == "assignment")
    assert assignment["reason"] == "Urgent" and assignment["details"]["matched"] == {"country": "FR"}
    assert "loads" in assignment["details"]
    assert auth_client(org.s1).post(f"/api/v1/leads/{lead.pk}/route/").status_code in (403, 404)
    assert admin_api.post("/api/v1/leads/999999/route/").status_code == 404


def test_partner_answers_through_the_api(org, admin_api, auth_client):
    benelux = Territory.objects.create(name="Benelux", countries=["BE"])
    partner = Partner.objects.create(name="BeneSales", user=UserFactory(role=Role.SDR))
    partner.territories.add(benelux)
    RoutingRule.objects.create(name="Partners", position=1, conditions={}, partners_by_territory=True)
    RoutingRule.objects.create(name="FR", position=2, conditions={}, team=org.fr)
    leads = [LeadFactory(stage=Stage.MQL, country="BE") for _ in range(2)]
    for lead in leads:
        assert admin_api.post(f"/api/v1/leads/{lead.pk}/route/").json()["outcome"] == "partner"
    api = auth_client(partner.user)
    offers = api.get("/api/v1/partner-offers/?status=pending").json()
    assert len(offers) == 2 and offers[0]["partner_name"] == "BeneSales"
    first, second = sorted(o["id"] for o in offers)
    assert api.post(f"/api/v1/partner-offers/{first}/accept/").json()["status"] == "accepted"
    assert api.post(f"/api/v1/partner-offers/{first}/accept/").status_code == 409
    r = api.post(f"/api/v1/partner-offers/{second}/decline/", {"reason": "No capacity"}, format="json")
    assert r.json()["status"] == "declined"
    rerouted = PartnerOffer.objects.get(pk=second).lead
    assert rerouted.owner.team == org.fr
    assert Assignment.objects.filter(lead=rerouted).count() == 2
    assert auth_client(org.s1).post(f"/api/v1/partner-offers/{first}/accept/").status_code == 404
    assert PartnerOffer.objects.filter(status=OfferStatus.PENDING).count() == 0


def test_team_load_and_sla_metrics(org, auth_client):
    LeadFactory.create_batch(3, stage=Stage.MQL, owner=org.s1)
    LeadFactory(stage=Stage.WO, owner=org.s1)
    LeadFactory(stage=Stage.MQL, team=org.fr)
    manager = auth_client(org.manager)
    data = manager.get(f"/api/v1/teams/{org.fr.pk}/load/").json()
    s1 = next(s for s in data["sellers"] if s["id"] == org.s1.pk)
    assert s1["open_leads"] == 3 and s1["capacity"] == 10 and data["pool"] == 1
    assert manager.get(f"/api/v1/teams/{org.de.pk}/load/").status_code == 404
    assert manager.get("/api/v1/metrics/sla/").json() == {"teams": [], "sellers": []}


def test_users_routing_profile_is_writable(org, admin_api):
    r = admin_api.patch(
        f"/api/v1/users/{org.s1.pk}/",
        {"languages": ["FR", "en", "fr"], "skills": ["analytics"], "capacity": 25, "weight": 3, "active": False},
        format="json",
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["languages"] == ["fr", "en"] and body["skills"] == ["analytics"]
    assert (body["capacity"], body["weight"], body["active"]) == (25, 3, False)
    org.s1.refresh_from_db()
    assert org.s1.languages == ["fr", "en"] and not org.s1.routing_active


def test_schema_still_builds(admin_api):
    assert admin_api.get("/api/schema/").status_code == 200


def test_the_new_owner_reads_their_notifications(org, admin_api, auth_client):
    RoutingRule.objects.create(name="Named", position=1, conditions={}, user=org.s1)
    lead = LeadFactory(stage=Stage.MQL)
    admin_api.post(f"/api/v1/leads/{lead.pk}/route/")
    api = auth_client(org.s1)
    notes = api.get("/api/v1/notifications/?unread=1").json()
    assert [(n["kind"], n["lead_id"]) for n in notes] == [("lead_assigned", lead.pk)]
    assert api.post("/api/v1/notifications/read/", {}, format="json").json() == {"read": 1}
    assert api.get("/api/v1/notifications/?unread=1").json() == []
    assert auth_client(org.s2).get("/api/v1/notifications/").json() == []


def test_sla_compliance_per_team_and_seller(org, auth_client):
    import datetime as dt

    from django.utils import timezone

    from routing.models import SlaClock

    now = timezone.now()
    for owner, touched in ((org.s1, 10), (org.s1, None), (org.s2, 90), (org.s2, 20)):
        lead = LeadFactory(stage=Stage.MQL, owner=owner)
        SlaClock.objects.create(
            lead=lead,
            owner=owner,
            team=org.fr,
            started_at=now - dt.timedelta(hours=2),
            due_at=now - dt.timedelta(hours=1),
            first_touch_at=None if touched is None else now - dt.timedelta(hours=2) + dt.timedelta(minutes=touched),
        )
    data = auth_client(org.manager).get("/api/v1/metrics/sla/").json()
    assert data["teams"] == [{"team": org.fr.pk, "team_name": org.fr.name, "total": 4, "met": 2, "rate": 0.5}]
    by_seller = {r["username"]: (r["met"], r["total"]) for r in data["sellers"]}
    assert by_seller == {org.s1.username: (1, 2), org.s2.username: (1, 2)}
    assert auth_client(org.s1).get("/api/v1/metrics/sla/").status_code == 403

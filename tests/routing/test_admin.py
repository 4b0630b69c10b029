"""The routing admin checks a rule with the one rule (routing.rules) the API uses too."""

from __future__ import annotations

import json

import pytest

from accounts.models import Role
from routing.models import RoutingRule
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, org, settings):
    settings.SECURE_SSL_REDIRECT = False
    org.admin.is_staff = org.admin.is_superuser = True
    org.admin.save()
    client.force_login(org.admin)
    return client


def _rule(**extra):
    data = {"name": "Admin made", "position": "10", "conditions": "{}", "active": "on"}
    data.update({k: (json.dumps(v) if k == "conditions" else v) for k, v in extra.items()})
    return data


def test_admin_creates_a_valid_rule(org, admin_client):
    resp = admin_client.post("/admin/routing/routingrule/add/", _rule(team=org.fr.pk, conditions={"country": ["FR"]}))
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert RoutingRule.objects.get().team == org.fr


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"conditions": {"country": "FR"}}, "country: A non-empty list of strings."),
        ({"conditions": {"score_min": 9, "score_max": 1}}, "score_min: Greater than score_max."),
        ({"conditions": {"region": ["Atlantis"]}}, "region: Unknown territory: Atlantis."),
        ({"team": None}, "Give exactly one target"),
        ({"user": "s1"}, "Give exactly one target"),
        ({"team": None, "user": "marketing"}, "Leads can only be routed to active sellers or managers."),
        ({"team": None, "user": "gone"}, "Leads can only be routed to active sellers or managers."),
    ],
)
def test_admin_refuses_what_the_api_refuses(org, admin_client, auth_client, extra, message):
    gone = UserFactory(role=Role.SDR, team=org.fr, is_active=False)
    people = {"s1": org.s1.pk, "marketing": org.marketing.pk, "gone": gone.pk}
    fields = {"team": org.fr.pk, **extra}
    if "user" in fields:
        fields["user"] = people[fields["user"]]
    resp = admin_client.post("/admin/routing/routingrule/add/", _rule(**{k: v for k, v in fields.items() if v}))
    assert resp.status_code == 200 and message in resp.content.decode()
    body = {"name": "x", "conditions": fields.get("conditions", {}), **{k: fields.get(k) for k in ("team", "user")}}
    api = auth_client(org.admin).post("/api/v1/routing-rules/", body, format="json")
    assert api.status_code == 400 and any(message in m for msgs in api.json().values() for m in msgs), api.content
    assert not RoutingRule.objects.exists()

"""The manager page /team/: who may see it, what it shows, its forms, its query count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from leads.models import Assignment, Lead, Stage
from routing.models import RoutingRule, SlaClock
from tests.factories import LeadFactory, UserFactory

pytestmark = pytest.mark.django_db


def login(client, user):
    client.force_login(user)
    return client


def test_login_required_and_sellers_are_refused(client, org):
    r = client.get("/team/")
    assert r.status_code == 302 and "/login/" in r["Location"]
    assert login(client, org.s1).get("/team/").status_code == 403


def test_manager_sees_load_pool_and_breaches(client, org):
    LeadFactory.create_batch(4, stage=Stage.MQL, owner=org.s2)
    pooled = LeadFactory(stage=Stage.MQL, team=org.fr)
    late = LeadFactory(stage=Stage.MQL, owner=org.s1)
    SlaClock.objects.create(
        lead=late,
        owner=org.s1,
        team=org.fr,
        started_at=timezone.now() - dt.timedelta(hours=3),
        due_at=timezone.now() - dt.timedelta(hours=1),
    )
    html = login(client, org.manager).get("/team/").content.decode()
    assert f'data-seller="{org.s2.username}"' in html and 'data-load="4/10"' in html
    assert f'data-pool="{pooled.pk}"' in html and f'data-breach="{late.pk}"' in html
    assert 'href="/team/"' in html  # in the nav


def test_admin_switches_team(client, org):
    html = login(client, org.admin).get(f"/team/?team={org.de.pk}").content.decode()
    assert f'data-seller="{org.de_sdr.username}"' in html and org.s1.username not in html


def test_bulk_reassign_from_the_pool(client, org):
    leads = [LeadFactory(stage=Stage.MQL, team=org.fr) for _ in range(2)]
    c = login(client, org.manager)
    r = c.post("/team/reassign/", {"team": org.fr.pk, "lead": [x.pk for x in leads], "to": org.s1.pk})
    assert r.status_code == 302
    assert Lead.objects.filter(owner=org.s1).count() == 2
    assert Assignment.objects.filter(actor=org.manager, to_owner=org.s1).count() == 2
    RoutingRule.objects.create(name="FR", position=1, conditions={}, team=org.fr)
    c.post("/team/reassign/", {"team": org.fr.pk, "lead": [leads[0].pk], "to": ""})
    assert Lead.objects.get(pk=leads[0].pk).owner not in (None, org.s1)


def test_a_manager_cannot_touch_another_team(client, org):
    other = LeadFactory(stage=Stage.MQL, team=org.de)
    c = login(client, org.manager)
    c.post("/team/reassign/", {"team": org.de.pk, "lead": [other.pk], "to": org.s1.pk})
    assert Lead.objects.get(pk=other.pk).owner is None
    assert c.post(f"/team/sellers/{org.de_sdr.pk}/", {"team": org.fr.pk, "capacity": 1}).status_code == 404


def test_capacity_and_availability_are_editable(client, org):
    c = login(client, org.manager)
    r = c.post(f"/team/sellers/{org.s1.pk}/", {"team": org.fr.pk, "capacity": "7", "weight": "2"})
    assert r.status_code == 302
    org.s1.refresh_from_db()
    assert (org.s1.capacity, org.s1.weight, org.s1.routing_active) == (7, 2, False)  # unchecked box: away
    c.post(f"/team/sellers/{org.s1.pk}/", {"team": org.fr.pk, "capacity": "7", "weight": "2", "active": "on"})
    org.s1.refresh_from_db()
    assert org.s1.routing_active
    c.post(f"/team/sellers/{org.s1.pk}/", {"team": org.fr.pk, "capacity": "-3", "active": "on"})
    org.s1.refresh_from_db()
    assert org.s1.capacity == 7


def test_query_count_is_constant(client, org):
    c = login(client, org.manager)

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert c.get("/team/").status_code == 200
        return len(ctx.captured_queries)

    small = count()
    for _ in range(6):
        u = UserFactory(role=Role.SDR, team=org.fr)
        late = LeadFactory(stage=Stage.MQL, owner=u)
        SlaClock.objects.create(
            lead=late,
            owner=u,
            team=org.fr,
            started_at=timezone.now() - dt.timedelta(hours=3),
            due_at=timezone.now() - dt.timedelta(hours=1),
        )
        LeadFactory.create_batch(2, stage=Stage.MQL, team=org.fr)
    assert count() == small


def test_the_lead_page_shows_why_each_assignment_happened(client, org):
    from leadcrm.actors import Actor
    from routing import services

    RoutingRule.objects.create(name="French leads", position=1, conditions={"country": ["FR"]}, team=org.fr)
    lead = LeadFactory(stage=Stage.MQL, country="FR")
    services.lead_route(lead_id=lead.pk, actor=Actor.automation())
    html = login(client, org.admin).get(f"/leads/{lead.pk}/").content.decode()
    assert "data-why" in html
    assert "<dd data-why-rule>French leads</dd>" in html
    assert "country = FR" in html
    assert f"{org.s1.username} 0/10" in html  # the loads when the choice was made

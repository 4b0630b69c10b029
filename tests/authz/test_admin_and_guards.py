"""The Django admin for admins only, marketing's stage limits, partner-offer scope and the
last-admin guard (issue 14, "Authorisation")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Role, User
from leads.models import Lead, Stage
from routing.models import Partner, PartnerOffer

pytestmark = pytest.mark.django_db


# --- the admin ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketing", "manager", "sdr"])
def test_non_admins_cannot_use_the_admin_even_as_staff(client, people, mk_lead, role):
    user = {"marketing": people.marketing, "manager": people.manager_a, "sdr": people.sdr_a}[role]
    User.objects.filter(pk=user.pk).update(is_staff=True)
    lead = mk_lead(owner=people.sdr_b)
    client.force_login(User.objects.get(pk=user.pk))
    for url in ("/admin/", f"/admin/leads/lead/{lead.pk}/change/"):
        r = client.get(url)
        assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
    r = client.post(f"/admin/leads/lead/{lead.pk}/change/", {"owner": people.sdr_a.pk, "team": people.team_a.pk})
    assert r.status_code == 302
    assert Lead.objects.get(pk=lead.pk).owner_id == people.sdr_b.pk


def test_admins_use_the_admin_and_inactive_ones_do_not(client, people):
    admin = User.objects.get(pk=people.admin.pk)
    admin.is_superuser = admin.is_staff = True
    admin.save()
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200
    User.objects.filter(pk=admin.pk).update(is_active=False)
    assert client.get("/admin/").status_code == 302


def test_pages_link_the_admin_for_admins_only(client, people):
    for user, shown in ((people.marketing, False), (people.manager_a, False), (people.sdr_a, False)):
        client.force_login(user)
        assert ('href="/admin/"' in client.get("/leads/").content.decode()) is shown
    client.force_login(people.admin)
    assert 'href="/admin/"' in client.get("/leads/").content.decode()


# --- marketing's stages through the API -----------------------------------------------------

MARKETING_MOVES = [
    (Stage.MCL, Stage.MQL, True),
    (Stage.MCL, Stage.DISQUALIFIED, True),
    (Stage.MQL, Stage.DISQUALIFIED, True),
    (Stage.RECYCLED, Stage.MQL, True),
    (Stage.RECYCLED, Stage.DISQUALIFIED, True),
    (Stage.MQL, Stage.SQL, False),
    (Stage.MCL, Stage.SQL, False),
    (Stage.SQL, Stage.SAL, False),
    (Stage.SQL, Stage.RECYCLED, False),
    (Stage.SQL, Stage.DISQUALIFIED, False),
    (Stage.SAL, Stage.CO, False),
    (Stage.CO, Stage.WO, False),
    (Stage.CO, Stage.LOST, False),
]


@pytest.mark.parametrize(("src", "dst", "allowed"), MARKETING_MOVES)
def test_marketing_moves_only_within_marketing_stages(people, mk_lead, auth_client, src, dst, allowed):
    lead = mk_lead(stage=src, owner=people.sdr_b, score=100)
    r = auth_client(people.marketing).post(
        f"/api/v1/leads/{lead.pk}/transition/", {"to": dst, "reason": "why", "override": True}, format="json"
    )
    assert (r.status_code == 200) is allowed, r.content
    if not allowed:
        assert r.status_code == 403
        assert Lead.objects.get(pk=lead.pk).stage == src


def test_marketing_never_changes_owners_or_does_sales_work(people, mk_lead, auth_client):
    lead = mk_lead(stage=Stage.MQL, owner=people.sdr_b)
    api = auth_client(people.marketing)
    r = api.patch(f"/api/v1/leads/{lead.pk}/", {"owner": people.sdr_a.pk, "team": people.team_a.pk}, format="json")
    assert r.status_code == 400 and "owner" in r.json()
    assert Lead.objects.get(pk=lead.pk).owner_id == people.sdr_b.pk
    assert api.post(f"/api/v1/leads/{lead.pk}/route/", {}, format="json").status_code == 403
    assert api.put(f"/api/v1/leads/{lead.pk}/bant/", {"budget": "x"}, format="json").status_code == 403
    r = api.post("/api/v1/leads/bulk/", {"leads": [{"email": lead.email, "owner": people.sdr_a.pk}]}, format="json")
    assert r.json()["results"][0]["status"] == "error"
    assert Lead.objects.get(pk=lead.pk).owner_id == people.sdr_b.pk


# --- partner offers -------------------------------------------------------------------------


@pytest.fixture
def offers(people, mk_lead, make_user):
    """Partner P (login p_user) holds an offer on a lead of team B's pool history; partner Q
    one on a lead owned by a team A seller's former lead."""
    p_user, q_user = make_user("sdr"), make_user("sdr")
    p = Partner.objects.create(name="P", user=p_user)
    q = Partner.objects.create(name="Q", user=q_user)
    now = timezone.now()
    lead_p = mk_lead("p-lead@x.example", owner=p_user, team=people.team_b)
    lead_q = mk_lead("q-lead@x.example", owner=q_user, team=people.team_a)
    deadline = now + dt.timedelta(days=1)
    op = PartnerOffer.objects.create(lead=lead_p, partner=p, offered_at=now, deadline=deadline)
    oq = PartnerOffer.objects.create(lead=lead_q, partner=q, offered_at=now, deadline=deadline)
    return {"p_user": p_user, "q_user": q_user, "op": op, "oq": oq}


def listed(client) -> set[str]:
    r = client.get("/api/v1/partner-offers/")
    assert r.status_code == 200
    return {o["lead_email"] for o in r.json()}


def test_partner_offers_are_scoped(people, offers, auth_client):
    assert listed(auth_client(offers["p_user"])) == {"p-lead@x.example"}
    assert listed(auth_client(offers["q_user"])) == {"q-lead@x.example"}
    assert listed(auth_client(people.manager_a)) == {"q-lead@x.example"}
    assert listed(auth_client(people.manager_b)) == {"p-lead@x.example"}
    assert listed(auth_client(people.sdr_a)) == set()
    assert listed(auth_client(people.admin)) == {"p-lead@x.example", "q-lead@x.example"}
    assert listed(auth_client(people.marketing)) == {"p-lead@x.example", "q-lead@x.example"}


def test_partner_answers_only_their_offers(people, offers, auth_client):
    op, oq = offers["op"], offers["oq"]
    assert auth_client(offers["p_user"]).post(f"/api/v1/partner-offers/{oq.pk}/accept/").status_code == 404
    assert auth_client(offers["p_user"]).post(f"/api/v1/partner-offers/{oq.pk}/decline/").status_code == 404
    assert auth_client(people.manager_a).post(f"/api/v1/partner-offers/{op.pk}/accept/").status_code == 404
    assert auth_client(people.sdr_a).post(f"/api/v1/partner-offers/{op.pk}/accept/").status_code == 404
    assert PartnerOffer.objects.get(pk=oq.pk).status == "pending"
    assert auth_client(offers["p_user"]).post(f"/api/v1/partner-offers/{op.pk}/accept/").status_code == 200


# --- the last active admin ------------------------------------------------------------------


@pytest.mark.parametrize("change", [{"role": Role.MARKETING}, {"is_active": False}])
def test_the_last_admin_cannot_be_demoted_or_deactivated(people, auth_client, change):
    api = auth_client(people.admin)
    r = api.patch(f"/api/v1/users/{people.admin.pk}/", change, format="json")
    assert r.status_code == 409 and r.json()["guard"] == "last_admin"
    admin = User.objects.get(pk=people.admin.pk)
    assert admin.role == Role.ADMIN and admin.is_active


def test_an_admin_can_step_down_once_another_admin_exists(people, auth_client, make_user):
    other = make_user("admin")
    api = auth_client(people.admin)
    assert api.patch(f"/api/v1/users/{people.admin.pk}/", {"role": Role.MARKETING}, format="json").status_code == 200
    r = auth_client(other).patch(f"/api/v1/users/{other.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 409 and r.json()["guard"] == "last_admin"


def test_an_inactive_admin_does_not_count(people, auth_client, make_user):
    make_user("admin", is_active=False)
    r = auth_client(people.admin).patch(f"/api/v1/users/{people.admin.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 409


def _admin_client(client, people):
    admin = User.objects.get(pk=people.admin.pk)
    admin.is_superuser = admin.is_staff = True
    admin.save()
    client.force_login(admin)
    return admin


def test_the_admin_change_form_refuses_to_demote_the_last_admin(client, people):
    admin = _admin_client(client, people)
    page = client.get(f"/admin/accounts/user/{admin.pk}/change/")
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and not isinstance(v, list | dict)}
    data.update(
        username=admin.username,
        role=Role.ADMIN,
        is_superuser="",
        is_active="",
        languages="[]",
        skills="[]",
        capacity=50,
        weight=1,
        date_joined_0=admin.date_joined.date(),
        date_joined_1="00:00:00",
    )
    data.pop("password", None)
    data.pop("last_login", None)
    r = client.post(f"/admin/accounts/user/{admin.pk}/change/", data)
    assert r.status_code == 200, "the form is shown again with the error"
    assert "last active admin" in r.content.decode()
    assert User.objects.get(pk=admin.pk).is_active


def test_the_admin_cannot_delete_the_last_admin(client, people):
    admin = _admin_client(client, people)
    client.post(f"/admin/accounts/user/{admin.pk}/delete/", {"post": "yes"})
    assert User.objects.filter(pk=admin.pk, is_active=True).exists()

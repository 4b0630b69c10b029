"""Who owns a lead, written once in services (issue 15): a batch assignment with the
one-lead call as a batch of one, the pool claim checked under the row lock, a seller's own
capture given to that seller, and the bulk API's owners held to the one ownership rule."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import Conflict, ServiceError
from leads import services
from leads.models import Assignment, Lead
from tests.factories import LeadFactory, TeamFactory, UserFactory
from tests.leads.test_services import needs_postgres, race


@pytest.mark.django_db
def test_a_batch_assignment_writes_one_row_each_and_skips_leads_already_there():
    team = TeamFactory(name="Batch")
    seller = UserFactory(role=Role.SDR, team=team)
    boss = UserFactory(role=Role.MANAGER, team=team)
    leads = [LeadFactory(team=team) for _ in range(3)]
    leads[0].owner = seller
    leads[0].save(update_fields=["owner"])
    actor = Actor(boss, ActorType.USER)
    changed = services.leads_assign(lead_ids=[lead.pk for lead in leads], owner=seller, actor=actor, reason="x")
    assert sorted(changed) == sorted(lead.pk for lead in leads[1:])
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("owner", flat=True)) == {seller.pk}
    assert Assignment.objects.filter(lead__in=leads).count() == 2


@pytest.mark.django_db
def test_only_active_sellers_own_leads_in_a_batch_too():
    lead = LeadFactory()
    for owner in (UserFactory(role=Role.MARKETING), UserFactory(role=Role.SDR, is_active=False)):
        with pytest.raises(ServiceError):
            services.leads_assign(lead_ids=[lead.pk], owner=owner, actor=Actor.automation())
    assert Lead.objects.get(pk=lead.pk).owner_id is None


@pytest.mark.django_db
def test_a_claim_of_an_owned_lead_is_refused_by_the_service():
    team = TeamFactory(name="Claims")
    first, second = UserFactory(role=Role.SDR, team=team), UserFactory(role=Role.SDR, team=team)
    lead = LeadFactory(team=team, owner=first)
    with pytest.raises(Conflict):
        services.lead_assign(lead_id=lead.pk, owner=second, actor=Actor(second, ActorType.USER), only_unowned=True)
    assert Lead.objects.get(pk=lead.pk).owner_id == first.pk


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_two_sellers_claiming_one_pool_lead_at_once_one_gets_it(round_):
    team = TeamFactory(name=f"Race {round_}")
    sellers = [UserFactory(role=Role.SDR, team=team) for _ in range(2)]
    lead = LeadFactory(team=team)

    def claim(user):
        return services.lead_assign(
            lead_id=lead.pk, owner=user, actor=Actor(user, ActorType.USER), reason="Claimed", only_unowned=True
        )

    results = race(*[lambda u=u: claim(u) for u in sellers])
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(refused) == 1, results
    winner = next(r for r in results if not isinstance(r, Exception))
    assert Lead.objects.get(pk=lead.pk).owner_id == winner.owner_id
    assert Assignment.objects.filter(lead=lead).count() == 1


@pytest.mark.django_db
def test_the_claim_page_answers_the_refusal_of_an_owned_lead(client):
    team = TeamFactory(name="Page claims")
    first, second = UserFactory(role=Role.SDR, team=team), UserFactory(role=Role.SDR, team=team)
    lead = LeadFactory(team=team)
    services.lead_assign(lead_id=lead.pk, owner=first, actor=Actor.automation())
    client.force_login(second)
    response = client.post(reverse("lead-claim", args=[lead.pk]), follow=False)
    assert response.status_code in (302, 404)  # not theirs to see any more, or back with the refusal
    assert Lead.objects.get(pk=lead.pk).owner_id == first.pk


@pytest.mark.django_db
def test_a_seller_who_captures_a_lead_works_it_and_marketing_does_not():
    team = TeamFactory(name="Captures")
    seller = UserFactory(role=Role.SDR, team=team)
    marketer = UserFactory(role=Role.MARKETING)
    mine, created = services.lead_capture(data={"email": "card@example.com"}, actor=Actor(seller, ActorType.USER))
    assert created and mine.owner_id == seller.pk
    assert Assignment.objects.get(lead=mine).reason == "Captured by its seller"
    theirs, _ = services.lead_capture(data={"email": "form@example.com"}, actor=Actor(marketer, ActorType.API))
    assert theirs.owner_id is None


@pytest.mark.django_db
def test_the_bulk_capture_holds_owners_to_the_ownership_rule():
    admin = UserFactory(role=Role.ADMIN)
    seller = UserFactory(role=Role.SDR)
    marketer = UserFactory(role=Role.MARKETING)
    rows = [
        {"email": "a@example.com", "owner": seller.pk, "stage": "MQL"},
        {"email": "b@example.com", "owner": marketer.pk, "stage": "MQL"},
        {"email": "c@example.com", "owner": 999_999, "stage": "MQL"},
        {"email": "not an e-mail"},
    ]
    results = services.leads_bulk_capture(rows=rows, actor=Actor(admin, ActorType.API), history=True)
    assert [r.status for r in results] == ["created", "error", "error", "error"]
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert "owner" in results[1].errors and "owner" in results[2].errors and "email" in results[3].errors
    assert Lead.objects.get(email="a@example.com").owner_id == seller.pk

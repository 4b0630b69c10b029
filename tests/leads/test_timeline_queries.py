"""The lead page and the lead's history API cost the same SQL queries whether the lead has 5
or 50 audited edits (by as many different people), touchpoints and assignments: actors are
joined, not fetched per row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from leadcrm import audit
from leadcrm.actors import Actor, ActorType
from leads import services
from leads.models import Touchpoint, TouchpointType

pytestmark = pytest.mark.django_db


@pytest.fixture
def crowd(people, make_user):
    """Ten people of team A who edit and log activity on leads."""
    return [people.sdr_a, people.sdr_a2, people.manager_a] + [make_user("sdr", people.team_a) for _ in range(7)]


def _busy_lead(mk_lead, people, crowd, n: int):
    """A lead of sdr_a with n audited edits, n touchpoints (various authors) and n // 5
    assignments (various owners), as services and imports write them."""
    lead = mk_lead(owner=people.sdr_a, first_name="Ann")
    now = timezone.now()
    for i in range(min(n, 3)):  # a few real edits through the service...
        services.lead_update(lead_id=lead.pk, data={"city": f"City {i}"}, actor=Actor(crowd[i], ActorType.USER))
    audit.record_many(  # ...and the rest as a batch writes them
        audit.entry(
            actor=Actor(crowd[i % len(crowd)], ActorType.API if i % 2 else ActorType.USER),
            action="lead.update" if i % 3 else "lead.bant",
            target=lead,
            changes={"job_title": [f"Title {i}", f"Title {i + 1}"]},
            details={"reason": f"Call {i}"},
            at=now,
        )
        for i in range(n - min(n, 3))
    )
    Touchpoint.objects.bulk_create(
        [
            Touchpoint(
                lead=lead,
                type=TouchpointType.NOTE if i % 2 else TouchpointType.PAGE_VIEW,
                occurred_at=now,
                author=crowd[i % len(crowd)],
                url="https://www.example.com/pricing",
                properties={"note": f"note {i}"} if i % 2 else {},
            )
            for i in range(n)
        ]
    )
    sellers = [u for u in crowd if u.role == "sdr"]
    for i in range(n // 5):
        services.lead_assign(
            lead_id=lead.pk, owner=sellers[(i + 1) % len(sellers)], actor=Actor(crowd[-1 - i % 3], ActorType.USER)
        )
    return lead


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    ("label", "url"), [("lead page", "/leads/{pk}/"), ("history API", "/api/v1/leads/{pk}/history/")]
)
def test_the_lead_timeline_costs_the_same_queries_with_5_or_50_rows(people, mk_lead, crowd, label, url):
    few_lead = _busy_lead(mk_lead, people, crowd, 5)
    many_lead = _busy_lead(mk_lead, people, crowd, 50)
    client = Client()
    client.force_login(people.admin)
    _queries(client, url.format(pk=few_lead.pk))  # warm: session, content types, caches
    few = _queries(client, url.format(pk=few_lead.pk))
    many = _queries(client, url.format(pk=many_lead.pk))
    page = client.get(url.format(pk=many_lead.pk))
    if label == "lead page":
        html = page.content.decode()
        assert html.count('data-kind="audit"') >= 30 and html.count('data-kind="touchpoint"') >= 30
        assert crowd[5].username in html
    else:
        kinds = [item["kind"] for item in page.json()]
        assert kinds.count("audit") == 50 and kinds.count("touchpoint") == 50 and kinds.count("assignment") == 10
    print(f"{label}: {few} queries with 5 rows of each kind, {many} with 50")
    assert many == few

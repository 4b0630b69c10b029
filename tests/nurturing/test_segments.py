"""Segments (issue 16): saved filters whose membership the domain events keep, static lists,
entered/left history, who sees which members, and the REST API of SPEC "Nurturing"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leadcrm.models import AuditEntry
from leads import services as lead_services
from leads.models import Touchpoint
from nurturing import services
from nurturing.models import Segment, SegmentChange, SegmentMembership
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(make_user):
    return make_user("marketing")


def members(segment: Segment) -> set[str]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("lead__email", flat=True))


def test_a_dynamic_segment_holds_what_its_filter_means(marketing):
    LeadFactory(email="a@x.example", grade="A", country="FR", properties={"plan": "pro"})
    LeadFactory(email="b@x.example", grade="B", country="FR", properties={"plan": "pro"})
    LeadFactory(email="c@x.example", grade="A", country="DE", properties={"plan": "free"})
    segment = services.segment_create(
        actor=Actor(marketing),
        name="French A pros",
        filter={"grade": ["A"], "country": "France", "properties": {"plan": "pro"}},
    )
    assert members(segment) == {"a@x.example"}
    assert segment.member_count == 1 and segment.evaluated_at is not None
    assert AuditEntry.objects.filter(action="nurturing.segment.create", target_id=str(segment.pk)).exists()


def test_events_in_a_window_count_and_leads_leave_when_the_window_passes(marketing):
    now = timezone.now()
    hot, cold = LeadFactory(email="hot@x.example"), LeadFactory(email="cold@x.example")
    for days_ago in (1, 2):
        Touchpoint.objects.create(lead=hot, type="pricing_view", occurred_at=now - dt.timedelta(days=days_ago))
    Touchpoint.objects.create(lead=cold, type="pricing_view", occurred_at=now - dt.timedelta(days=20))
    segment = services.segment_create(
        actor=Actor(marketing),
        name="Pricing twice this week",
        filter={"events": [{"type": "pricing_view", "within_days": 7, "min_count": 2}]},
    )
    assert members(segment) == {"hot@x.example"}
    services.segments_windows_refresh(now=now + dt.timedelta(days=10))
    assert members(segment) == set()
    left = SegmentChange.objects.get(segment=segment, lead=hot, kind="left")
    assert left.cause == "time_window"


def test_a_lead_that_changes_enters_and_leaves_on_the_events(marketing, django_capture_on_commit_callbacks):
    lead = LeadFactory(email="grow@x.example", industry="Retail")
    segment = services.segment_create(actor=Actor(marketing), name="Software", filter={"q": "grow", "stage": ["MCL"]})
    assert members(segment) == {"grow@x.example"}
    # A move out of MCL is a domain event: its reaction re-checks the lead.
    with django_capture_on_commit_callbacks(execute=True):
        lead_services.lead_disqualify(lead_id=lead.pk, actor=Actor(marketing), reason="not a fit")
    assert members(segment) == set()
    kinds = list(SegmentChange.objects.filter(segment=segment).order_by("id").values_list("kind", "cause"))
    assert kinds == [("entered", "segment.created"), ("left", "lead.stage_changed")]


def test_a_captured_lead_enters_after_it_is_scored(marketing, auth_client, django_capture_on_commit_callbacks):
    segment = services.segment_create(actor=Actor(marketing), name="Germany", filter={"country": "DE"})
    with django_capture_on_commit_callbacks(execute=True):
        answer = auth_client(marketing).post(
            "/api/v1/leads/", {"email": "neu@x.example", "country": "Germany"}, format="json"
        )
    assert answer.status_code == 201
    assert members(segment) == {"neu@x.example"}
    assert Segment.objects.get(pk=segment.pk).member_count == 1


def test_segments_of_segments_are_checked_in_order(marketing):
    LeadFactory(email="a@x.example", grade="A", country="FR")
    LeadFactory(email="b@x.example", grade="A", country="DE")
    a_grade = services.segment_create(actor=Actor(marketing), name="A", filter={"grade": ["A"]})
    french_a = services.segment_create(
        actor=Actor(marketing), name="French A", filter={"segments": [a_grade.pk], "country": "FR"}
    )
    assert members(french_a) == {"a@x.example"}
    late = LeadFactory(email="late@x.example", grade="A", country="FR")
    services.segments_refresh(lead_ids=[late.pk], cause="test")
    assert "late@x.example" in members(a_grade) and "late@x.example" in members(french_a)
    with pytest.raises(ServiceError) as err:
        services.segment_update(actor=Actor(marketing), segment_id=a_grade.pk, filter={"segments": [french_a.pk]})
    assert "filter.segments" in err.value.errors
    with pytest.raises(Conflict):
        services.segment_delete(actor=Actor(marketing), segment_id=a_grade.pk)


def test_static_lists_take_members_by_hand(marketing):
    a, b = LeadFactory(), LeadFactory()
    vip = services.segment_create(actor=Actor(marketing), name="VIP", kind="static")
    vip = services.segment_members_change(actor=Actor(marketing), segment_id=vip.pk, add=[a.pk, b.pk])
    assert vip.member_count == 2
    vip = services.segment_members_change(actor=Actor(marketing), segment_id=vip.pk, remove=[a.pk])
    assert members(vip) == {b.email} and vip.member_count == 1
    # Events never touch a static list.
    services.segments_refresh(lead_ids=[a.pk, b.pk])
    assert members(vip) == {b.email}
    with pytest.raises(ServiceError):
        services.segment_members_change(actor=Actor(marketing), segment_id=vip.pk, add=[999_999])


def test_editing_the_filter_re_evaluates(marketing):
    LeadFactory(email="fr@x.example", country="FR")
    LeadFactory(email="de@x.example", country="DE")
    segment = services.segment_create(actor=Actor(marketing), name="Country", filter={"country": "FR"})
    segment = services.segment_update(actor=Actor(marketing), segment_id=segment.pk, filter={"country": "DE"})
    assert members(segment) == {"de@x.example"} and segment.member_count == 1
    entry = AuditEntry.objects.get(action="nurturing.segment.update", target_id=str(segment.pk))
    assert entry.changes["filter"] == [{"country": "FR"}, {"country": "DE"}]


# --- the API ---------------------------------------------------------------------------------


def test_the_api_answers_field_errors(marketing, auth_client):
    client = auth_client(marketing)
    bad = client.post(
        "/api/v1/segments/", {"name": "Bad", "filter": {"owner": "me", "country": "Atlantis"}}, format="json"
    )
    assert bad.status_code == 400
    assert {"filter.owner"} <= set(bad.json())
    nul = client.post("/api/v1/segments/", {"name": "Nul", "filter": {"properties": {"a": "b\x00"}}}, format="json")
    assert nul.status_code == 400 and "NUL" in str(nul.json())
    bad_country = client.post("/api/v1/segments/", {"name": "Bad", "filter": {"country": "Atlantis"}}, format="json")
    assert bad_country.status_code == 400 and "filter.country" in bad_country.json()


def test_the_api_creates_counts_and_pages_members(marketing, auth_client):
    for n in range(3):
        LeadFactory(email=f"m{n}@x.example", source="webinar")
    LeadFactory(source="seo")
    client = auth_client(marketing)
    assert client.post("/api/v1/segments/count/", {"filter": {"source": "webinar"}}, format="json").json() == {
        "count": 3
    }
    made = client.post("/api/v1/segments/", {"name": "Webinar", "filter": {"source": "webinar"}}, format="json")
    assert made.status_code == 201 and made.json()["count"] == 3
    page = client.get(f"/api/v1/segments/{made.json()['id']}/members/?page_size=2").json()
    assert len(page["results"]) == 2 and page["next"]
    changes = client.get(f"/api/v1/segments/{made.json()['id']}/changes/").json()
    assert {c["kind"] for c in changes["results"]} == {"entered"}


def test_a_nul_character_is_a_field_error_on_every_path(marketing):
    """PostgreSQL's jsonb refuses U+0000: the service refuses it first (the pages call it too)."""
    with pytest.raises(ServiceError) as err:
        services.segment_create(actor=Actor(marketing), name="Nul", filter={"properties": {"a": "b\x00"}})
    assert "filter.properties" in err.value.errors


def test_a_seller_reads_only_the_members_it_may_see(marketing, make_user, auth_client):
    sdr = make_user("sdr", team="A")
    mine = LeadFactory(owner=sdr, source="fair")
    LeadFactory(owner=make_user("sdr", team="B"), source="fair")
    segment = services.segment_create(actor=Actor(marketing), name="Fair", filter={"source": "fair"})
    client = auth_client(sdr)
    assert client.get(f"/api/v1/segments/{segment.pk}/").json()["count"] == 1
    assert [m["id"] for m in client.get(f"/api/v1/segments/{segment.pk}/members/").json()["results"]] == [mine.pk]
    assert client.patch(f"/api/v1/segments/{segment.pk}/", {"name": "Mine"}, format="json").status_code == 403
    assert client.get("/api/v1/segments/999999/").status_code == 404


def test_a_static_list_api_refuses_leads_the_caller_cannot_see(marketing, make_user, auth_client):
    vip = services.segment_create(actor=Actor(marketing), name="VIP", kind="static")
    lead = LeadFactory()
    client = auth_client(marketing)
    ok = client.post(f"/api/v1/segments/{vip.pk}/members/", {"add": [lead.pk]}, format="json")
    assert ok.status_code == 200 and ok.json()["count"] == 1
    assert client.post(f"/api/v1/segments/{vip.pk}/members/", {"add": [10**9]}, format="json").status_code == 400
    dynamic = services.segment_create(actor=Actor(marketing), name="All", filter={})
    assert client.post(f"/api/v1/segments/{dynamic.pk}/members/", {"add": [lead.pk]}, format="json").status_code == 409

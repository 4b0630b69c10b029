"""Marketing's segment pages: build with a live count, read members, save the leads list's
filters as a segment; sellers are kept out."""

from __future__ import annotations

import pytest
from django.urls import reverse

from nurturing.models import Segment, SegmentMembership
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(make_user, client):
    client.force_login(make_user("marketing"))
    return client


def test_the_builder_counts_live_and_creates(marketer):
    LeadFactory(source="webinar", grade="A")
    LeadFactory(source="webinar", grade="C")
    count = marketer.post(reverse("segment-count-preview"), {"kind": "dynamic", "source": "webinar", "grade": ["A"]})
    assert count.status_code == 200 and 'data-count="1"' in count.content.decode()
    bad = marketer.post(reverse("segment-count-preview"), {"kind": "dynamic", "country": "Atlantis"})
    assert "country" in bad.content.decode() and "data-count" not in bad.content.decode()
    made = marketer.post(
        reverse("segments"), {"name": "Webinar A", "kind": "dynamic", "source": "webinar", "grade": ["A"]}
    )
    segment = Segment.objects.get(name="Webinar A")
    assert made.status_code == 302 and made["Location"] == reverse("segment-detail", args=[segment.pk])
    page = marketer.get(reverse("segment-detail", args=[segment.pk])).content.decode()
    assert "1 member" in page


def test_a_bad_filter_is_a_message_not_a_500(marketer):
    answer = marketer.post(
        reverse("segments"), {"name": "Nowhere", "kind": "dynamic", "country": "Atlantis"}, follow=True
    )
    assert answer.status_code == 200
    assert "filter.country" in answer.content.decode()
    assert not Segment.objects.filter(name="Nowhere").exists()


def test_the_leads_list_filters_become_a_segment(marketer):
    LeadFactory(source="fair", stage="MQL")
    LeadFactory(source="fair", stage="MCL")
    listing = marketer.get(reverse("leads-list") + "?source=fair&stage=MQL").content.decode()
    assert "Save as segment" in listing
    made = marketer.post(reverse("segment-from-list"), {"query": "source=fair&stage=MQL", "name": "Fair MQLs"})
    segment = Segment.objects.get(name="Fair MQLs")
    assert made.status_code == 302
    assert segment.filter == {"source": "fair", "stage": ["MQL"]}
    assert SegmentMembership.objects.filter(segment=segment).count() == 1


def test_custom_field_filters_of_the_list_are_kept_in_the_segment(marketer):
    LeadFactory(properties={"plan": "pro", "seats": 40})
    LeadFactory(properties={"plan": "free", "seats": 40})
    LeadFactory(properties={"plan": "pro", "seats": 3})
    query = "properties.plan=pro&properties.seats=40"
    shown = len(marketer.get(reverse("leads-list") + "?" + query).context["rows"])
    marketer.post(reverse("segment-from-list"), {"query": query, "name": "Pro 40"})
    segment = Segment.objects.get(name="Pro 40")
    assert segment.filter == {"properties": {"plan": ["pro"], "seats": ["40"]}}
    # The text "40" of the query string finds the number 40, in the list and in the segment.
    assert shown == 1
    assert SegmentMembership.objects.filter(segment=segment).count() == 1


def test_a_static_list_takes_members_on_its_page(marketer):
    lead = LeadFactory()
    marketer.post(reverse("segments"), {"name": "VIP", "kind": "static"})
    segment = Segment.objects.get(name="VIP")
    marketer.post(reverse("segment-detail", args=[segment.pk]), {"action": "add", "leads": str(lead.pk)})
    assert list(SegmentMembership.objects.filter(segment=segment).values_list("lead_id", flat=True)) == [lead.pk]


def test_sellers_do_not_reach_the_pages(make_user, client):
    client.force_login(make_user("sdr", team="A"))
    assert client.get(reverse("segments")).status_code == 403


def test_the_segments_page_reads_in_a_fixed_number_of_queries(marketer, django_assert_max_num_queries):
    for n in range(5):
        Segment.objects.create(name=f"S{n}", kind="static", member_count=n)
    with django_assert_max_num_queries(12):
        assert marketer.get(reverse("segments")).status_code == 200

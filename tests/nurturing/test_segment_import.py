"""Static lists filled from a CSV of e-mail addresses: on the segment's page and in the
service, with the caller's visibility, and never a 500 whatever the file holds."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from nurturing import services
from nurturing.models import Segment, SegmentMembership
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def _members(segment: Segment) -> set[int]:
    return set(SegmentMembership.objects.filter(segment=segment).values_list("lead_id", flat=True))


def test_a_csv_with_an_email_column_fills_the_list(make_user, client):
    marketing = make_user("marketing")
    ann, bob = LeadFactory(email="ann@x.example"), LeadFactory(email="bob@x.example")
    segment = Segment.objects.create(name="Fair", kind="static")
    services.segment_members_change(actor=Actor(marketing), segment_id=segment.pk, add=[bob.pk])
    client.force_login(marketing)
    data = "Name;E-mail\nAnn;ANN@x.example\nBob;bob@x.example\nZoe;zoe@nowhere.example\n".encode("cp1252")
    answer = client.post(
        reverse("segment-detail", args=[segment.pk]),
        {"action": "import", "file": SimpleUploadedFile("list.csv", data, content_type="text/csv")},
        follow=True,
    )
    page = answer.content.decode()
    assert answer.status_code == 200
    assert "1 added, 1 already in the list, 1 not found" in page and "zoe@nowhere.example" in page
    assert _members(segment) == {ann.pk, bob.pk}


def test_a_file_of_bare_addresses_is_one_address_per_line(make_user):
    ann = LeadFactory(email="ann@x.example")
    segment = Segment.objects.create(name="Bare", kind="static")
    result = services.segment_members_import(
        actor=Actor(make_user("marketing")), segment_id=segment.pk, data=b"ann@x.example\nnone@x.example\n"
    )
    assert (result.added, result.already, result.not_found) == (1, 0, ["none@x.example"])
    assert _members(segment) == {ann.pk}


def test_leads_the_caller_cannot_see_are_not_found_like_absent_ones(make_user):
    sdr = make_user("sdr", team="A")
    mine = LeadFactory(email="mine@x.example", owner=sdr)
    LeadFactory(email="other@x.example", owner=make_user("sdr", team="B"))
    segment = Segment.objects.create(name="SDR list", kind="static")
    result = services.segment_members_import(
        actor=Actor(sdr), segment_id=segment.pk, data=b"email\nmine@x.example\nother@x.example\nghost@x.example\n"
    )
    assert result.added == 1 and result.not_found == ["other@x.example", "ghost@x.example"]
    assert _members(segment) == {mine.pk}


def test_a_dynamic_segment_and_a_file_without_email_column_are_refused(make_user, client):
    marketing = make_user("marketing")
    dynamic = Segment.objects.create(name="Dyn", kind="dynamic", filter={})
    static = Segment.objects.create(name="Static", kind="static")
    client.force_login(marketing)
    answer = client.post(
        reverse("segment-detail", args=[dynamic.pk]),
        {"action": "import", "file": SimpleUploadedFile("l.csv", b"email\na@x.example\n")},
        follow=True,
    )
    assert answer.status_code == 200 and "dynamic segment" in answer.content.decode()
    with pytest.raises(ServiceError) as err:
        services.segment_members_import(actor=Actor(marketing), segment_id=static.pk, data=b"name,company\nA,B\n")
    assert "file" in err.value.errors


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_file_is_members_or_a_file_error(make_user, data):
    marketing = make_user("marketing", username=None)
    segment, _ = Segment.objects.get_or_create(name="Fuzz", kind="static")
    try:
        result = services.segment_members_import(actor=Actor(marketing), segment_id=segment.pk, data=data)
    except ServiceError as exc:
        assert set(exc.errors) == {"file"}
    else:
        assert result.added == 0

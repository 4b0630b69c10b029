"""Sequence pages: the list, the builder (a draft edited step by step, saved as a version),
the report, enrolling a segment; a lead's Sequences panel, the queue's quick Enroll and the
leads list's bulk action; sellers kept out of the builder; fixed numbers of queries."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from leadcrm.actors import Actor
from nurturing import services
from nurturing.models import EmailTemplate, Enrollment, Segment, SegmentMembership, Sequence, StepRun
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def marketer(people, client):
    client.force_login(people.marketing)
    return client


@pytest.fixture
def templates():
    return [EmailTemplate.objects.create(name=f"Mail {n}", subject="Hi", text="Hello") for n in range(2)]


def new_sequence(people, steps=None, **kw) -> Sequence:
    kw.setdefault("name", "Nurture")
    return services.sequence_create(actor=Actor(people.marketing), steps=steps or [], **kw)


def op(client, sequence, **data):
    return client.post(reverse("sequence-steps", args=[sequence.pk]), data, **HX)


def test_create_from_the_list_then_build_and_save_a_version(people, marketer, templates):
    made = marketer.post(reverse("sequences"), {"name": "Onboarding"})
    sequence = Sequence.objects.get(name="Onboarding")
    assert made.status_code == 302 and made["Location"] == reverse("sequence-detail", args=[sequence.pk])
    assert not sequence.active and sequence.current_version.steps == []

    page = op(marketer, sequence, op="add", container="", type="email")
    assert page.status_code == 200 and 'id="builder"' in page.content.decode()
    op(marketer, sequence, op="add", container="", type="wait")
    op(marketer, sequence, op="edit", path="1", **{"s1-days": "3", "s1-business_days": "on"})
    op(marketer, sequence, op="add", container="", type="split")
    op(marketer, sequence, op="edit", path="2", **{"s2-weight_0": "70", "s2-name_0": "Short", "s2-weight_1": "30"})
    op(marketer, sequence, op="add", container="2.variants.0.steps", type="email")
    op(marketer, sequence, op="add", container="2.variants.1.steps", type="email")
    op(
        marketer,
        sequence,
        op="edit",
        path="2.variants.1.steps.0",
        **{"s2-variants-1-steps-0-template": templates[1].pk},
    )
    op(marketer, sequence, op="add", container="", type="notify_owner")
    op(marketer, sequence, op="up", path="3")  # notify before the split
    op(marketer, sequence, op="delete", path="2")  # ... then removed
    page = marketer.get(reverse("sequence-detail", args=[sequence.pk])).content.decode()
    assert "Unsaved draft" in page and 'data-path="2.variants.1.steps.0"' in page
    sequence.refresh_from_db()
    assert sequence.current_version.number == 1  # nothing saved yet

    saved = marketer.post(
        reverse("sequence-detail", args=[sequence.pk]),
        {"action": "save", "name": "Onboarding", "active": "on", "exit_on": ["reply"], "reentry": "never"},
    )
    assert saved.status_code == 302
    sequence.refresh_from_db()
    assert sequence.active and sequence.exit_on == ["reply"] and sequence.current_version.number == 2
    assert sequence.current_version.steps == [
        {"type": "email", "template": templates[0].pk},
        {"type": "wait", "days": 3, "business_days": True},
        {
            "type": "split",
            "variants": [
                {"weight": 70, "name": "Short", "steps": [{"type": "email", "template": templates[0].pk}]},
                {"weight": 30, "steps": [{"type": "email", "template": templates[1].pk}]},
            ],
        },
    ]
    assert "Unsaved draft" not in marketer.get(reverse("sequence-detail", args=[sequence.pk])).content.decode()


def test_a_bad_edit_shows_its_errors_and_a_bad_draft_is_not_saved(people, marketer, templates):
    sequence = new_sequence(people, [{"type": "wait", "days": 1}])
    bad = op(marketer, sequence, op="edit", path="0", **{"s0-days": "-4"})
    assert bad.status_code == 200 and "error" in bad.content.decode()
    op(marketer, sequence, op="add", container="", type="enroll")  # no other sequence: invalid
    page = op(marketer, sequence, op="add", container="", type="branch").content.decode()
    assert "fix them before saving" in page
    saved = marketer.post(
        reverse("sequence-detail", args=[sequence.pk]),
        {"action": "save", "name": "Nurture", "reentry": "never"},
        follow=True,
    )
    assert "Not saved" in saved.content.decode()
    sequence.refresh_from_db()
    assert sequence.current_version.number == 1
    marketer.post(reverse("sequence-detail", args=[sequence.pk]), {"action": "discard"})
    assert "Unsaved draft" not in marketer.get(reverse("sequence-detail", args=[sequence.pk])).content.decode()
    gone = op(marketer, sequence, op="delete", path="7")
    assert gone.status_code == 200 and Sequence.objects.get(pk=sequence.pk).current_version.number == 1


def test_branch_conditions_from_the_form(people, marketer):
    segment = Segment.objects.create(name="Hot", kind="static")
    sequence = new_sequence(people)
    op(marketer, sequence, op="add", container="", type="branch")
    op(marketer, sequence, op="edit", path="0",
       **{"s0-condition": "field", "s0-field": "score", "s0-op": "gte", "s0-value": "60"})  # fmt: skip
    op(marketer, sequence, op="add", container="0.then", type="move_stage")
    op(marketer, sequence, op="add", container="", type="branch")
    op(marketer, sequence, op="edit", path="1", **{"s1-condition": "segment", "s1-segment": segment.pk})
    marketer.post(
        reverse("sequence-detail", args=[sequence.pk]), {"action": "save", "name": "Nurture", "reentry": "never"}
    )
    steps = Sequence.objects.get(pk=sequence.pk).current_version.steps
    assert steps[0]["if"] == {"field": "score", "op": "gte", "value": 60}
    assert steps[0]["then"] == [{"type": "move_stage", "to": "MQL"}]
    assert steps[1]["if"] == {"segment": segment.pk}


def test_enroll_a_segment_from_the_sequence_page(people, marketer, templates):
    sequence = new_sequence(people, [{"type": "email", "template": templates[0].pk}])
    segment = Segment.objects.create(name="Fair", kind="static")
    now = timezone.now()
    for consent in ("opt_in", "opt_in", "unknown"):
        SegmentMembership.objects.create(segment=segment, lead=LeadFactory(consent_status=consent), added_at=now)
    answer = marketer.post(
        reverse("sequence-detail", args=[sequence.pk]), {"action": "enroll_segment", "segment": segment.pk}, follow=True
    )
    text = answer.content.decode()
    assert "Enrolled: 2" in text and "No marketing consent: 1" in text
    assert Enrollment.objects.filter(sequence=sequence).count() == 2


def test_sellers_are_kept_out_of_the_builder(people, client):
    sequence = new_sequence(people)
    client.force_login(people.sdr_a)
    assert client.get(reverse("sequences")).status_code == 403
    assert client.get(reverse("sequence-detail", args=[sequence.pk])).status_code == 403
    assert client.post(reverse("sequence-steps", args=[sequence.pk]), {"op": "add", "type": "wait"}).status_code == 403
    assert "Sequences</a>" not in client.get(reverse("leads-list")).content.decode()


def test_lead_page_panel_and_enrolling_a_lead(people, client, templates):
    sequence = new_sequence(people, [{"type": "email", "template": templates[0].pk}])
    lead = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    client.force_login(people.sdr_a)
    page = client.get(reverse("lead-detail", args=[lead.pk])).content.decode()
    assert 'id="sequences-panel"' in page and "Not in any sequence." in page and "Enroll in sequence" in page
    answer = client.post(reverse("sequence-enroll-lead", args=[lead.pk]), {"sequence": sequence.pk}, follow=True)
    assert "Enrolled in Nurture." in answer.content.decode()
    enrollment = Enrollment.objects.get(lead=lead)
    StepRun.objects.create(enrollment=enrollment, path="0", type="email", at=timezone.now(), outcome="sent")
    page = client.get(reverse("lead-detail", args=[lead.pk])).content.decode()
    assert f'data-enrollment="{enrollment.pk}"' in page and "1 step run" in page
    again = client.post(reverse("sequence-enroll-lead", args=[lead.pk]), {"sequence": sequence.pk}, **HX)
    assert "Already enrolled" in again.content.decode() and 'data-enrolled="0"' in again.content.decode()
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    assert client.post(reverse("sequence-enroll-lead", args=[other.pk]), {"sequence": sequence.pk}).status_code == 404
    assert client.post(reverse("sequence-enroll-lead", args=[lead.pk]), {"sequence": "x"}, **HX).status_code == 200
    stop = reverse("sequence-enrollment-stop", args=[enrollment.pk])
    assert f'action="{stop}"' in page
    stopped = client.post(stop, {"next": reverse("lead-detail", args=[lead.pk])}, follow=True)
    assert "Enrollment in Nurture stopped." in stopped.content.decode()
    assert Enrollment.objects.get(pk=enrollment.pk).state == "stopped"
    assert "already ended" in client.post(stop, follow=True).content.decode()
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[other.pk])
    hidden = Enrollment.objects.get(lead=other)
    assert client.post(reverse("sequence-enrollment-stop", args=[hidden.pk])).status_code == 404


def test_the_queue_offers_enroll_and_loads_the_form(people, client, templates):
    new_sequence(people, [{"type": "email", "template": templates[0].pk}])
    lead = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    client.force_login(people.sdr_a)
    queue = client.get(reverse("queue")).content.decode()
    url = reverse("sequence-enroll-lead", args=[lead.pk])
    assert f'hx-get="{url}"' in queue and 'data-action="enroll"' in queue
    form = client.get(url, **HX).content.decode()
    assert '<select name="sequence"' in form and f'hx-post="{url}"' in form
    assert client.get(url).status_code == 200  # without htmx: a page


def test_bulk_enroll_from_the_leads_list(people, client, templates):
    sequence = new_sequence(people, [{"type": "email", "template": templates[0].pk}])
    mine = [LeadFactory(owner=people.sdr_a, consent_status="opt_in") for _ in range(2)]
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    client.force_login(people.sdr_a)
    listing = client.get(reverse("leads-list")).content.decode()
    assert 'id="bulk-enroll"' in listing and 'form="bulk-enroll"' in listing
    answer = client.post(
        reverse("sequence-enroll-leads"),
        {"sequence": sequence.pk, "leads": [mine[0].pk, mine[1].pk, other.pk], "next": "/leads/?stage=MCL"},
    )
    assert answer.status_code == 302 and answer["Location"] == "/leads/?stage=MCL"
    assert set(Enrollment.objects.values_list("lead_id", flat=True)) == {mine[0].pk, mine[1].pk}
    nothing = client.post(reverse("sequence-enroll-leads"), {"sequence": sequence.pk}, follow=True)
    assert "Tick the leads" in nothing.content.decode()


def test_pages_read_in_a_fixed_number_of_queries(people, marketer, templates, django_assert_max_num_queries):
    steps = [
        {"type": "email", "template": templates[0].pk},
        {"type": "split", "variants": [{"weight": 1, "steps": [{"type": "email", "template": templates[1].pk}]},
                                       {"weight": 1, "steps": []}]},
    ]  # fmt: skip
    sequence = new_sequence(people, steps)
    for n in range(3):
        new_sequence(people, name=f"Other {n}")
    leads = [LeadFactory(consent_status="opt_in") for _ in range(15)]
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[x.pk for x in leads])
    now = timezone.now()
    StepRun.objects.bulk_create(
        [StepRun(enrollment=e, path="0", type="email", at=now, outcome="sent") for e in Enrollment.objects.all()]
    )
    with django_assert_max_num_queries(14):
        assert marketer.get(reverse("sequences")).status_code == 200
    with django_assert_max_num_queries(25):
        assert marketer.get(reverse("sequence-detail", args=[sequence.pk])).status_code == 200
    with django_assert_max_num_queries(25):
        assert op(marketer, sequence, op="add", container="", type="wait").status_code == 200
    marketer.force_login(people.admin)
    lead = leads[0]
    with django_assert_max_num_queries(40) as captured:
        assert marketer.get(reverse("lead-detail", args=[lead.pk])).status_code == 200
    one = len(captured)
    for other in Sequence.objects.exclude(pk=sequence.pk):
        other.active = True
        other.save(update_fields=["active"])
        services.sequence_enroll(actor=Actor(people.marketing), sequence_id=other.pk, lead_ids=[lead.pk])
    with django_assert_max_num_queries(one):
        assert marketer.get(reverse("lead-detail", args=[lead.pk])).status_code == 200

"""Sequences in the browser (issue 16): a marketer builds a two-step sequence with an A/B
split from the pages and enrolls a segment; an SDR enrolls a lead from the queue."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from leadcrm.actors import Actor
from nurturing import services
from nurturing.models import EmailTemplate, Enrollment, Segment, SegmentMembership, Sequence
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD, LeadFactory, TeamFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def add_step(page, container: str, kind: str, then: str) -> None:
    """Choose a step type in a list's "Add step" form and wait for the new step."""
    form = page.locator(f'form.step-add[data-container="{container}"]')
    form.locator("select[name=type]").select_option(kind)
    form.locator("[data-action=add]").click()
    expect(page.locator(f'li.step[data-path="{then}"]')).to_have_attribute("data-type", kind)


def test_marketer_builds_a_sequence_with_an_ab_split_and_enrolls_a_segment(page):
    marketer = UserFactory(role=Role.MARKETING, username="mia")
    welcome = EmailTemplate.objects.create(name="Welcome", subject="Welcome", text="Hello")
    EmailTemplate.objects.create(name="Case study", subject="A case", text="Read this")
    short = EmailTemplate.objects.create(name="Short pitch", subject="30 seconds", text="Short")
    segment = Segment.objects.create(name="Trade fair", kind="static", created_by=marketer)
    now = timezone.now()
    for n in range(3):
        lead = LeadFactory(email=f"fair{n}@x.example", consent_status="opt_in")
        SegmentMembership.objects.create(segment=segment, lead=lead, added_at=now)
    SegmentMembership.objects.create(segment=segment, lead=LeadFactory(consent_status="unknown"), added_at=now)

    login(page, "mia", PASSWORD)
    page.click("nav.mainnav >> text=Sequences")
    page.fill("#id_name", "Fair follow-up")
    page.click("text=Create sequence")
    expect(page.locator("h1")).to_have_text("Fair follow-up")

    add_step(page, "", "email", "0")  # step 1: the welcome e-mail
    first = page.locator('li.step[data-path="0"]')
    first.locator("select").first.select_option(str(welcome.pk))
    first.locator("[data-action=apply]").click()
    expect(page.locator('li.step[data-path="0"] .summary')).to_have_text("Welcome")
    add_step(page, "", "split", "1")  # step 2: an A/B split, 50/50
    add_step(page, "1.variants.0.steps", "email", "1.variants.0.steps.0")
    add_step(page, "1.variants.1.steps", "email", "1.variants.1.steps.0")
    variant_b = page.locator('li.step[data-path="1.variants.1.steps.0"]')
    expect(variant_b.locator("details")).to_have_attribute("open", "")
    variant_b.locator("select").first.select_option(str(short.pk))
    variant_b.locator("[data-action=apply]").click()
    expect(page.locator('li.step[data-path="1.variants.1.steps.0"] .summary')).to_have_text("Short pitch")
    expect(page.locator("#draft-state")).to_have_text("Unsaved draft")
    shot(page, "sequence-builder")

    page.check("#id_active")
    page.click("[data-action=save]")
    expect(page.locator(".msg.success")).to_contain_text("version 2")
    sequence = Sequence.objects.get(name="Fair follow-up")
    assert sequence.active and sequence.current_version.number == 2
    steps = sequence.current_version.steps
    assert steps[0] == {"type": "email", "template": welcome.pk}
    assert [v["weight"] for v in steps[1]["variants"]] == [50, 50]
    assert steps[1]["variants"][1]["steps"] == [{"type": "email", "template": short.pk}]

    page.select_option("#enroll-segment select[name=segment]", str(segment.pk))
    page.click("[data-action=enroll-segment]")
    expect(page.locator(".msg.success")).to_contain_text("Enrolled: 3")
    expect(page.locator(".msg.success")).to_contain_text("No marketing consent: 1")
    assert Enrollment.objects.filter(sequence=sequence).count() == 3
    expect(page.locator("#enrollments tbody tr")).to_have_count(3)
    shot(page, "sequence-enrolled")
    assert not page.external and not page.errors


def test_sdr_enrolls_a_lead_from_the_queue(page):
    team = TeamFactory(name="Inside Sales")
    sdr = UserFactory(username="sam", role=Role.SDR, team=team)
    marketer = UserFactory(username="mo", role=Role.MARKETING)
    template = EmailTemplate.objects.create(name="Nurture 1", subject="Hi", text="Hello")
    sequence = services.sequence_create(
        actor=Actor(marketer), name="Cold nurture", steps=[{"type": "email", "template": template.pk}]
    )
    lead = LeadFactory(owner=sdr, consent_status="opt_in", first_name="Nina", last_name="Duval")

    login(page, "sam", PASSWORD)
    page.goto(page.live + "/queue/")
    row = page.locator(f"#lead-{lead.pk}")
    row.locator("[data-action=enroll]").click()  # htmx: the row's small form is loaded in place
    form = row.locator("form.enroll-form")
    expect(form.locator("select[name=sequence]")).to_be_visible()
    form.locator("select[name=sequence]").select_option(str(sequence.pk))
    form.locator("[data-action=enroll-confirm]").click()
    expect(row.locator("[data-enrolled]")).to_have_text("Enrolled in Cold nurture.")
    assert Enrollment.objects.filter(lead=lead, sequence=sequence).exists()
    shot(page, "queue-enrolled")

    page.goto(page.live + f"/leads/{lead.pk}/")
    expect(page.locator("#sequences-panel")).to_contain_text("Cold nurture")
    assert not page.external and not page.errors

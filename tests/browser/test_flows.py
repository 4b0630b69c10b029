"""The three walks of issue #6 in a real browser: an SDR works a lead from the queue to SQL,
a marketer imports a messy CSV and downloads the error report, the dashboard draws its
charts."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from leadcrm.actors import ActorType
from leads.models import Campaign, Lead, Stage, StageChange
from routing.models import SlaClock
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD, LeadFactory, OpportunityFactory, TeamFactory, TouchpointFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_sdr_claims_qualifies_and_moves_a_lead_to_sql(page):
    team = TeamFactory(name="Inside Sales FR")
    sdr = UserFactory(username="sdr1", role=Role.SDR, team=team)
    mine = LeadFactory(owner=sdr, stage=Stage.MQL, grade="B", score=55, company_name="Globex")
    LeadFactory(owner=sdr, stage=Stage.SQL, grade="C", score=41, company_name="Initech")
    LeadFactory(team=team, stage=Stage.MQL, grade="", score=12, company_name="Umbrella")
    lead = LeadFactory(
        team=team, stage=Stage.MQL, grade="A", score=82, first_name="Alice", last_name="Martin", company_name="Acme"
    )
    now = timezone.now()
    StageChange.objects.create(lead=lead, to_stage=Stage.MQL, actor_type=ActorType.AUTOMATION, created_at=now)
    TouchpointFactory(lead=lead, type="pricing_view", utm_source="google")
    SlaClock.objects.create(lead=mine, owner=sdr, team=team, started_at=now, due_at=now + dt.timedelta(minutes=25))

    login(page, "sdr1", PASSWORD)
    page.goto(page.live + "/queue/")
    row = page.locator(f"#lead-{lead.pk}")
    assert row.locator(".tag").inner_text() == "pool"
    expect(page.locator("[data-due]").first).to_contain_text("m ")  # live countdown
    shot(page, "queue")

    row.locator("[data-action=claim]").click()  # htmx: the row is swapped in place
    page.wait_for_selector(f"#lead-{lead.pk} [data-action=call]")
    assert "Lead claimed" in page.locator(f"#lead-{lead.pk}").inner_text()
    assert Lead.objects.get(pk=lead.pk).owner_id == sdr.pk

    page.keyboard.press("j")  # keyboard: the first row is selected, enter opens it
    assert page.locator("tr.selected").count() == 1
    page.goto(page.live + f"/leads/{lead.pk}/")
    assert page.locator("[data-guard=bant_complete]").count() == 1  # SQL offered, its guard shown

    page.fill("textarea[name=budget]", "40k EUR approved")
    page.fill("textarea[name=authority]", "CMO decides")
    page.fill("textarea[name=need]", "Lead routing")
    page.fill("textarea[name=timeline]", "This quarter")
    page.click("[data-action=save-bant]")
    page.wait_for_selector(".msg.success")

    page.fill("li[data-to=SQL] input[name=reason]", "BANT documented on the call")
    page.click("li[data-to=SQL] button[data-move=SQL]")
    page.wait_for_selector("[data-stage=SQL]")
    first = page.locator("#timeline li").first.inner_text()
    assert "MQL → SQL" in first and "BANT documented" in first
    assert Lead.objects.get(pk=lead.pk).stage == Stage.SQL
    shot(page, "lead-page")
    assert page.external == [] and page.errors == []


def test_marketer_imports_a_messy_csv_and_downloads_the_error_report(page, tmp_path):
    UserFactory(username="marketing", role=Role.MARKETING)
    content = (
        "E-mail;Prénom;Nom;Société;Pays;Effectif;Budget\n"
        'anna@acme.example;Anna;Roy;"Acme; Inc";France;1 200;50k\n'
        "not-an-email;Bob;Lee;Foo;France;10;\n"
        "carl@globex.example;Carl;Dupré;Globex;Select;N/A;--\n"
        "dina@initech.example;Dina;Vidal;Initech;Atlantis;25;\n"
    ).encode("cp1252")
    path = tmp_path / "export salon.csv"
    path.write_bytes(content)

    login(page, "marketing", PASSWORD)
    page.goto(page.live + "/import/")
    page.set_input_files("input[name=file]", str(path))
    page.click("button.primary")
    page.wait_for_selector("#mapping")
    assert page.locator("select[data-header='E-mail']").input_value() == "email"
    assert page.locator("select[data-header='Budget']").input_value() == "__property__"
    shot(page, "import-mapping")

    page.click("[data-action=import]")
    page.wait_for_selector(".progress-box[data-status=done]")
    assert page.locator("[data-count=created]").inner_text() == "2"
    assert page.locator("[data-count=failed]").inner_text() == "2"
    shot(page, "import-done")

    with page.expect_download() as info:
        page.click("[data-action=error-report]")
    report = info.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["line", "column", "message"]
    assert {(r[0], r[1]) for r in rows[1:]} == {("3", "E-mail"), ("5", "Pays")}
    assert set(Lead.objects.values_list("email", flat=True)) == {"anna@acme.example", "carl@globex.example"}
    assert Lead.objects.get(email="anna@acme.example").properties == {"budget": "50k"}
    assert page.external == [] and page.errors == []


def test_dashboard_renders_its_charts_with_data(page):
    UserFactory(username="marketing", role=Role.MARKETING)
    sdr = UserFactory(role=Role.SDR, team=TeamFactory(name="Inside Sales FR"))
    Campaign.objects.create(name="Google Ads Q4", utm_campaign="gads-q4", source="google-ads", spend=Decimal("4200"))
    Campaign.objects.create(name="Salon VivaTech", utm_campaign="vivatech", source="trade-fair", spend=Decimal("9000"))
    now = timezone.now()
    path = [Stage.MCL, Stage.MQL, Stage.SQL, Stage.SAL, Stage.CO, Stage.WO]
    sources = [("google-ads", "gads-q4"), ("trade-fair", "vivatech"), ("seo", ""), ("linkedin", "")]
    for i in range(48):
        source, campaign = sources[i % 4]
        depth = [0, 0, 0, 1, 1, 2, 3, 5, 4][i % 9]
        lead = LeadFactory(source=source, utm_campaign=campaign, stage=path[depth], owner=sdr if depth >= 2 else None)
        Lead.objects.filter(pk=lead.pk).update(created_at=now - dt.timedelta(days=i % 40))
        for j in range(depth + 1):
            StageChange.objects.create(
                lead=lead, from_stage=path[j - 1] if j else "", to_stage=path[j], actor_type=ActorType.USER,
                created_at=now - dt.timedelta(days=(i % 40) - j),
            )  # fmt: skip
        TouchpointFactory(lead=lead, utm_source=["google", "linkedin", "newsletter"][i % 3])
        if depth >= 4:
            OpportunityFactory(lead=lead, amount=Decimal(8000 + 500 * i), status="won" if depth == 5 else "open")

    login(page, "marketing", PASSWORD)
    for chart in ("chart-funnel", "chart-time", "chart-cpl", "chart-attribution"):
        page.wait_for_selector(f"#{chart}[data-rendered=true]")
    drawn = page.evaluate("Object.keys(window.leadcrmCharts).map(k => window.leadcrmCharts[k].data.datasets.length)")
    assert all(n >= 1 for n in drawn)
    assert page.locator("tr[data-stage=MCL] [data-count]").inner_text() != "0"
    shot(page, "dashboard")

    page.click("[data-model=linear]")
    page.wait_for_selector("#chart-attribution[data-rendered=true]")
    assert "model=linear" in page.url
    page.select_option("#language", "fr")
    page.wait_for_selector("text=Tableau de bord")
    shot(page, "dashboard-fr")
    assert page.external == [] and page.errors == []

"""The Content-Security-Policy in a real browser: each demo role walks its main pages and
Chromium reports no violation, while the charts draw, the bars get their widths, htmx
swaps and polls, and the language and team selects still submit."""

from __future__ import annotations

import os
import time

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from leads.management.commands.seed_demo import USERS
from leads.models import ImportJob, ImportStatus
from tests.browser.conftest import login, shot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

PASSWORDS = {u[0]: u[1] for u in USERS}
# Each role's main pages ("lead" is the first lead of its leads list).
PAGES = {
    "admin": ["/", "/leads/", "lead", "/team/", "/scoring/", "/import/", "/api/docs/", "/admin/"],
    "marketing": ["/", "/leads/", "lead", "/scoring/", "/import/"],
    "manager": ["/", "/queue/", "/leads/", "lead", "/team/"],
    "sdr1": ["/", "/queue/", "/leads/", "lead"],
}
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  var where = e.sourceFile + ":" + e.lineNumber;
  window.__csp.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + where);
});
"""


@pytest.fixture
def demo(db):
    call_command("seed_demo", leads=80, stdout=open(os.devnull, "w"))


@pytest.fixture
def csp_page(page):
    """The browser page, collecting every CSP violation: Chromium's console line and the
    page's securitypolicyviolation events (read after each visit: they live per document)."""
    page.violations = []
    page.on(
        "console",
        lambda m: page.violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(WATCH)
    return page


def visit(page, url: str) -> None:
    page.goto(page.live + url)
    page.wait_for_load_state("networkidle")
    settle(page)


def settle(page) -> None:
    page.violations.extend(page.evaluate("window.__csp || []"))
    # Bars: every data-width got its width through the CSSOM.
    # Polled (page.evaluate runs outside the page's policy), with a deadline: on a loaded
    # machine the check could run before the deferred app.js had set them.
    deadline = time.monotonic() + 10
    while True:
        unset = page.evaluate(
            "Array.from(document.querySelectorAll('[data-width]')).filter(e => e.style.width === '').length"
        )
        if unset == 0 or time.monotonic() > deadline:
            break
        page.wait_for_timeout(100)
    assert unset == 0, page.url


def check_page(page, url: str) -> None:
    if url == "/":
        page.wait_for_selector("canvas[data-rendered=true]")  # Chart.js drew
        drawn = page.evaluate("Object.keys(window.leadcrmCharts || {}).length")
        assert drawn >= 1
    elif url.startswith("/leads/") and url != "/leads/":
        if page.locator("#chart-score").count():
            page.wait_for_selector("#chart-score[data-rendered=true]")
    elif url == "/api/docs/":
        page.wait_for_selector(".swagger-ui .opblock")  # Swagger UI started and read the schema


@pytest.mark.parametrize("role", list(PAGES))
def test_each_role_walks_its_pages_without_a_csp_violation(csp_page, demo, role):
    page = csp_page
    login(page, role, PASSWORDS[role])
    settle(page)
    for url in PAGES[role]:
        if url == "lead":
            visit(page, "/leads/")
            url = page.locator("tbody tr[data-href]").first.get_attribute("data-href")
        visit(page, url)
        check_page(page, url)
    shot(page, f"csp-{role}")
    assert page.violations == []
    assert page.errors == [] and page.external == []


def test_selects_htmx_and_the_login_page_work_under_the_policy(csp_page, demo):
    page = csp_page
    visit(page, "/login/")
    page.fill("input[name=username]", "sdr1")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".errors")
    settle(page)

    login(page, "sdr1", PASSWORDS["sdr1"])
    page.select_option("#language", "fr")  # data-autosubmit (was onchange=)
    # Locator assertions, not wait_for_function: Playwright evaluates a string predicate
    # with eval in the page, which this very policy refuses (a page error, not the app's).
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    settle(page)
    page.select_option("#language", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    visit(page, "/queue/")
    row = page.locator("tr.pool").first
    lead_id = row.get_attribute("data-lead")
    row.locator("[data-action=claim]").click()  # htmx: hx-post, the row swapped in place
    page.wait_for_selector(f"#lead-{lead_id} [data-action=call]")
    settle(page)
    page.click("form[action='/logout/'] button")
    page.wait_for_url("**/login/")

    login(page, "admin", PASSWORDS["admin"])
    visit(page, "/team/")
    options = page.locator("#team-select option")
    assert options.count() >= 2
    other = options.nth(1).get_attribute("value")
    page.select_option("#team-select", other)  # data-autosubmit on a GET form
    page.wait_for_url(f"**/team/?team={other}")
    settle(page)

    # htmx polling: a running import's progress is fetched every second and swapped; when
    # the job is done the answer's HX-Refresh reloads the page.
    job = ImportJob.objects.create(
        created_by=None,
        filename="slow.csv",
        data=b"email\na@example.com\n",
        status=ImportStatus.RUNNING,
        total_rows=4,
        processed_rows=1,
    )
    visit(page, f"/import/{job.pk}/")
    ImportJob.objects.filter(pk=job.pk).update(processed_rows=3)
    page.wait_for_selector("#progress [aria-valuenow='75']")
    settle(page)
    ImportJob.objects.filter(pk=job.pk).update(processed_rows=4, status=ImportStatus.DONE)
    page.wait_for_selector("#progress[data-status=done]")
    page.wait_for_load_state("networkidle")
    settle(page)
    assert page.violations == []
    assert page.errors == [] and page.external == []

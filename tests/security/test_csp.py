"""Content-Security-Policy on every answer (django-csp, settings CONTENT_SECURITY_POLICY),
and templates that need no 'unsafe-inline': no inline script, handler or style attribute."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import reverse

from accounts.models import Role
from leads.models import ImportJob, ImportStatus
from nurturing.models import EmailTemplate, Segment
from tests.authz.urlconf import operations
from tests.factories import LeadFactory, TeamFactory, UserFactory

ROOT = Path(settings.BASE_DIR)
EXPECTED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


CSP_SITE_KEY = "csp-site-key-0123456789abcdef"


def policy(response) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request['PATH_INFO']} answered without a Content-Security-Policy"
    return {d.split()[0]: " ".join(d.split()[1:]) for d in header.split(";") if d.strip()}


@pytest.fixture
def world(db):
    team = TeamFactory(name="FR")
    admin = UserFactory(username="boss", role=Role.ADMIN, is_superuser=True, team=team)
    lead = LeadFactory(team=team)
    job = ImportJob.objects.create(
        created_by=admin, filename="a.csv", data=b"email\nx@example.com\n", status=ImportStatus.DONE
    )
    segment = Segment.objects.create(name="CSP list", kind="static")
    pks = {"lead-detail": lead.pk, "import-detail": job.pk, "import-progress": job.pk, "segment-detail": segment.pk}
    pks["email-template-edit"] = EmailTemplate.objects.create(name="CSP mail", subject="Hi", text="Hello").pk
    workflow = apps.get_model("nurturing", "Workflow")
    pks["workflow-detail"] = workflow.objects.create(name="CSP flow", trigger={"inactive_days": 3}, actions=[]).pk
    pks["sequence-detail"] = apps.get_model("nurturing", "Sequence").objects.create(name="CSP sequence").pk
    pks["sequence-enroll-lead"] = lead.pk
    pks["lead-privacy-export"] = lead.pk  # the GDPR export download (compliance)
    form = apps.get_model("capture", "Form").objects.create(name="CSP form", site_key=CSP_SITE_KEY, fields=[])
    pks["capture-form-detail"] = form.pk
    webhook = apps.get_model("integrations", "Webhook").objects.create(
        url="https://93.184.215.14/csp", events=["lead.created"], secret="whsec_Y3Nw", owner=admin
    )
    pks["integrations-webhook-detail"] = webhook.pk
    return {"admin": admin, "pk": pks}


def _page_urls(pks: dict[str, int]) -> list[str]:
    """Every GET page of the URL conf (the API's JSON answers aside: a policy is for pages)."""
    urls = []
    for op in operations(skip=lambda name, route: route.startswith(("admin/", "api/v1/"))):
        if op.method != "GET" or op.name in ("set_language", "schema", "import-errors"):
            continue  # a redirect, the schema's YAML and a CSV download are not pages
        if "site_key" in op.params:  # public form pages, by the form's site key
            urls.append(reverse(op.name, kwargs={"site_key": CSP_SITE_KEY}))
            continue
        if "token" in op.params:  # pages reached from e-mails: any token shows the page (or its refusal)
            urls.append(reverse(op.name, kwargs={"token": "not-a-token"}))
            continue
        urls.append(reverse(op.name, kwargs={"pk": pks[op.name]} if op.params else None))
    return urls


def test_the_page_list_covers_the_main_pages(world):
    urls = _page_urls(world["pk"])
    for page in ("/", "/login/", "/queue/", "/leads/", "/team/", "/scoring/", "/import/", "/api/docs/"):
        assert page in urls


@pytest.mark.django_db
def test_every_page_carries_the_policy_with_no_inline_script(client, world):
    client.force_login(world["admin"])
    urls = [*_page_urls(world["pk"]), "/admin/", "/admin/leads/lead/", "/no-such-page/"]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302, 404), (url, response.status_code)
        directives = policy(response)
        assert directives == EXPECTED, url
        assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]


@pytest.mark.django_db
def test_the_login_and_lockout_pages_carry_it(client):
    assert policy(client.get("/login/")) == EXPECTED
    UserFactory(username="sdr1")
    for i in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/login/", {"username": "sdr1", "password": f"wrong-{i}"})
    assert response.status_code == 429 and policy(response) == EXPECTED


@pytest.mark.django_db
def test_the_api_docs_script_is_a_file_of_its_own(client, world):
    client.force_login(world["admin"])
    html = client.get("/api/docs/").content.decode()
    src = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(src)
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


# What a page under script-src/style-src 'self' may not contain.
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(ld\+)?json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"<style[\s>]", re.I), "<style> element"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_needs_unsafe_inline():
    templates = [p for p in ROOT.glob("**/templates/**/*.html") if ".venv" not in p.parts]
    assert len(templates) > 15
    found = []
    for path in templates:
        text = re.sub(r"\{#.*?#\}", "", path.read_text(encoding="utf-8"))  # template comments
        for pattern, what in INLINE:
            for m in pattern.finditer(text):
                found.append(f"{path.relative_to(ROOT)}: {what}: {m.group(0)!r}")
    assert found == []

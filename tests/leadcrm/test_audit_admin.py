"""The audit log's admin page: admins read and export it; nobody edits it; formulas escaped."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from leadcrm.models import AuditEntry

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


@pytest.fixture
def entry(make_user):
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor=make_user("marketing", username="mkt"),
        actor_kind="user",
        action="lead.update",
        target_type="leads.lead",
        target_id="7",
        target_repr='=HYPERLINK("http://evil")',
        changes={"city": ["Paris", "=cmd|' /C calc'!A0"]},
    )


def test_admins_list_the_audit_log_and_nobody_edits_it(make_user, entry):
    admin = _client(make_user("admin"))
    assert admin.get("/admin/leadcrm/auditentry/").status_code == 200
    assert "/admin/leadcrm/auditentry/" in admin.get("/admin/").content.decode()
    assert admin.get(f"/admin/leadcrm/auditentry/{entry.pk}/change/").status_code == 200  # a view, not a form
    assert admin.post(f"/admin/leadcrm/auditentry/{entry.pk}/change/", {"action": "x"}).status_code == 403
    assert admin.get("/admin/leadcrm/auditentry/add/").status_code == 403
    assert admin.post(f"/admin/leadcrm/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).action == "lead.update"


@pytest.mark.parametrize("role", ["marketing", "manager", "sdr"])
def test_other_roles_do_not_reach_it(make_user, entry, role):
    r = _client(make_user(role)).get("/admin/leadcrm/auditentry/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_export_escapes_formulas(make_user, entry):
    admin = _client(make_user("admin"))
    r = admin.post("/admin/leadcrm/auditentry/", {"action": "export_csv", "_selected_action": [entry.pk], "index": 0})
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows[0][3] == "action" and rows[1][3] == "lead.update" and rows[1][1] == "mkt"
    assert rows[1][6].startswith("'=")
    assert '"city": ["Paris", ' in rows[1][7]

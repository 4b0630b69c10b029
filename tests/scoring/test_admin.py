"""The scoring admin validates rules with the services' checks and writes through them."""

from __future__ import annotations

import pytest

from scoring.models import FitRule, RuleSet

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, make_user, settings):
    settings.SECURE_SSL_REDIRECT = False
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    return client


def _form(**extra):
    data = {
        "group": "default",
        "name": "Admin made",
        "description": "",
        "mql_threshold": "50",
        "grade_a_min": "75",
        "grade_b_min": "50",
        "grade_c_min": "25",
        "fit_rules-TOTAL_FORMS": "1",
        "fit_rules-INITIAL_FORMS": "0",
        "fit_rules-0-name": "Software",
        "fit_rules-0-field": "industry",
        "fit_rules-0-operator": "equals",
        "fit_rules-0-value": '"Software"',
        "fit_rules-0-points": "20",
        "engagement_rules-TOTAL_FORMS": "0",
        "engagement_rules-INITIAL_FORMS": "0",
    }
    data.update(extra)
    return data


def test_admin_creates_a_version_with_rules(admin_client):
    resp = admin_client.post("/admin/scoring/ruleset/add/", _form())
    assert resp.status_code == 302, resp.content.decode()[:2000]
    rs = RuleSet.objects.get()
    assert rs.version == 1 and not rs.is_active
    assert FitRule.objects.get(ruleset=rs).value == "Software"


def test_admin_refuses_a_bad_rule_on_its_field(admin_client):
    resp = admin_client.post("/admin/scoring/ruleset/add/", _form(**{"fit_rules-0-field": "shoe_size"}))
    assert resp.status_code == 200
    assert "Unknown field" in resp.content.decode()
    assert not RuleSet.objects.exists()

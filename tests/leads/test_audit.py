"""The audit log: services write who, what, old → new; nothing when nothing changed; a
batch writes its entries in one INSERT; the lead's history shows the edits."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts_services
from leadcrm.actors import Actor, ActorType
from leadcrm.models import AuditEntry
from leads import selectors, services
from routing import services as routing_services
from scoring import services as scoring_services


def _entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def test_lead_update_records_old_and_new_and_nothing_when_unchanged(people, mk_lead):
    lead = mk_lead(first_name="Ann")
    actor = Actor(people.sdr_a, ActorType.USER)
    services.lead_update(lead_id=lead.pk, data={"first_name": "Anna", "city": "Lyon"}, actor=actor)
    (entry,) = _entries("lead.update")
    assert (entry.actor_id, entry.actor_kind, entry.target_type, entry.target_id) == (
        people.sdr_a.pk,
        "user",
        "leads.lead",
        str(lead.pk),
    )
    assert entry.changes["first_name"] == ["Ann", "Anna"]
    assert entry.changes["city"][1] == "Lyon"
    services.lead_update(lead_id=lead.pk, data={"first_name": "Anna"}, actor=actor)
    assert len(_entries("lead.update")) == 1


def test_lead_history_shows_the_edit(people, mk_lead):
    lead = mk_lead(first_name="Ann")
    services.lead_update(lead_id=lead.pk, data={"first_name": "Anna"}, actor=Actor(people.sdr_a, ActorType.USER))
    (item,) = [i for i in selectors.lead_history(lead=lead) if i["kind"] == "audit"]
    assert (item["action"], item["actor"], item["changes"]["first_name"]) == (
        "lead.update",
        people.sdr_a.username,
        ["Ann", "Anna"],
    )


def test_bulk_upsert_writes_its_audit_in_one_insert(people, mk_lead):
    existing = mk_lead("old@example.com", first_name="Old")
    rows = [(i, {"email": f"bulk{i}@example.com", "first_name": "B"}) for i in range(200)]
    rows.append((200, {"email": "old@example.com", "first_name": "New"}))
    with CaptureQueriesContext(connection) as ctx:
        services.leads_bulk_upsert(rows=rows, actor=Actor(people.admin, ActorType.IMPORT))
    audit_inserts = [q for q in ctx.captured_queries if 'INSERT INTO "leadcrm_auditentry"' in q["sql"]]
    assert len(audit_inserts) == 1
    assert AuditEntry.objects.filter(action="lead.create", details__bulk=True).count() == 200
    (edit,) = _entries("lead.recapture")
    assert edit.target_id == str(existing.pk) and edit.changes["first_name"] == ["Old", "New"]


def test_bulk_recapture_audits_a_new_company_and_nothing_when_unchanged(people, mk_lead):
    lead = mk_lead("moved@example.com", company_domain="")
    actor = Actor(people.admin, ActorType.IMPORT)
    row = {"email": "moved@example.com", "company_name": "Acme", "company_domain": "acme.example"}
    services.leads_bulk_upsert(rows=[(0, row)], actor=actor)
    lead.refresh_from_db()
    (edit,) = _entries("lead.recapture")
    assert edit.changes["company_domain"][1] == "acme.example"
    assert edit.changes["company"][1] == lead.company_id is not None
    services.leads_bulk_upsert(rows=[(0, row)], actor=actor)
    assert len(_entries("lead.recapture")) == 1
    assert edit.actor_kind == "import"


def test_user_changes_are_audited_without_the_password(people):
    user = accounts_services.user_create(
        username="zed", password="a-long-pass-phrase-1", role="sdr", actor=people.admin
    )
    accounts_services.user_update(user=user, role="manager", password="another-long-phrase-2", actor=people.admin)
    (entry,) = _entries("user.role_change")
    assert entry.changes["role"] == ["sdr", "manager"] and "password" not in entry.changes
    assert entry.details == {"password_changed": True}
    assert "a-long-pass" not in str(_entries("user.create")[0].changes)


def test_routing_rule_update_records_the_diff(people):
    actor = Actor(people.admin, ActorType.USER)
    rule = routing_services.routing_rule_create(actor=actor, name="FR", conditions={}, team=people.team_a)
    routing_services.routing_rule_update(rule=rule, actor=actor, name="France")
    (entry,) = _entries("routing.rule.update")
    assert entry.changes == {"name": ["FR", "France"]}
    routing_services.routing_rule_update(rule=rule, actor=actor, name="France")
    assert len(_entries("routing.rule.update")) == 1


def test_ruleset_update_records_the_diff(people):
    actor = Actor(people.admin, ActorType.USER)
    ruleset = scoring_services.ruleset_create(data={"name": "v", "mql_threshold": 50}, actor=actor)
    scoring_services.ruleset_update(ruleset_id=ruleset.pk, data={"mql_threshold": 60}, actor=actor)
    (entry,) = _entries("scoring.ruleset.update")
    assert entry.changes == {"mql_threshold": [50, 60]}

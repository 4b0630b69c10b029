"""The authorisation matrix (issue 14): every operation of the URL conf (API and pages) ×
every role × the lead's relation to the caller → the answer SPEC.md "Who uses it" and its
roles give. The operations are read from `django.urls.get_resolver()`; the rules are the
explicit table below, so a new endpoint without a rule fails `test_every_operation_has_a_rule`
and a rule whose URL is gone fails `test_every_rule_names_an_operation`.

How to read a rule: one answer per role, in the order of ROLES. For an operation on a lead
(`lead` target) the answer is the one on a lead the caller may see; a lead the caller may
not see answers 404 whatever the role, by VISIBLE below (its existence is not disclosed:
never a 403 nor a 400 that would tell it exists). "ok" means the call got past
authorisation: a 2xx, a redirect that is not to the login page, a 400 for the minimal body
sent, or a 409 from a business guard. Bodies are minimal: the point is the authorisation
answer, not the business effect; every case runs in its own savepoint, rolled back after.
A deactivated user, still holding its session and its token, is answered as anonymous.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import random
import re
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import transaction
from django.shortcuts import resolve_url
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.models import Job
from leads import imports
from leads.models import SavedFilter, Task
from nurturing.models import EmailTemplate, Segment, SenderIdentity, Workflow
from routing.models import Partner, PartnerOffer, RoutingRule, SlaPolicy, Territory
from scoring.models import FitRule, PredictiveModel, RuleSet
from tests.authz.urlconf import Operation, operations
from tests.factories import LeadFactory, OpportunityFactory, TeamFactory, UserFactory

ROLES = ("anonymous", "admin", "marketing", "manager", "sdr", "partner")
# A deactivated seller, with the session and the token it had: answered as anonymous
# everywhere (its column is anonymous's), its own leads included.
CALLERS = (*ROLES, "inactive")
# The lead's relation to the caller. The callers live in team A (the manager manages it;
# admin, marketing and the partner's login have no team); "teammate" is another seller of
# team A, "pool" team A's unassigned leads, "other_team" a seller of team B, "no_team" a
# lead with neither owner nor team, "partner" a lead offered to the partner (owned by its
# login until it answers).
RELATIONS = ("own", "teammate", "pool", "other_team", "no_team", "partner")

# SPEC "Roles": admins and marketing see every lead; a manager their team's; an SDR their
# own and their team's unassigned pool. The partner's login is a seller with no team: it
# sees the leads it holds (offered to it).
VISIBLE = {
    "admin": set(RELATIONS),
    "marketing": set(RELATIONS),
    "manager": {"own", "teammate", "pool"},
    "sdr": {"own", "pool"},
    "partner": {"own", "partner"},
    "anonymous": set(),
    "inactive": set(),
}
# The same rule over every lead of the world, named by where it sits ("own-<role>": owned by
# that caller; admin's, marketing's and the partner's login are in no team): no answer
# given to a caller may show the e-mail of a lead outside its set.
SEES = {
    "admin": "*",
    "marketing": "*",
    "manager": {"own-manager", "own-sdr", "own-inactive", "teammate", "pool"},
    "sdr": {"own-sdr", "pool"},
    "partner": {"partner"},
    "anonymous": set(),
    "inactive": set(),
}

OK, LOGIN = "ok", "login"


# --- which operations the matrix covers -----------------------------------------------------


def _skipped(name: str, route: str) -> bool:
    """Left out on purpose:
    - the Django admin (`admin/`): for active admins only, whatever the page, by one check
      (leadcrm.admin_site); tests/authz/test_admin_and_guards.py proves every other role
      and an inactive admin are sent to its login;
    - the OpenAPI schema (`api/schema/`): public by design (SPEC.md: integrators read it),
      seconds to generate per call; tests/test_api_schema.py fetches it.
    Static files are served by WhiteNoise (middleware), not by the URL conf."""
    return route.startswith("admin/") or name == "schema"


OPERATIONS = operations(skip=_skipped)


@dataclasses.dataclass(frozen=True)
class Rule:
    answers: dict[str, object]  # role → "ok", "login" or a status code
    target: str | None = None  # what fills `<pk>`: "lead" (by relation) or a world object
    body: dict | None = None  # the minimal body of a write
    params: tuple[tuple[str, str], ...] = ()  # other path parameters

    @property
    def on_lead(self) -> bool:
        return self.target == "lead"


def row(spec: str, target: str | None = None, body: dict | None = None, **params: str) -> Rule:
    """`row("401 ok ok 403 403 403")`: the answers of ROLES in order."""
    cells = spec.split()
    assert len(cells) == len(ROLES), spec
    answers = {role: cell if cell in (OK, LOGIN) else int(cell) for role, cell in zip(ROLES, cells, strict=True)}
    return Rule(answers, target, body, tuple(params.items()))


# Roles:                              anonymous admin marketing manager sdr partner
SIGNED_IN_API = "401 ok ok ok ok ok"
SIGNED_IN_PAGE = "login ok ok ok ok ok"
PUBLIC = "ok ok ok ok ok ok"
ADMIN_API = "401 ok 403 403 403 403"
READERS_API = "401 ok ok ok 403 403"  # routing and scoring configuration: admins, managers, marketing read
MARKETING_API = "401 ok ok 403 403 403"  # marketing's own work (scoring, imports, events): admins too
SALES_API = "401 ok 403 ok ok ok"  # sales work on a lead: never marketing
SALES_PAGE = "login ok 403 ok ok ok"
MARKETING_PAGE = "login ok ok 403 403 403"
MANAGERS_PAGE = "login ok 403 ok 403 403"

MATRIX_SITE_KEY = "matrix-site-key-0123456789abcdef"
TO_SQL = {"to": "SQL", "reason": "authorisation matrix"}
TO_DQ = {"to": "DISQUALIFIED", "reason": "authorisation matrix"}
IMPORT_JOB_RULES = [row(MARKETING_PAGE, "import_job"), row("login ok 404 403 403 403", "import_job_admin")]

# A list gives one rule per object the URL is called on (e.g. one's own team and another).
RULES: dict[tuple[str, str], Rule | list[Rule]] = {
    # --- public ---
    ("api-docs", "GET"): row(PUBLIC),
    ("set_language", "GET"): row(PUBLIC),
    ("set_language", "POST"): row(PUBLIC, body={"language": "fr"}),
    # reached from e-mails, no login: signed tokens (a bad one: the page says so, nothing changes)
    ("unsubscribe", "GET"): row(PUBLIC, token="bad"),
    ("unsubscribe", "POST"): row(PUBLIC, token="bad"),
    ("track-open", "GET"): row(PUBLIC, token="bad"),
    ("track-click", "GET"): row("404 404 404 404 404 404", token="bad"),
    ("login", "GET"): row(PUBLIC),  # a signed-in user is sent on to the dashboard
    ("login", "POST"): row(PUBLIC),
    ("login", "PUT"): row(PUBLIC),  # FormView handles PUT as POST
    ("logout", "POST"): row(PUBLIC),
    # --- leads API ---
    ("api:lead-list", "GET"): row(SIGNED_IN_API),  # each role's scope: tests/leads
    ("api:lead-list", "POST"): row(SIGNED_IN_API),
    ("api:lead-bulk", "POST"): row(MARKETING_API),
    ("api:lead-detail", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:lead-detail", "PATCH"): row(SIGNED_IN_API, "lead"),  # profile fields: every role on a lead it sees
    # Marketing moves leads within its stages only (the world's leads are MCL): to SQL, no;
    # out to DISQUALIFIED, yes, as every role that sees the lead.
    ("api:lead-transition", "POST"): [row(SALES_API, "lead", TO_SQL), row(SIGNED_IN_API, "lead", TO_DQ)],
    ("api:lead-history", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:lead-bant", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:lead-bant", "PUT"): row(SALES_API, "lead"),
    ("api:lead-opportunity", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:lead-opportunity", "POST"): row(SALES_API, "lead"),
    ("api:lead-route", "POST"): row("401 ok 403 ok 403 403", "lead"),  # routing by hand: admins, managers
    # GDPR export and erasure: admins and marketing, on a lead they see (compliance.selectors.PRIVACY_ROLES)
    ("api:lead-export", "GET"): row(MARKETING_API, "lead"),
    ("api:lead-erase", "POST"): row(MARKETING_API, "lead"),  # no reason sent: 400 once authorised
    ("api:scoring-lead-scores", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:events", "POST"): row(MARKETING_API),
    ("api:metrics-funnel", "GET"): row(SIGNED_IN_API),
    ("api:metrics-attribution", "GET"): row(SIGNED_IN_API),  # as the funnel: over the leads one sees
    # enrichment: what providers set on a lead one sees; running it again is marketing's (admins')
    ("api:lead-enrichment", "GET"): row(SIGNED_IN_API, "lead"),
    ("api:lead-enrichment", "POST"): row(MARKETING_API, "lead"),
    # --- users and teams (admins write, managers read their team, others themselves) ---
    ("api:user-list", "GET"): row(SIGNED_IN_API),
    ("api:user-list", "POST"): row(ADMIN_API),
    # A seller of team A, one of team B, the caller.
    ("api:user-detail", "GET"): [
        row("401 ok 404 ok 404 404", "user"),
        row("401 ok 404 404 404 404", "user_b"),
        row("401 ok ok ok ok ok", "self"),
    ],
    ("api:user-detail", "PATCH"): [
        row("401 ok 404 403 404 404", "user"),
        row("401 ok 404 404 404 404", "user_b"),
        row("401 ok 403 403 403 403", "self"),
    ],
    ("api:team-list", "GET"): row(SIGNED_IN_API),
    ("api:team-list", "POST"): row(ADMIN_API),
    # Team A (the callers') and team B; the partner's login is in no team.
    ("api:team-detail", "GET"): [row("401 ok ok ok ok 404", "team"), row("401 ok ok 404 404 404", "team_b")],
    ("api:team-detail", "PATCH"): [row("401 ok 403 403 403 404", "team"), row("401 ok 403 404 404 404", "team_b")],
    # The load of the teams one manages.
    ("api:team-load", "GET"): [row("401 ok 404 ok 404 404", "team"), row("401 ok 404 404 404 404", "team_b")],
    ("api:notification-list", "GET"): row(SIGNED_IN_API),  # one's own
    ("api:notifications-read", "POST"): row(SIGNED_IN_API),
    # --- scoring configuration (marketing writes, managers read) ---
    ("api:scoring-ruleset-list", "GET"): row(READERS_API),
    ("api:scoring-ruleset-list", "POST"): row(MARKETING_API),
    ("api:scoring-ruleset-detail", "GET"): row(READERS_API, "ruleset"),
    ("api:scoring-ruleset-detail", "PATCH"): row(MARKETING_API, "ruleset"),
    ("api:scoring-ruleset-activate", "POST"): row(MARKETING_API, "ruleset"),
    ("api:scoring-ruleset-copy", "POST"): row(MARKETING_API, "ruleset"),
    ("api:scoring-ruleset-backtest", "GET"): row(READERS_API, "ruleset"),
    ("api:scoring-rule-create", "POST"): row(MARKETING_API, "ruleset", kind="fit"),
    ("api:scoring-rule-detail", "PATCH"): row(MARKETING_API, "fit_rule", kind="fit"),
    ("api:scoring-rule-detail", "DELETE"): row(MARKETING_API, "fit_rule", kind="fit"),
    ("api:scoring-predictive", "GET"): row(READERS_API),
    ("api:scoring-predictive-train", "POST"): row(MARKETING_API),
    # --- routing configuration (admins write; managers and marketing read) ---
    ("api:routing-rule-list", "GET"): row(READERS_API),
    ("api:routing-rule-list", "POST"): row(ADMIN_API),
    # A rule to team A, one to team B: a manager reads the rules of their teams.
    ("api:routing-rule-detail", "GET"): [
        row(READERS_API, "routing_rule"),
        row("401 ok ok 404 403 403", "routing_rule_b"),
    ],
    ("api:routing-rule-detail", "PATCH"): [
        row(ADMIN_API, "routing_rule"),
        row("401 ok 403 404 403 403", "routing_rule_b"),
    ],
    ("api:routing-rule-detail", "DELETE"): [
        row(ADMIN_API, "routing_rule"),
        row("401 ok 403 404 403 403", "routing_rule_b"),
    ],
    ("api:territory-list", "GET"): row(READERS_API),
    ("api:territory-list", "POST"): row(ADMIN_API),
    ("api:territory-detail", "GET"): row(READERS_API, "territory"),
    ("api:territory-detail", "PATCH"): row(ADMIN_API, "territory"),
    ("api:territory-detail", "DELETE"): row(ADMIN_API, "territory"),
    ("api:partner-list", "GET"): row(READERS_API),
    ("api:partner-list", "POST"): row(ADMIN_API),
    ("api:partner-detail", "GET"): row(READERS_API, "partner"),
    ("api:partner-detail", "PATCH"): row(ADMIN_API, "partner"),
    ("api:partner-detail", "DELETE"): row(ADMIN_API, "partner"),
    ("api:sla-policy-list", "GET"): row(READERS_API),
    ("api:sla-policy-list", "POST"): row(ADMIN_API),
    ("api:sla-policy-detail", "GET"): row(READERS_API, "sla_policy"),
    ("api:sla-policy-detail", "PATCH"): row(ADMIN_API, "sla_policy"),
    ("api:sla-policy-detail", "DELETE"): row(ADMIN_API, "sla_policy"),
    ("api:routing-settings", "GET"): row(READERS_API),
    ("api:routing-settings", "PATCH"): row(ADMIN_API),
    ("api:metrics-sla", "GET"): row(READERS_API),
    # Bulk routing as a job: admins any scope, a manager its team's pool (no team named: 400).
    ("api:routing-route-unassigned", "POST"): row("401 ok 403 ok 403 403"),
    # A job's status: its starter's and admins' (an admin's job, one marketing started).
    ("api:job-detail", "GET"): [row("401 ok 404 404 404 404", "job_admin"), row("401 ok ok 404 404 404", "job_mine")],
    # --- partner offers: each partner answers its own; admins may answer for it ---
    ("api:partner-offer-list", "GET"): row(SIGNED_IN_API),  # scoped: test_admin_and_guards
    # Marketing sees every offer (it sees every lead) but does not answer for a partner.
    ("api:partner-offer-accept", "POST"): row("401 ok 403 404 404 ok", "offer"),
    ("api:partner-offer-decline", "POST"): row("401 ok 403 404 404 ok", "offer"),
    # --- the audit log: everyone reads what concerns what they see (its own tests: scope) ---
    ("api:audit-list", "GET"): row(SIGNED_IN_API),
    # --- segments: marketing writes, every signed-in user reads (members: the leads it sees) ---
    ("api:segment-list", "GET"): row(SIGNED_IN_API),
    ("api:segment-list", "POST"): row(MARKETING_API),
    ("api:segment-count", "POST"): row(MARKETING_API),
    ("api:segment-detail", "GET"): row(SIGNED_IN_API, "segment"),
    ("api:segment-detail", "PATCH"): row(MARKETING_API, "segment"),
    ("api:segment-detail", "DELETE"): row(MARKETING_API, "segment"),
    ("api:segment-members", "GET"): row(SIGNED_IN_API, "segment"),
    ("api:segment-members", "POST"): row(MARKETING_API, "segment"),
    ("api:segment-changes", "GET"): row(SIGNED_IN_API, "segment"),
    # --- e-mail: marketing's templates; messages of the leads the caller sees ---
    ("api:email-template-list", "GET"): row(MARKETING_API),
    ("api:email-template-list", "POST"): row(MARKETING_API),
    ("api:email-template-detail", "GET"): row(MARKETING_API, "email_template"),
    ("api:email-template-detail", "PATCH"): row(MARKETING_API, "email_template"),
    ("api:email-template-preview", "POST"): row(MARKETING_API, "email_template"),
    ("api:message-list", "GET"): row(SIGNED_IN_API),
    # --- sequences: marketing writes, every signed-in user reads; the roles that enroll (sellers
    # too, on the leads they see) stop an enrollment of a lead they see (the pool's, a teammate's)
    ("api:sequence-list", "GET"): row(SIGNED_IN_API),
    ("api:sequence-list", "POST"): row(MARKETING_API),
    ("api:sequence-detail", "GET"): row(SIGNED_IN_API, "sequence"),
    ("api:sequence-detail", "PATCH"): row(MARKETING_API, "sequence"),
    ("api:sequence-enroll", "POST"): row(SIGNED_IN_API, "sequence"),
    ("api:sequence-stats", "GET"): row(SIGNED_IN_API, "sequence"),
    ("api:enrollment-list", "GET"): row(SIGNED_IN_API),
    ("api:enrollment-stop", "POST"): [
        row("401 ok ok ok ok 404", "enrollment_pool"),
        row("401 ok ok ok 404 404", "enrollment_teammate"),
    ],
    # --- workflows: marketing writes, every signed-in user reads (runs: of the leads it sees) ---
    ("api:workflow-list", "GET"): row(SIGNED_IN_API),
    ("api:workflow-list", "POST"): row(MARKETING_API),
    ("api:workflow-detail", "GET"): row(SIGNED_IN_API, "workflow"),
    ("api:workflow-detail", "PATCH"): row(MARKETING_API, "workflow"),
    ("api:workflow-detail", "DELETE"): row(MARKETING_API, "workflow"),
    ("api:workflow-runs", "GET"): row(SIGNED_IN_API, "workflow"),
    # sender identities, topics and test sends: marketing's (a test send renders a lead it sees)
    ("api:email-template-test", "POST"): row(MARKETING_API, "email_template"),
    ("api:sender-identity-list", "GET"): row(MARKETING_API),
    ("api:sender-identity-list", "POST"): row(MARKETING_API),
    ("api:sender-identity-detail", "GET"): row(MARKETING_API, "sender_identity"),
    ("api:sender-identity-detail", "PATCH"): row(MARKETING_API, "sender_identity"),
    ("api:topic-list", "GET"): row(MARKETING_API),
    ("api:topic-list", "POST"): row(MARKETING_API),
    ("api:consent-confirmation-request", "POST"): row(MARKETING_API),  # double opt-in of leads it sees
    # double opt-in link, reached from an e-mail: signed token (a bad one: the page says so)
    ("consent-confirm", "GET"): row(PUBLIC, token="bad"),
    ("consent-confirm", "POST"): row(PUBLIC, token="bad"),
    # e-mail providers' webhooks: basic auth with ANYMAIL_WEBHOOK_SECRET, refused while unset (tests)
    ("email-webhook-tracking", "POST"): row("403 403 403 403 403 403", esp="generic"),
    ("email-webhook-inbound", "POST"): row("403 403 403 403 403 403", esp="generic"),
    # --- tasks: on the leads the caller sees (a teammate's lead is hidden from an SDR) ---
    ("api:task-list", "GET"): row(SIGNED_IN_API),
    ("api:task-list", "POST"): row(SIGNED_IN_API),
    ("api:task-detail", "GET"): [
        row("401 ok ok ok 404 404", "task_teammate"),
        row("401 ok ok ok ok 404", "task_pool"),
    ],
    ("api:task-detail", "PATCH"): [
        row("401 ok ok ok 404 404", "task_teammate"),
        row("401 ok ok ok ok 404", "task_pool"),
    ],
    # --- integrations: API keys and webhooks, admins only (integrations.selectors says why) ---
    ("api:api-key-list", "GET"): row(ADMIN_API),
    ("api:api-key-list", "POST"): row(ADMIN_API),
    ("api:api-key-revoke", "POST"): row(ADMIN_API, "api_key"),
    ("api:webhook-list", "GET"): row(ADMIN_API),
    ("api:webhook-list", "POST"): row(ADMIN_API),
    ("api:webhook-detail", "GET"): row(ADMIN_API, "webhook"),
    ("api:webhook-detail", "PATCH"): row(ADMIN_API, "webhook"),
    ("api:webhook-detail", "DELETE"): row(ADMIN_API, "webhook"),
    ("api:webhook-rotate-secret", "POST"): row(ADMIN_API, "webhook"),
    ("api:webhook-deliveries", "GET"): row(ADMIN_API, "webhook"),
    ("api:webhook-replay", "POST"): row(ADMIN_API, "webhook"),
    ("api:webhook-delivery-detail", "GET"): row(ADMIN_API, "webhook_delivery"),
    ("api:webhook-delivery-replay", "POST"): row(ADMIN_API, "webhook_delivery"),
    ("integrations-api-keys", "GET"): row("login ok 403 403 403 403"),
    ("integrations-api-keys", "POST"): row("login ok 403 403 403 403"),
    ("integrations-api-key-revoke", "POST"): row("login ok 403 403 403 403", "api_key"),
    ("integrations-webhooks", "GET"): row("login ok 403 403 403 403"),
    ("integrations-webhooks", "POST"): row("login ok 403 403 403 403"),
    ("integrations-webhook-detail", "GET"): row("login ok 403 403 403 403", "webhook"),
    ("integrations-webhook-detail", "POST"): row("login ok 403 403 403 403", "webhook"),
    ("integrations-delivery-replay", "POST"): row("login ok 403 403 403 403", "webhook_delivery"),
    # --- pages ---
    ("dashboard", "GET"): row(SIGNED_IN_PAGE),
    ("dashboard", "POST"): row(SIGNED_IN_PAGE),
    ("queue", "GET"): row(SIGNED_IN_PAGE),  # marketing is sent on to the leads list
    ("queue", "POST"): row(SIGNED_IN_PAGE),
    ("saved-filter-save", "POST"): row(SIGNED_IN_PAGE),
    ("saved-filter-delete", "POST"): row(SIGNED_IN_PAGE, "saved_filter"),  # deletes only one's own
    ("leads-list", "GET"): row(SIGNED_IN_PAGE),
    ("leads-list", "POST"): row(SIGNED_IN_PAGE),
    ("lead-detail", "GET"): row(SIGNED_IN_PAGE, "lead"),
    ("lead-detail", "POST"): row(SIGNED_IN_PAGE, "lead"),
    ("lead-claim", "POST"): row(SALES_PAGE, "lead"),
    ("lead-log", "POST"): row(SALES_PAGE, "lead", {"type": "note", "note": "matrix"}),
    ("lead-move", "POST"): [row(SALES_PAGE, "lead", TO_SQL), row(SIGNED_IN_PAGE, "lead", TO_DQ)],
    ("lead-bant", "POST"): row(SALES_PAGE, "lead"),
    ("lead-opportunity", "POST"): row(SALES_PAGE, "lead"),
    ("import", "GET"): row(MARKETING_PAGE),
    ("import", "POST"): row(MARKETING_PAGE),
    # Marketing's own import and an admin's: an importer sees their own, admins every one.
    ("import-detail", "GET"): IMPORT_JOB_RULES,
    ("import-detail", "POST"): IMPORT_JOB_RULES,
    ("import-progress", "GET"): IMPORT_JOB_RULES,
    ("import-progress", "POST"): IMPORT_JOB_RULES,
    ("import-errors", "GET"): IMPORT_JOB_RULES,
    ("import-errors", "POST"): IMPORT_JOB_RULES,
    ("lead-task-add", "POST"): row(SIGNED_IN_PAGE, "lead"),
    # the lead page's Privacy panel: export download and erasure (unconfirmed: back to the page)
    ("lead-privacy-export", "GET"): row(MARKETING_PAGE, "lead"),
    ("lead-privacy-erase", "POST"): row(MARKETING_PAGE, "lead"),
    ("notifications", "GET"): row(SIGNED_IN_PAGE),
    ("notifications", "POST"): row(SIGNED_IN_PAGE),
    ("task-done", "POST"): [row("login ok ok ok 404 404", "task_teammate"), row("login ok ok ok ok 404", "task_pool")],
    ("segments", "GET"): row(MARKETING_PAGE),
    ("segments", "POST"): row(MARKETING_PAGE),
    ("segment-count-preview", "POST"): row(MARKETING_PAGE),
    ("segment-from-list", "POST"): row(MARKETING_PAGE),
    ("segment-detail", "GET"): row(MARKETING_PAGE, "segment"),
    ("segment-detail", "POST"): row(MARKETING_PAGE, "segment"),
    ("sequences", "GET"): row(MARKETING_PAGE),
    ("sequences", "POST"): row(MARKETING_PAGE),
    ("sequence-detail", "GET"): row(MARKETING_PAGE, "sequence"),
    ("sequence-detail", "POST"): row(MARKETING_PAGE, "sequence"),
    ("sequence-steps", "POST"): row(MARKETING_PAGE, "sequence"),
    # enrolling by hand: every role that sees the lead (its page, the queue, the leads list)
    ("sequence-enroll-lead", "GET"): row(SIGNED_IN_PAGE, "lead"),
    ("sequence-enroll-lead", "POST"): row(SIGNED_IN_PAGE, "lead"),
    ("sequence-enroll-leads", "POST"): row(SIGNED_IN_PAGE),
    ("sequence-enrollment-stop", "POST"): [
        row("login ok ok ok ok 404", "enrollment_pool"),
        row("login ok ok ok 404 404", "enrollment_teammate"),
    ],
    # --- capture: marketing's forms and review; the public form pages (by site key) ---
    ("capture-forms", "GET"): row(MARKETING_PAGE),
    ("capture-forms", "POST"): row(MARKETING_PAGE),
    ("capture-form-detail", "GET"): row(MARKETING_PAGE, "capture_form"),
    ("capture-form-detail", "POST"): row(MARKETING_PAGE, "capture_form"),
    ("capture-submissions", "GET"): row(MARKETING_PAGE),
    ("capture-submissions", "POST"): row(MARKETING_PAGE),
    ("capture-hosted", "GET"): row(PUBLIC, site_key=MATRIX_SITE_KEY),
    ("capture-submit", "POST"): row(PUBLIC, site_key=MATRIX_SITE_KEY),
    ("capture-thanks", "GET"): row(PUBLIC, site_key=MATRIX_SITE_KEY),
    ("capture-embed", "GET"): row(PUBLIC, site_key=MATRIX_SITE_KEY),
    ("capture-form-json", "GET"): row(PUBLIC, site_key=MATRIX_SITE_KEY),
    ("api:form-list", "GET"): row(MARKETING_API),
    ("api:form-list", "POST"): row(MARKETING_API),
    ("api:form-detail", "GET"): row(MARKETING_API, "capture_form"),
    ("api:form-detail", "PATCH"): row(MARKETING_API, "capture_form"),
    ("api:form-submission-list", "GET"): row(MARKETING_API),
    ("api:form-submission-review", "POST"): row(MARKETING_API, "capture_submission"),
    ("api:capture", "POST"): row(PUBLIC),  # no token needed (site key, origin, throttles)
    ("workflows", "GET"): row(MARKETING_PAGE),
    ("workflows", "POST"): row(MARKETING_PAGE),
    ("workflow-detail", "GET"): row(MARKETING_PAGE, "workflow"),
    ("workflow-detail", "POST"): row(MARKETING_PAGE, "workflow"),
    ("email-templates", "GET"): row(MARKETING_PAGE),
    ("email-templates", "POST"): row(MARKETING_PAGE),
    ("email-template-edit", "GET"): row(MARKETING_PAGE, "email_template"),
    ("email-template-edit", "POST"): row(MARKETING_PAGE, "email_template"),
    ("email-template-preview", "POST"): row(MARKETING_PAGE, "email_template"),
    ("email-template-test", "POST"): row(MARKETING_PAGE, "email_template"),
    ("sender-identity-add", "POST"): row(MARKETING_PAGE),
    ("topic-add", "POST"): row(MARKETING_PAGE),
    ("email-performance", "GET"): row(SIGNED_IN_PAGE),  # the dashboard's panel: messages of the leads one sees
    ("scoring", "GET"): row(MARKETING_PAGE),
    ("scoring", "POST"): row(MARKETING_PAGE),
    ("team", "GET"): row(MANAGERS_PAGE),
    ("team", "POST"): row(MANAGERS_PAGE),
    ("team-reassign", "POST"): row(MANAGERS_PAGE),
    # A seller of the manager's team, one of another team.
    # A seller of the manager's team, one of team B (the form names the team: "@team_b" is
    # its id).
    ("team-seller", "POST"): [
        row(MANAGERS_PAGE, "user", {"team": "@team"}),
        row("login ok 403 404 403 403", "user_b", {"team": "@team_b"}),
    ],
}


# --- the coverage of the table --------------------------------------------------------------


def test_every_operation_has_a_rule():
    missing = [op for op in OPERATIONS if op.key not in RULES]
    assert not missing, "\n".join(
        f"new endpoint {op.method} /{op.route} ({op.name}) has no rule in the authorisation matrix "
        f"(tests/authz/test_matrix.py RULES)"
        for op in missing
    )


def test_every_rule_names_an_operation():
    served = {op.key for op in OPERATIONS}
    stale = [key for key in RULES if key not in served]
    assert not stale, "\n".join(
        f"the authorisation matrix has a rule for {method} {name}, which the URL conf no longer serves"
        for name, method in stale
    )


def rules_of(op: Operation) -> list[Rule]:
    rules = RULES.get(op.key, [])
    return rules if isinstance(rules, list) else [rules]


def test_every_rule_fills_the_path_parameters():
    for op in OPERATIONS:
        for rule in rules_of(op):
            filled = {"pk"} if rule.target else set()
            assert set(op.params) == filled | {k for k, _ in rule.params}, op


# --- the world: built once for the module, each case rolled back to it ----------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Teams A and B, one caller per role, one lead per relation and one of each object the
    URLs name. Built inside a transaction rolled back at the end of the module; each test's
    own transaction (pytest-django) is a savepoint inside it."""
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            # Before the function-scoped fixtures: make the fast hasher of tests/conftest.py ours.
            with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
                built = _build_world()
            yield built
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _build_world() -> SimpleNamespace:
    now = timezone.now()
    team_a, team_b = TeamFactory(name="Matrix A"), TeamFactory(name="Matrix B")
    users = {
        "admin": UserFactory(role=Role.ADMIN, username="m_admin"),
        "marketing": UserFactory(role=Role.MARKETING, username="m_marketing"),
        "manager": UserFactory(role=Role.MANAGER, username="m_manager", team=team_a),
        "sdr": UserFactory(role=Role.SDR, username="m_sdr", team=team_a),
        "partner": UserFactory(role=Role.SDR, username="m_partner"),
        "inactive": UserFactory(role=Role.SDR, username="m_inactive", team=team_a),
    }
    teammate = UserFactory(role=Role.SDR, username="m_teammate", team=team_a)
    other = UserFactory(role=Role.SDR, username="m_other", team=team_b)
    UserFactory(role=Role.MANAGER, username="m_manager_b", team=team_b)
    team_a.manager = users["manager"]
    team_a.save()
    partner = Partner.objects.create(name="Matrix partner", user=users["partner"])

    shared = {
        "teammate": LeadFactory(owner=teammate, email="matrix-teammate@leads.example"),
        "pool": LeadFactory(team=team_a, email="matrix-pool@leads.example"),
        "other_team": LeadFactory(owner=other, email="matrix-other-team@leads.example"),
        "no_team": LeadFactory(email="matrix-no-team@leads.example"),
        "partner": LeadFactory(owner=users["partner"], email="matrix-partner@leads.example"),
    }
    offer = PartnerOffer.objects.create(
        lead=shared["partner"], partner=partner, offered_at=now, deadline=now + dt.timedelta(days=2)
    )
    own = {
        role: LeadFactory(owner=user, email=f"matrix-own-{role}@leads.example")
        for role, user in users.items()
        if role != "partner"
    }
    placed = {**{f"own-{role}": lead for role, lead in own.items()}, **shared}
    for lead in placed.values():  # an audited edit each, labelled with the lead's e-mail
        audit.record(actor=Actor.automation(), action="lead.update", target=lead, changes={"city": ["Paris", "Lyon"]})
    own["partner"] = shared["partner"]
    leads = {role: {"own": own[role], **shared} for role in CALLERS if role != "anonymous"} | {
        "anonymous": {"own": shared["teammate"], **shared}
    }
    for lead in {lead.pk: lead for by_role in leads.values() for lead in by_role.values()}.values():
        OpportunityFactory(lead=lead)  # so that GET .../opportunity/ answers 200 when allowed

    ruleset = RuleSet.objects.create(version=1, name="Matrix rules")
    job = imports.import_job_create(data=b"email\nmatrix@example.com\n", filename="m.csv", user=users["marketing"])
    objects = {
        "user": teammate,
        "user_b": other,
        "team": team_a,
        "team_b": team_b,
        "ruleset": ruleset,
        "fit_rule": FitRule.objects.create(ruleset=ruleset, field="industry", operator="equals", value="x", points=5),
        "routing_rule": RoutingRule.objects.create(name="Matrix rule", team=team_a),
        "routing_rule_b": RoutingRule.objects.create(name="Matrix rule B", team=team_b),
        "territory": Territory.objects.create(name="Matrix land", countries=["FR"]),
        "partner": partner,
        "sla_policy": SlaPolicy.objects.create(name="Matrix SLA", minutes_to_first_touch=60),
        "offer": offer,
        "import_job": job,
        "import_job_admin": imports.import_job_create(
            data=b"email\nadmin@example.com\n", filename="a.csv", user=users["admin"]
        ),
        "saved_filter": SavedFilter.objects.create(user=users["sdr"], name="mine", query="stage=MQL"),
        "job_admin": Job.objects.create(kind="routing.route", created_by=users["admin"]),
        "job_mine": Job.objects.create(kind="scoring.rescore", created_by=users["marketing"]),
        "segment": Segment.objects.create(name="Matrix list", kind="static"),
        "workflow": Workflow.objects.create(
            name="Matrix flow", trigger={"inactive_days": 3}, actions=[{"type": "route"}]
        ),
        "email_template": EmailTemplate.objects.create(name="Matrix mail", subject="Hi", text="Hello"),
        "sender_identity": SenderIdentity.objects.create(name="Matrix sender", from_email="matrix@corp.example"),
        "task_teammate": Task.objects.create(lead=shared["teammate"], assignee=teammate, due_at=now),
        "task_pool": Task.objects.create(lead=shared["pool"], due_at=now),
        **_sequence_objects(shared, now),
        **_capture_objects(now),
        **_integration_objects(users["admin"], shared["pool"], now),
    }
    PredictiveModel.objects.create(version=1, algorithm="matrix", auc=0.5, blob=b"")
    tokens = {role: Token.objects.create(user=user).key for role, user in users.items()}
    sessions = {}
    for role, user in users.items():  # one login per role, reused by every page case
        client = Client()
        client.force_login(user)
        sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    users["inactive"].is_active = False
    users["inactive"].save(update_fields=["is_active"])
    return SimpleNamespace(users=users, leads=leads, placed=placed, objects=objects, tokens=tokens, sessions=sessions)


def _sequence_objects(shared: dict, now) -> dict:
    """A sequence, and an enrollment of the pool's lead and of a teammate's lead in it."""
    from nurturing.models import Enrollment, Sequence, SequenceVersion

    sequence = Sequence.objects.create(name="Matrix sequence")
    version = SequenceVersion.objects.create(sequence=sequence, number=1, steps=[{"type": "notify_owner"}])
    sequence.current_version = version
    sequence.save(update_fields=["current_version"])

    def enrolled(lead):
        return Enrollment.objects.create(sequence=sequence, version=version, lead=lead, cursor=[0], enrolled_at=now)

    return {
        "sequence": sequence,
        "enrollment_pool": enrolled(shared["pool"]),
        "enrollment_teammate": enrolled(shared["teammate"]),
    }


def _capture_objects(now) -> dict:
    """A capture form with a known site key (its public pages), and a held submission."""
    from capture.models import Submission, SubmissionStatus
    from tests.factories import CaptureFormFactory

    form = CaptureFormFactory(name="Matrix form", site_key=MATRIX_SITE_KEY)
    held = Submission.objects.create(form=form, status=SubmissionStatus.HELD, reason="honeypot", created_at=now)
    return {"capture_form": form, "capture_submission": held}


def _integration_objects(admin, lead, now) -> dict:
    """An API key, a webhook subscription and one of its deliveries (integrations)."""
    from integrations.models import ApiKey, Delivery
    from tests.factories import WebhookFactory

    webhook = WebhookFactory(owner=admin, url="https://93.184.215.14/matrix")
    delivery = Delivery.objects.create(
        webhook=webhook, lead=lead, event="lead.created", key="matrix", msg_id="msg_matrix", body="{}",
        ordered_at=now, next_attempt_at=now, window_start=now, created_at=now,
    )  # fmt: skip
    key = ApiKey.objects.create(
        name="Matrix key", prefix="lcrm_matrix0", hashed_key="0" * 64, scopes=["read"], user=admin
    )
    return {"api_key": key, "webhook": webhook, "webhook_delivery": delivery}


# --- the matrix -----------------------------------------------------------------------------


def _cases():
    for op in OPERATIONS:  # one with no rule: test_every_operation_has_a_rule names it
        rules = rules_of(op)
        for rule in rules:
            on = f" {rule.target}" + (f" {rule.body['to']}" if rule.body and "to" in rule.body else "")
            on = on if len(rules) > 1 else ""
            for role in CALLERS:
                for relation in _relations(rule, role):
                    yield pytest.param(
                        op,
                        rule,
                        role,
                        relation,
                        id=f"{op.method} {op.name}{on} {role}" + (f" {relation}" if relation else ""),
                    )


def _relations(rule: Rule, role: str) -> tuple[str | None, ...]:
    """Every relation for an operation on a lead; one for an anonymous caller (it sees no
    lead, so the relation changes nothing; an inactive user is tried on its own lead) and
    none twice for the partner's login (its own leads are the ones offered to it)."""
    if not rule.on_lead:
        return (None,)
    if role == "anonymous":
        return ("other_team",)
    if role == "inactive":
        return ("own",)
    if role == "partner":
        return tuple(r for r in RELATIONS if r != "own")
    return RELATIONS


def _expected(op: Operation, rule: Rule, role: str, relation: str | None):
    answer = rule.answers["anonymous" if role == "inactive" else role]
    if role == "inactive" and op.is_api:
        return 401  # a refused token is refused, even where no token is needed (DRF)
    if answer not in (401, LOGIN) and rule.on_lead and relation not in VISIBLE[role]:
        return 404
    return answer


def _answer(op: Operation, response) -> object:
    code = response.status_code
    if code in (301, 302, 303, 307, 308):
        login = resolve_url(settings.LOGIN_URL)
        location = response["Location"]
        return LOGIN if location.startswith(login) and "next=" in location else OK
    if code == 400 or code == 409 or 200 <= code < 300:
        return OK
    return code


@pytest.fixture(scope="module")
def clients():
    """One client per kind for the module: a new test client loads the middleware again, and
    WhiteNoise's walks every static file then (~35 ms, most of a case's time)."""
    return {"api": APIClient(), "page": Client()}


_addresses = (f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}" for n in itertools.count(random.randrange(1 << 23)))


def _call(world, clients, op: Operation, rule: Rule, role: str, pk: int | None):
    kwargs = dict(rule.params)
    if pk is not None:
        kwargs["pk"] = pk
    url = reverse(op.name, kwargs=kwargs)
    client = clients["api" if op.is_api else "page"]
    client.cookies.clear()
    if op.is_api:
        # Its own client address, so that a refused token (the inactive user's) spends a
        # quota of its own (leadcrm.authentication) and never one another test uses.
        client.credentials(REMOTE_ADDR=next(_addresses))
    if role != "anonymous":
        if op.is_api:
            client.credentials(HTTP_AUTHORIZATION=f"Token {world.tokens[role]}", REMOTE_ADDR=next(_addresses))
        else:
            client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    body = {k: _resolved(world, v) for k, v in (rule.body or {}).items()}
    call = getattr(client, op.method.lower())
    if op.method == "GET":
        return call(url)
    if op.is_api:
        return call(url, body, format="json")
    return call(url, body)  # a form post, as the pages send


def _resolved(world, value):
    """ "@name" in a body: the id of that world object."""
    if isinstance(value, str) and value.startswith("@"):
        return world.objects[value[1:]].pk
    return value


@pytest.mark.django_db
@pytest.mark.parametrize(("op", "rule", "role", "relation"), list(_cases()))
def test_matrix(world, clients, op: Operation, rule: Rule, role: str, relation: str | None):
    if rule.on_lead:
        pk = world.leads[role][relation].pk
    elif rule.target == "self":
        pk = world.users.get(role, world.objects["user"]).pk
    else:
        pk = world.objects[rule.target].pk if rule.target else None
    response = _call(world, clients, op, rule, role, pk)
    expected = _expected(op, rule, role, relation)
    got = _answer(op, response)
    assert got == expected, (
        f"{op.method} {response.request['PATH_INFO']} as {role}"
        + (f" on a lead ({relation})" if relation else "")
        + f": expected {expected}, got {response.status_code} {response.content[:300]!r}"
    )
    if got == OK:
        leaked = [email for email in _unseen_emails(world, role) if email.encode() in response.content]
        assert not leaked, f"{op.method} {response.request['PATH_INFO']} as {role} shows leads it cannot see: {leaked}"


def _unseen_emails(world, role: str) -> list[str]:
    """The e-mails of the world's leads this caller may not see, by SEES."""
    if SEES[role] == "*":
        return []
    return sorted(lead.email for name, lead in world.placed.items() if name not in SEES[role])


def test_sees_agrees_with_visible(world):
    """The two statements of the SPEC rule (by relation, by placement) say the same."""
    for role, relations in VISIBLE.items():
        if SEES[role] == "*":
            continue
        seen = {world.placed[name].pk for name in SEES[role]}
        for relation in RELATIONS:
            assert (world.leads[role][relation].pk in seen) is (relation in relations), (role, relation)


LEAD_OPERATIONS = [
    pytest.param(
        op, rule, id=f"{op.method} {op.name}" + (f" {rule.body['to']}" if rule.body and "to" in rule.body else "")
    )
    for op in OPERATIONS
    for rule in rules_of(op)
    if rule.on_lead
]


@pytest.mark.django_db
@pytest.mark.parametrize(("op", "rule"), LEAD_OPERATIONS)
def test_a_lead_out_of_sight_answers_as_a_missing_one(world, clients, op: Operation, rule: Rule):
    """Another team's lead and an id that was never used answer alike (status and body): the
    answer tells nothing of the lead's existence."""
    hidden = world.leads["sdr"]["other_team"].pk
    missing = max(lead.pk for by_role in world.leads.values() for lead in by_role.values()) + 1000
    a = _call(world, clients, op, rule, "sdr", hidden)
    b = _call(world, clients, op, rule, "sdr", missing)
    assert a.status_code == b.status_code == 404
    assert _normalised(a.content, hidden) == _normalised(b.content, missing)


def _normalised(content: bytes, pk: int) -> bytes:
    """Without what differs from one request to the next anyway (the id asked, the masked
    CSRF token of the page)."""
    return re.sub(rb"[A-Za-z0-9]{32,}", b"TOKEN", content.replace(str(pk).encode(), b"ID"))

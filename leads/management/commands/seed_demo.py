"""`python manage.py seed_demo [--leads N]`: a realistic demo company in one command.

Nordlys Software, a B2B vendor of CRM, analytics and customer-support software, selling
in France and EMEA: two inside-sales teams, their managers and SDRs, marketing, an admin,
and N leads (3,000 by default) spread over the last 90 days across every lifecycle stage
with funnel proportions, each with its history (stage changes along the moves that
`leads.lifecycle` allows, assignments, BANT, offers) and its touchpoints.

This command is the one sanctioned exception to "every write goes through
`leads.services`": it is demo-data generation, so it writes rows with `bulk_create`
(3,000 leads and ~30,000 touchpoints in seconds, even on SQLite), back-dates them, and
emits no domain event for them (no webhook, scoring or routing runs on the history). Every
stage path it writes is checked against `leads.lifecycle.ALLOWED_MOVES` / `SKIP_RULES` before anything is saved.

It then configures the company the way an admin would, through the services (so the rules
are validated exactly as in the admin): an active scoring rule set for the default group
(`scoring.services.ruleset_create` / `rule_create` / `ruleset_activate`), with which every
lead is rescored set-based and synchronously (`leads_rescore_all`: MCL leads crossing the
threshold are promoted to MQL with their StageChange row and routed at once), and the
routing configuration (`routing.services`: settings, territories, a partner reseller with
its login, ordered rules, SLA policies per grade, sellers' languages and skills).

Idempotent: when a user "admin" exists it prints "demo data already present" and stops.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import unicodedata
from collections import Counter
from contextlib import contextmanager
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from faker import Faker
from rest_framework.authtoken.models import Token

from accounts.models import Role, Team, User
from leadcrm.actors import Actor, ActorType
from leads import lifecycle
from leads.models import (
    CLOSED_STAGES,
    Assignment,
    Bant,
    Company,
    ConsentStatus,
    Grade,
    Lead,
    Opportunity,
    OpportunityStatus,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
    Visitor,
)
from routing import services as routing_services
from routing.models import Partner, SlaPolicy, Territory
from scoring import services as scoring_services

SEED = 20240917
S = Stage
SITE = "https://www.nordlys-software.example"
STAFF_DOMAIN = "nordlys-software.example"

# --- people -----------------------------------------------------------------------------

TEAMS = {
    "Inside Sales FR": {"manager": "manager", "timezone": "Europe/Paris", "countries": {"FR", "BE", "CH"}},
    "Inside Sales EMEA": {"manager": "manager2", "timezone": "Europe/London", "countries": None},
}
# username, password, role, team, first name, last name, routing weight
USERS = (
    ("admin", "admin123!", Role.ADMIN, None, "Camille", "Durand", 1),
    ("marketing", "demo1234!", Role.MARKETING, None, "Julie", "Moreau", 1),
    ("manager", "demo1234!", Role.MANAGER, "Inside Sales FR", "Thomas", "Lefebvre", 1),
    ("manager2", "demo1234!", Role.MANAGER, "Inside Sales EMEA", "Sarah", "Collins", 1),
    ("sdr1", "demo1234!", Role.SDR, "Inside Sales FR", "Lucas", "Bernard", 2),
    ("sdr2", "demo1234!", Role.SDR, "Inside Sales FR", "Emma", "Petit", 1),
    ("sdr3", "demo1234!", Role.SDR, "Inside Sales EMEA", "Oliver", "Hughes", 1),
    ("sdr4", "demo1234!", Role.SDR, "Inside Sales EMEA", "Hannah", "Weber", 1),
)
# Marketing works in the admin: it edits leads, companies, BANT and offers, and reads the
# audit trail (stage changes, assignments, touchpoints, visitors) and who is who.
MARKETING_PERMS = {
    "leads": {
        "company": ("view", "add", "change"),
        "lead": ("view", "add", "change"),
        "bant": ("view", "add", "change"),
        "opportunity": ("view", "change"),
        "touchpoint": ("view",),
        "visitor": ("view",),
        "stagechange": ("view",),
        "assignment": ("view",),
    },
    "accounts": {"user": ("view",), "team": ("view",)},
}

# --- markets and profiles -----------------------------------------------------------------

COUNTRIES = {  # weight, name locale, cities, E.164 prefix + digits, TLD, currency
    "FR": (
        38,
        "fr_FR",
        (
            "Paris",
            "Lyon",
            "Marseille",
            "Toulouse",
            "Nantes",
            "Lille",
            "Bordeaux",
            "Rennes",
            "Strasbourg",
            "Montpellier",
        ),
        ("+336", 8),
        "fr",
        "EUR",
    ),
    "GB": (
        14,
        "en_GB",
        ("London", "Manchester", "Birmingham", "Leeds", "Bristol", "Edinburgh", "Glasgow"),
        ("+447", 9),
        "co.uk",
        "GBP",
    ),
    "DE": (
        10,
        "en_GB",
        ("Berlin", "Munich", "Hamburg", "Frankfurt", "Cologne", "Stuttgart", "Düsseldorf"),
        ("+4915", 9),
        "de",
        "EUR",
    ),
    "BE": (8, "fr_FR", ("Brussels", "Antwerp", "Ghent", "Liège", "Namur"), ("+324", 8), "be", "EUR"),
    "ES": (7, "en_GB", ("Madrid", "Barcelona", "Valencia", "Seville", "Bilbao"), ("+346", 8), "es", "EUR"),
    "CH": (6, "fr_FR", ("Geneva", "Zurich", "Lausanne", "Basel", "Bern"), ("+417", 8), "ch", "CHF"),
    "NL": (5, "en_GB", ("Amsterdam", "Rotterdam", "Utrecht", "Eindhoven"), ("+316", 8), "nl", "EUR"),
    "US": (6, "en_GB", ("New York", "Boston", "Chicago", "San Francisco", "Austin"), ("+1617", 7), "com", "USD"),
    "IT": (6, "en_GB", ("Milan", "Rome", "Turin", "Bologna"), ("+393", 9), "it", "EUR"),
}
INDUSTRIES = {  # weight, in the ideal customer profile
    "Software": (14, True),
    "Financial services": (10, True),
    "Retail": (11, True),
    "Manufacturing": (12, True),
    "Logistics": (8, True),
    "Healthcare": (8, False),
    "Consulting": (9, False),
    "Education": (6, False),
    "Public sector": (5, False),
    "Energy": (5, False),
    "Media": (5, False),
    "Telecommunications": (5, False),
}
SIZES = ((8, 5, 49), (30, 50, 249), (30, 250, 999), (20, 1000, 4999), (12, 5000, 40000))  # weight, min, max
TITLES = (  # title, seniority, weight
    ("CEO", "exec", 3),
    ("Directeur général", "exec", 3),
    ("CMO", "exec", 2),
    ("CTO", "exec", 2),
    ("Head of Marketing", "head", 5),
    ("Directrice marketing", "head", 4),
    ("Sales Director", "head", 4),
    ("Head of Customer Service", "head", 3),
    ("Directeur commercial", "head", 3),
    ("Marketing Manager", "manager", 8),
    ("Responsable marketing digital", "manager", 7),
    ("Chef de projet CRM", "manager", 5),
    ("IT Manager", "manager", 5),
    ("Customer Success Manager", "manager", 4),
    ("Marketing Assistant", "staff", 5),
    ("Business Developer", "staff", 5),
    ("Chargée de communication", "staff", 4),
    ("Consultant", "staff", 3),
    ("Student", "student", 2),
    ("Stagiaire marketing", "student", 2),
)
SENIORITY_FIT = {"exec": 25, "head": 20, "manager": 12, "staff": 4, "student": 0}
COUNTRY_FIT = {"FR": 20, "BE": 20, "CH": 15, "GB": 15, "DE": 10, "NL": 8, "ES": 6, "IT": 6, "US": 0}
FREE_MAIL = ("gmail.com", "outlook.com", "orange.fr", "yahoo.fr", "hotmail.com")
LEGAL_WORDS = {
    "sa",
    "sas",
    "sarl",
    "s",
    "a",
    "r",
    "l",
    "ltd",
    "plc",
    "llp",
    "and",
    "sons",
    "et",
    "fils",
    "group",
    "inc",
    "ets",
    "de",
    "la",
    "le",
    "les",
    "du",
    "des",
    "the",
    "s.a",
    "snc",
    "eurl",
}

SOURCES = {  # weight, utm_source, utm_medium, campaigns
    "seo": (26, "", "", ()),
    "google-ads": (18, "google", "cpc", ("brand-fr", "crm-generic-emea", "analytics-b2b", "competitor-conquest")),
    "linkedin-ads": (12, "linkedin", "paid-social", ("abm-retail-2025", "crm-decision-makers", "support-leadgen")),
    "trade-fair": (9, "salon", "offline", ("vivatech-2025", "salon-e-marketing-paris", "dmexco-2025")),
    "webinar": (10, "webinar", "event", ("webinar-scoring-101", "webinar-crm-ia", "webinar-support-omnicanal")),
    "partner": (8, "partner", "referral", ("partner-axelor-consulting", "partner-digitalfirst")),
    "emailing": (17, "newsletter", "email", ("newsletter-monthly", "nurturing-crm", "nurturing-analytics")),
}
PRODUCTS = {
    "crm": (45, "/produits/crm", 18000),
    "analytics": (30, "/products/analytics", 32000),
    "support": (25, "/produits/support", 12000),
}
PAGES = (
    "/",
    "/blog/lead-scoring-guide",
    "/blog/mql-vs-sql",
    "/blog/rgpd-marketing-b2b",
    "/clients",
    "/ressources",
    "/integrations",
    "/blog/pipeline-velocity",
    "/a-propos",
    "/careers",
)
DOWNLOADS = (
    "livre-blanc-lead-scoring.pdf",
    "guide-rgpd-b2b.pdf",
    "benchmark-crm-2025.pdf",
    "analytics-roi-calculator.xlsx",
    "support-omnichannel-checklist.pdf",
)
WEBINARS = ("webinar-scoring-101", "webinar-crm-ia", "webinar-support-omnicanal")

# --- the funnel --------------------------------------------------------------------------

# Share of leads by their current stage, best first: the ranking of leads (fit + noise)
# hands the best leads the deepest stages.
STAGE_MIX = (
    (S.WO, 0.045),
    (S.CO, 0.04),
    (S.LOST, 0.03),
    (S.SAL, 0.05),
    (S.SQL, 0.07),
    (S.RECYCLED, 0.055),
    (S.MQL, 0.16),
    (S.MCL, None),
    (S.DISQUALIFIED, 0.105),
)
TOUCHES = {S.MCL: 6, S.MQL: 11, S.SQL: 14, S.SAL: 16, S.CO: 18, S.WO: 20, S.LOST: 17, S.RECYCLED: 13, S.DISQUALIFIED: 5}
TOUCH_WEIGHTS = {  # early, engaged (SQL and beyond)
    "page_view": (38, 28),
    "email_open": (22, 18),
    "email_click": (10, 10),
    "download": (9, 9),
    "pricing_view": (6, 16),
    "webinar": (4, 8),
    "demo_request": (1, 4),
}
ENGAGEMENT_POINTS = {
    "page_view": 1,
    "email_open": 1,
    "email_click": 3,
    "download": 6,
    "pricing_view": 8,
    "webinar": 10,
    "demo_request": 25,
    "form_submit": 5,
}
HALF_LIFE_DAYS = 30
LOST_REASONS = (
    "Chose a competitor (HubSpot)",
    "Chose a competitor (Salesforce)",
    "No budget after all",
    "Project postponed to next year",
    "Price too high",
    "No decision: project abandoned",
)
DISQUALIFY_REASONS = {
    "early": (
        "Student",
        "Competitor",
        "Invalid e-mail / fake data",
        "Out of target: company too small",
        "Job seeker",
        "Duplicate contact",
    ),
    "late": (
        "No real project",
        "Out of target: needs an on-premise product",
        "Reseller, not an end customer",
        "Contact left the company",
    ),
}
RECYCLE_REASONS = (
    "Not now: budget planned next year",
    "Too early: still comparing tools",
    "No project before Q3",
    "Rejected by sales: no decision maker reached",
)

# --- scoring rules (the admin's rule set v1: fit out of ~50, engagement out of ~50) --------

ICP_INDUSTRIES = [name for name, (_w, icp) in INDUSTRIES.items() if icp]
EU_COUNTRIES = ["FR", "BE", "DE", "ES", "IT", "NL", "LU", "AT", "PT", "IE", "DK", "SE", "FI", "PL"]
SCORING_RULESET = {
    "name": "Nordlys B2B v1",
    "description": "Fit: ideal customer profile (industry, size, seniority, market). "
    "Engagement: buying signals, capped per 30 days, decaying.",
    "mql_threshold": 50,
    "grade_a_min": 38,
    "grade_b_min": 28,
    "grade_c_min": 16,
    "fit_rules": [
        {"name": "Target industry", "field": "industry", "operator": "in", "value": ICP_INDUSTRIES, "points": 12},
        {
            "name": "Mid-market (50-999)",
            "field": "company_size",
            "operator": "range",
            "value": {"min": 50, "max": 999},
            "points": 12,
        },
        {
            "name": "Large (1,000-4,999)",
            "field": "company_size",
            "operator": "range",
            "value": {"min": 1000, "max": 4999},
            "points": 9,
        },
        {
            "name": "Enterprise (5,000+)",
            "field": "company_size",
            "operator": "range",
            "value": {"min": 5000},
            "points": 4,
        },
        {"name": "C-level", "field": "job_title", "operator": "in", "value": ["CEO", "CTO", "CMO"], "points": 12},
        {"name": "Head of", "field": "job_title", "operator": "contains", "value": "head", "points": 10},
        {"name": "Director", "field": "job_title", "operator": "contains", "value": "director", "points": 10},
        {"name": "Directeur", "field": "job_title", "operator": "contains", "value": "directeur", "points": 10},
        {"name": "Directrice", "field": "job_title", "operator": "contains", "value": "directrice", "points": 10},
        {"name": "Manager", "field": "job_title", "operator": "contains", "value": "manager", "points": 5},
        {"name": "Responsable", "field": "job_title", "operator": "contains", "value": "responsable", "points": 5},
        {
            "name": "Core market (FR/BE/CH)",
            "field": "country",
            "operator": "in",
            "value": ["FR", "BE", "CH"],
            "points": 5,
        },
        {"name": "EU country", "field": "country", "operator": "in", "value": EU_COUNTRIES, "points": 4},
        {"name": "Named a product", "field": "properties.product_interest", "operator": "exists", "points": 3},
        {"name": "Student", "field": "job_title", "operator": "contains", "value": "student", "points": -15},
        {"name": "Intern", "field": "job_title", "operator": "contains", "value": "stagiaire", "points": -15},
        {"name": "Unsubscribed", "field": "consent_status", "operator": "equals", "value": "opt_out", "points": -5},
    ],
    "engagement_rules": [
        {
            "name": "Pricing page",
            "event_type": "pricing_view",
            "url_pattern": r"/(pricing|tarifs)",
            "points": 6,
            "cap": 18,
            "cap_period_days": 30,
            "half_life_days": 21,
        },
        {"name": "Demo request", "event_type": "demo_request", "points": 25, "cap": 25, "half_life_days": 90},
        {
            "name": "Download",
            "event_type": "download",
            "points": 5,
            "cap": 15,
            "cap_period_days": 30,
            "half_life_days": 45,
        },
        {
            "name": "Webinar attended",
            "event_type": "webinar",
            "property_key": "attended",
            "property_value": True,
            "points": 8,
            "cap": 16,
            "cap_period_days": 30,
            "half_life_days": 60,
        },
        {
            "name": "E-mail click",
            "event_type": "email_click",
            "points": 3,
            "cap": 12,
            "cap_period_days": 30,
            "half_life_days": 30,
        },
        {
            "name": "E-mail open",
            "event_type": "email_open",
            "points": 1,
            "cap": 4,
            "cap_period_days": 30,
            "half_life_days": 30,
        },
        {
            "name": "Page view",
            "event_type": "page_view",
            "points": 1,
            "cap": 10,
            "cap_period_days": 30,
            "half_life_days": 30,
        },
        {"name": "Form submitted", "event_type": "form_submit", "points": 3, "cap": 6, "half_life_days": 60},
    ],
}
# Added with `rule_create` after the set, as an admin would: negative signals.
NEGATIVE_ENGAGEMENT_RULES = (
    {
        "name": "E-mail bounced",
        "event_type": "custom",
        "property_key": "event",
        "property_value": "email_bounced",
        "points": -10,
        "cap": 10,
    },
    {
        "name": "Unsubscribed",
        "event_type": "custom",
        "property_key": "event",
        "property_value": "unsubscribed",
        "points": -15,
        "cap": 15,
    },
)

# --- routing (territories, partner, rules, SLA per grade, sellers' profiles) ---------------

TERRITORIES = {
    "French-speaking": ["FR", "BE", "CH"],
    "Southern Europe": ["ES", "IT", "PT"],
    "EMEA": ["GB", "DE", "ES", "IT", "NL", "AT", "PT", "IE", "LU", "DK", "SE", "FI", "PL"],
}
PARTNER = {
    "name": "Iberia & Italia CRM Partners",
    "username": "partner",
    "password": "demo1234!",
    "first_name": "Marco",
    "last_name": "Rossi",
    "territories": ["Southern Europe"],
}
# position, name, conditions, target ("team:<name>" or "partner")
ROUTING_RULES = (
    (
        10,
        "Small companies in Southern Europe → partner reseller",
        {"region": ["Southern Europe"], "company_size_max": 49},
        "partner",
    ),
    (
        20,
        "French-speaking markets (FR/BE/CH) → Inside Sales FR",
        {"country": ["FR", "BE", "CH"]},
        "team:Inside Sales FR",
    ),
    (30, "EMEA → Inside Sales EMEA", {"region": ["EMEA"]}, "team:Inside Sales EMEA"),
    (1000, "Default: everything else → Inside Sales EMEA", {}, "team:Inside Sales EMEA"),
)
SLA_BY_GRADE = (  # grade, minutes to first touch (business hours), reassign after (more minutes)
    ("A", 60, 60),
    ("B", 4 * 60, 4 * 60),
    ("C", 24 * 60, None),
    ("D", 72 * 60, None),
)
SELLER_PROFILES = {
    "sdr1": {"languages": ["fr", "en"], "skills": ["crm", "analytics"]},
    "sdr2": {"languages": ["fr", "en", "de"], "skills": ["crm", "support"]},
    "sdr3": {"languages": ["en", "es"], "skills": ["analytics", "crm"]},
    "sdr4": {"languages": ["en", "de", "it"], "skills": ["support", "crm"]},
}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z]", "", _ascii(text))


def _pick(rng: random.Random, weighted: dict):
    keys = list(weighted)
    weights = [v[0] if isinstance(v, tuple) else v for v in weighted.values()]
    return rng.choices(keys, weights=weights)[0]


def _path_for(stage: str, rng: random.Random) -> list[str]:
    """A history that ends in `stage`, along allowed moves (and the demo-request skip)."""
    to_sql = [S.MCL, S.SQL] if rng.random() < 0.25 else [S.MCL, S.MQL, S.SQL]
    if stage == S.MCL:
        return [S.MCL]
    if stage == S.MQL:
        return [S.MCL, S.MQL, S.SQL, S.RECYCLED, S.MQL] if rng.random() < 0.12 else [S.MCL, S.MQL]
    if stage == S.SQL:
        return to_sql
    if stage == S.SAL:
        return [*to_sql, S.SAL]
    if stage in (S.CO, S.WO, S.LOST):
        return [*to_sql, S.SAL, S.CO] + ([] if stage == S.CO else [stage])
    if stage == S.RECYCLED:
        return [S.MCL, S.MQL, S.SQL, S.RECYCLED] if rng.random() < 0.65 else [S.MCL, S.MQL, S.SQL, S.SAL, S.RECYCLED]
    # Disqualified, mostly early.
    roll = rng.random()
    before = (
        [S.MCL]
        if roll < 0.55
        else [S.MCL, S.MQL]
        if roll < 0.8
        else [S.MCL, S.MQL, S.SQL]
        if roll < 0.92
        else [S.MCL, S.MQL, S.SQL, S.SAL]
    )
    return [*before, S.DISQUALIFIED]


def check_path(path: list[str]) -> None:
    """Refuse any path the lifecycle would refuse: the demo data must be a possible past."""
    if path[0] != S.MCL:
        raise CommandError(f"A history must start at MCL: {path}")
    for src, dst in zip(path, path[1:], strict=False):
        if dst not in lifecycle.ALLOWED_MOVES[src] and (src, dst) not in lifecycle.SKIP_RULES:
            raise CommandError(f"Seed bug: {src}→{dst} is not an allowed move ({path})")


def stage_counts(n: int) -> dict[str, int]:
    counts = {stage: (max(1, round(share * n)) if n >= 20 else int(share * n)) for stage, share in STAGE_MIX if share}
    counts[S.MCL] = n - sum(counts.values())  # about 44 %: the rest are MCL
    return counts


@contextmanager
def back_dated(*models):
    """Let bulk_create keep the dates set on the rows: `auto_now(_add)` would stamp them all
    with "now", and demo history spread over 90 days must keep its own dates."""
    switched = []
    for model in models:
        for field in model._meta.concrete_fields:
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                switched.append((field, field.auto_now, field.auto_now_add))
                field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in switched:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def grade_for(fit: int) -> str:
    return Grade.A if fit >= 75 else Grade.B if fit >= 55 else Grade.C if fit >= 35 else Grade.D


class Command(BaseCommand):
    help = "Create a demo company: teams, users with API tokens, and N leads with their history."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=3000, help="How many leads to create (default 3000).")

    def handle(self, *args, **options):
        n = options["leads"]
        if n < 0:
            raise CommandError("--leads must be positive.")
        if User.objects.filter(username="admin").exists():
            self.stdout.write("demo data already present")
            return
        clash = sorted(User.objects.filter(username__in=[u[0] for u in USERS]).values_list("username", flat=True))
        if clash:
            raise CommandError(f"Users {', '.join(clash)} exist but not 'admin': not a demo database, nothing done.")
        started = time.monotonic()
        self.rng = random.Random(SEED)
        Faker.seed(SEED)
        self.fake = Faker(["fr_FR", "en_GB"])
        self.now = timezone.now()
        self.threshold = SCORING_RULESET["mql_threshold"]  # the rule set's, which the seeded history follows
        with transaction.atomic():
            users, teams = self.create_people()
            summary = self.create_leads(n, users, teams)
            summary["routing"] = self.configure_routing(users, teams)
            summary["scoring"] = self.configure_scoring(users)
            for src, count in summary["scoring"]["moves"].items():  # the stages as they now are
                summary["stages"][src] -= count
                summary["stages"][S.MQL] += count
                summary["stage_changes"] += count
        self.print_summary(users, summary, time.monotonic() - started)

    # --- people ---------------------------------------------------------------------------

    def create_people(self) -> tuple[dict[str, User], dict[str, Team]]:
        hashes = {pw: make_password(pw) for pw in {u[1] for u in USERS}}  # one hash per password
        teams = {
            name: Team.objects.get_or_create(name=name, defaults={"timezone": t["timezone"]})[0]
            for name, t in TEAMS.items()
        }
        users: dict[str, User] = {}
        for username, password, role, team, first, last, weight in USERS:
            user = User(
                username=username,
                password=hashes[password],
                role=role,
                team=teams.get(team),
                first_name=first,
                last_name=last,
                email=f"{username}@{STAFF_DOMAIN}",
                is_staff=role in (Role.ADMIN, Role.MARKETING),
                is_superuser=role == Role.ADMIN,
                capacity=120 if role == Role.SDR else 50,
                weight=weight,
                date_joined=self.now - dt.timedelta(days=120),
            )
            user.save()
            users[username] = user
        for name, t in TEAMS.items():
            teams[name].manager = users[t["manager"]]
            teams[name].save(update_fields=["manager"])
        group, _ = Group.objects.get_or_create(name="Marketing")
        perms = []
        for app, models in MARKETING_PERMS.items():
            codenames = [f"{action}_{model}" for model, actions in models.items() for action in actions]
            perms += list(Permission.objects.filter(content_type__app_label=app, codename__in=codenames))
        group.permissions.set(perms)
        users["marketing"].groups.add(group)
        for user in users.values():
            user.token = Token.objects.get_or_create(user=user)[0].key
        return users, teams

    # --- leads ----------------------------------------------------------------------------

    def create_leads(self, n: int, users: dict[str, User], teams: dict[str, Team]) -> dict:
        rng, now = self.rng, self.now
        taken_domains = set(Company.objects.exclude(domain=None).values_list("domain", flat=True))
        taken_emails = set(Lead.objects.values_list("email", flat=True))
        companies = [self.make_company(taken_domains) for _ in range(max(1, n // 3))]
        sellers = {
            name: [u for u in users.values() if u.role == Role.SDR and u.team_id == team.pk]
            for name, team in teams.items()
        }

        # Profiles first; the best (fit + noise) get the deepest stages.
        specs = [self.make_profile(companies, taken_emails) for _ in range(n)]
        specs.sort(key=lambda s: s["fit"] + rng.gauss(0, 18), reverse=True)
        counts = stage_counts(n)
        queue = [stage for stage, _share in STAGE_MIX for _ in range(counts[stage])]
        for spec, stage in zip(specs, queue, strict=True):
            spec["stage"] = stage
            spec["path"] = _path_for(stage, rng)
            check_path(spec["path"])
        rng.shuffle(specs)

        leads, changes, assignments, bants, opportunities = [], [], [], [], []
        visitors, touchpoints = [], []
        for spec in specs:
            lead = self.build_lead(spec, users, teams, sellers)
            leads.append(lead)
            changes += spec["changes"]
            assignments += spec["assignments"]
            bants += spec["bant"]
            opportunities += spec["opportunity"]
            visitors += spec["visitors"]
            touchpoints += spec["touchpoints"]
        visitors += self.anonymous_visitors(touchpoints, max(10, n // 10))

        for tp in touchpoints:
            tp.created_at = tp.occurred_at
        with back_dated(Company, Lead, Assignment, Bant, Opportunity, Visitor, Touchpoint):
            for model, rows in (
                (Company, companies),
                (Lead, leads),
                (StageChange, changes),
                (Assignment, assignments),
                (Bant, bants),
                (Opportunity, opportunities),
                (Visitor, visitors),
                (Touchpoint, touchpoints),
            ):
                model.objects.bulk_create(rows, batch_size=2000)

        return {
            "companies": len(companies),
            "stages": Counter(lead.stage for lead in leads),
            "touchpoints": len(touchpoints),
            "stage_changes": len(changes),
            "assignments": len(assignments),
            "bant": len(bants),
            "opportunities": Counter(o.status for o in opportunities),
            "visitors": len(visitors),
            "now": now,
        }

    def make_company(self, taken: set[str]) -> Company:
        rng = self.rng
        country = _pick(rng, COUNTRIES)
        _w, locale, *_rest, tld, _cur = COUNTRIES[country]
        name = self.fake[locale].company()
        words = [w for w in re.split(r"[^a-z0-9]+", _ascii(name)) if w and w not in LEGAL_WORDS][:2] or ["company"]
        base = "-".join(words)
        domain, i = f"{base}.{tld}", 2
        while domain in taken:
            domain, i = f"{base}{i}.{tld}", i + 1
        taken.add(domain)
        size_bucket = rng.choices(SIZES, weights=[s[0] for s in SIZES])[0]
        company = Company(
            name=name,
            domain=domain,
            industry=_pick(rng, INDUSTRIES),
            size=rng.randint(size_bucket[1], size_bucket[2]),
            country=country,
        )
        company.created_at = company.updated_at = self.now - dt.timedelta(days=rng.uniform(90, 100))
        return company

    def make_profile(self, companies: list[Company], taken_emails: set[str]) -> dict:
        rng = self.rng
        # A few accounts bring many contacts: skewed pick.
        company = companies[min(len(companies) - 1, int(len(companies) * rng.random() ** 1.6))]
        locale = COUNTRIES[company.country][1]
        fake = self.fake[locale]
        first, last = fake.first_name(), fake.last_name()
        title, seniority = rng.choices([(t[0], t[1]) for t in TITLES], weights=[t[2] for t in TITLES])[0]
        free_mail = rng.random() < 0.06
        domain = rng.choice(FREE_MAIL) if free_mail else company.domain
        local = rng.choice((f"{_slug(first)}.{_slug(last)}", f"{_slug(first)[:1]}{_slug(last)}", _slug(first)))
        email, i = f"{local}@{domain}", 2
        while email in taken_emails:
            email, i = f"{local}{i}@{domain}", i + 1
        taken_emails.add(email)

        in_icp = INDUSTRIES[company.industry][1]
        size = company.size
        fit = (
            (25 if in_icp else 0)
            + (0 if size < 50 else 10 if size < 250 else 25 if size < 1000 else 18 if size < 5000 else 8)
            + SENIORITY_FIT[seniority]
            + COUNTRY_FIT[company.country]
        )
        fit = max(0, min(100, fit + rng.randint(-8, 8)))
        return {
            "company": None if free_mail else company,
            "company_obj": company,
            "email": email,
            "first_name": first,
            "last_name": last,
            "job_title": title,
            "seniority": seniority,
            "fit": fit,
        }

    def _times(self, spec: dict) -> list[dt.datetime]:
        """Creation time and one increasing time per later move, within the last 90 days."""
        rng, now, steps = self.rng, self.now, len(spec["path"])
        min_age = min(80.0, 1.0 + 5.0 * (steps - 1))
        created = now - dt.timedelta(days=rng.uniform(min_age, 89.5))
        span = (now - created).total_seconds() - 3600
        offsets = sorted(rng.uniform(3600, span) for _ in range(steps - 1))
        times = [created]
        for off in offsets:
            t = created + dt.timedelta(seconds=off)
            times.append(max(t, times[-1] + dt.timedelta(minutes=5)))
        return times

    def build_lead(self, spec: dict, users, teams, sellers) -> Lead:
        rng, now = self.rng, self.now
        company: Company = spec["company_obj"]
        country = company.country
        path, stage = spec["path"], spec["stage"]
        times = self._times(spec)
        created, last_move = times[0], times[-1]
        source = _pick(rng, SOURCES)
        _w, utm_source, utm_medium, campaigns = SOURCES[source]
        campaign = rng.choice(campaigns) if campaigns else ""
        product = _pick(rng, PRODUCTS)
        size = company.size
        budget_band = "<10k" if size < 50 else "10k-50k" if size < 1000 else "50k-200k" if size < 5000 else ">200k"
        prefix, digits = COUNTRIES[country][3]
        phone = prefix + "".join(str(rng.randint(0, 9)) for _ in range(digits)) if rng.random() < 0.6 else ""

        # Territory routing: FR/BE/CH to the French team, the rest to EMEA.
        team_name = next(
            (name for name, t in TEAMS.items() if t["countries"] and country in t["countries"]), "Inside Sales EMEA"
        )
        team = teams[team_name]
        pool = sellers[team_name]
        weights = [u.weight for u in pool]
        reached_sql = S.SQL in path
        owner = rng.choices(pool, weights=weights)[0] if reached_sql else None
        routed_team = team if reached_sql else None
        if stage == S.MQL and not reached_sql:
            roll = rng.random()
            if roll < 0.25:
                owner, routed_team = rng.choices(pool, weights=weights)[0], team
            elif roll < 0.8:
                routed_team = team  # in the team's pool, unassigned

        lead = Lead(
            email=spec["email"],
            first_name=spec["first_name"],
            last_name=spec["last_name"],
            phone=phone,
            job_title=spec["job_title"],
            company=spec["company"],
            company_name=company.name,
            company_domain="" if spec["company"] is None else company.domain,
            industry=company.industry,
            company_size=size,
            country=country,
            city=rng.choice(COUNTRIES[country][2]),
            source=source,
            utm_source=utm_source,
            utm_medium=utm_medium,
            utm_campaign=campaign,
            utm_term=(f"{product} software" if source == "google-ads" else ""),
            utm_content=(rng.choice(("carousel-a", "carousel-b", "video")) if source == "linkedin-ads" else ""),
            properties={
                "product_interest": product,
                "budget_band": budget_band,
                "crm_in_place": rng.choice(("Salesforce", "HubSpot", "Excel", "none", "Pipedrive")),
                "newsletter": rng.random() < 0.5,
            },
            stage=stage,
            stage_changed_at=last_move,
            closed_at=last_move if stage in CLOSED_STAGES else None,
            owner=owner,
            team=routed_team,
        )
        lead.created_at = created

        # Touchpoints first: the demo-request skip needs one before the move.
        end = last_move if stage in CLOSED_STAGES else now
        visitor = None
        if rng.random() < 0.4:
            visitor = Visitor(key=f"v-{rng.getrandbits(64):016x}", lead=lead, identified_at=created)
            visitor.first_seen_at = max(now - dt.timedelta(days=90), created - dt.timedelta(days=rng.uniform(1, 12)))
        spec["visitors"] = [visitor] if visitor else []
        tps = self.make_touchpoints(lead, spec, visitor, created, end, product, campaign, times)
        engagement = self.engagement(tps)
        fit = spec["fit"]
        score = round((fit + engagement) / 2)
        reached_mql = S.MQL in path or reached_sql
        if not reached_mql and score >= self.threshold:
            engagement = max(0, min(engagement, 2 * (self.threshold - 1) - fit))
            score = min(round((fit + engagement) / 2), self.threshold - 1)
        elif reached_mql and score < self.threshold:
            engagement = min(100, 2 * self.threshold - fit + rng.randint(2, 24))
            score = round((fit + engagement) / 2)
        lead.fit_score, lead.engagement_score, lead.score = fit, engagement, min(100, score)
        lead.grade = grade_for(fit)
        lead.last_activity_at = max(t.occurred_at for t in tps) if tps else None
        lead.activity_count = len(tps)
        lead.updated_at = max(last_move, lead.last_activity_at or last_move)
        spec["touchpoints"] = tps

        # Consent.
        roll = rng.random()
        if (source == "trade-fair" and roll < 0.5) or roll < 0.2:
            lead.consent_status = ConsentStatus.NONE
        elif roll < 0.27:
            lead.consent_status, lead.consent_at = ConsentStatus.OPT_OUT, min(now, created + dt.timedelta(days=20))
            lead.consent_source = "unsubscribe link"
        elif roll < 0.31:
            lead.consent_status, lead.consent_source = ConsentStatus.PENDING, f"form:{source}"
        else:
            lead.consent_status, lead.consent_at = ConsentStatus.OPT_IN, created
            lead.consent_source = f"form:{source}" if source != "trade-fair" else "badge scan + opt-in"

        self.history(lead, spec, times, users, owner, routed_team, team_name, company, product, budget_band)
        return lead

    def make_touchpoints(self, lead, spec, visitor, created, end, product, campaign, times) -> list[Touchpoint]:
        rng, now = self.rng, self.now
        stage, path = spec["stage"], spec["path"]
        engaged = 1 if any(s in path for s in (S.SQL, S.SAL, S.CO)) else 0
        n = max(1, TOUCHES[stage] + rng.randint(-3, 4))
        types = list(TOUCH_WEIGHTS)
        weights = [w[engaged] for w in TOUCH_WEIGHTS.values()]
        horizon = now - dt.timedelta(days=90)
        capture_form = {"webinar": "webinar-registration", "trade-fair": "badge-scan"}.get(lead.source, "contact")
        tps = [
            Touchpoint(
                lead=lead,
                visitor=visitor,
                type=TouchpointType.FORM_SUBMIT,
                occurred_at=created,
                url=f"{SITE}/contact" if capture_form == "contact" else f"{SITE}/{capture_form}",
                utm_source=lead.utm_source,
                utm_medium=lead.utm_medium,
                utm_campaign=lead.utm_campaign,
                utm_term=lead.utm_term,
                utm_content=lead.utm_content,
                properties={"form": capture_form},
            )
        ]
        if visitor is not None:  # browsing before the form, as an anonymous visitor
            for _ in range(rng.randint(1, 4)):
                at = visitor.first_seen_at + (created - visitor.first_seen_at) * rng.random()
                tps.append(
                    Touchpoint(
                        lead=lead,
                        visitor=visitor,
                        type=TouchpointType.PAGE_VIEW,
                        occurred_at=max(horizon, at),
                        url=SITE + rng.choice(PAGES),
                    )
                )
        if path[:2] == [S.MCL, S.SQL]:  # the demo request that allowed the MCL → SQL skip
            at = times[0] + (times[1] - times[0]) * rng.uniform(0.05, 0.6)
            tps.append(
                Touchpoint(
                    lead=lead,
                    type=TouchpointType.DEMO_REQUEST,
                    occurred_at=at,
                    url=f"{SITE}/demo",
                    properties={"product": product},
                )
            )
        for _ in range(n - len(tps)):
            kind = rng.choices(types, weights=weights)[0]
            # Activity clusters after capture and thins out: a skewed draw over the window.
            at = created + (end - created) * (rng.random() ** 1.4)
            tp = Touchpoint(lead=lead, type=kind, occurred_at=at)
            if kind == "page_view":
                tp.url = SITE + rng.choice((*PAGES, PRODUCTS[product][1]))
            elif kind == "pricing_view":
                tp.url = f"{SITE}/tarifs" if lead.country in ("FR", "BE", "CH") else f"{SITE}/pricing"
                tp.properties = {"plan": rng.choice(("starter", "growth", "enterprise"))}
            elif kind == "download":
                doc = rng.choice(DOWNLOADS)
                tp.url, tp.properties = f"{SITE}/ressources/{doc}", {"asset": doc}
            elif kind == "webinar":
                name = rng.choice(WEBINARS)
                tp.url, tp.properties = f"{SITE}/webinars/{name}", {"webinar": name, "attended": True}
            elif kind == "demo_request":
                tp.url, tp.properties = f"{SITE}/demo", {"product": product}
            else:  # e-mail open / click from a nurturing sequence
                seq = campaign if lead.utm_medium == "email" and campaign else f"nurturing-{product}"
                tp.utm_source, tp.utm_medium, tp.utm_campaign = "newsletter", "email", seq
                tp.properties = {"sequence": seq, "step": rng.randint(1, 5)}
                if kind == "email_click":
                    tp.url = SITE + PRODUCTS[product][1]
            tps.append(tp)
        return tps

    def engagement(self, tps: list[Touchpoint]) -> int:
        """Weighted events with a 30-day half-life: old activity counts less."""
        total = 0.0
        for tp in tps:
            age = (self.now - tp.occurred_at).total_seconds() / 86400
            total += ENGAGEMENT_POINTS.get(tp.type, 0) * 0.5 ** (age / HALF_LIFE_DAYS)
        return max(0, min(100, round(total * 1.6)))

    def history(self, lead, spec, times, users, owner, team, team_name, company, product, budget_band) -> None:
        rng = self.rng
        path = spec["path"]
        changes, assignments = [], []
        seller = owner or users["marketing"]
        for i, (src, dst, at) in enumerate(zip(["", *path[:-1]], path, times, strict=True)):
            actor_type, actor, reason = ActorType.USER, seller, ""
            if dst == S.MCL:
                if lead.source == "trade-fair":
                    actor_type, actor = ActorType.IMPORT, users["marketing"]
                    reason = f"Imported: {lead.utm_campaign} badge scans"
                else:
                    actor_type, actor, reason = ActorType.API, None, f"Captured from {lead.source}"
            elif dst == S.MQL:
                actor_type, actor = ActorType.AUTOMATION, None
                reason = f"Score crossed the MQL threshold ({self.threshold})" + (" again" if src == S.RECYCLED else "")
            elif dst == S.SQL:
                reason = "BANT documented"
                if (src, dst) in lifecycle.SKIP_RULES:
                    reason = f"[skip {src}→{dst}: {lifecycle.SKIP_RULES[(src, dst)]}] Demo requested"
            elif dst == S.SAL:
                reason = f"Accepted: real project ({rng.choice(('hot', 'warm'))})"
            elif dst == S.CO:
                reason = f"Quote Q-{at:%Y}-{rng.randint(1000, 9999)} sent"
            elif dst == S.WO:
                reason = "Order signed"
            elif dst == S.LOST:
                reason = rng.choice(LOST_REASONS)
            elif dst == S.RECYCLED:
                reason = rng.choice(RECYCLE_REASONS)
            elif dst == S.DISQUALIFIED:
                late = src in (S.SQL, S.SAL)
                reason = rng.choice(DISQUALIFY_REASONS["late" if late else "early"])
                if not late:
                    actor = users["marketing"]
            changes.append(
                StageChange(
                    lead=lead,
                    from_stage=src,
                    to_stage=dst,
                    actor_type=actor_type,
                    actor=actor,
                    reason=reason,
                    created_at=at,
                )
            )
            # Routing runs when the lead becomes MQL (or on the demo request that makes it SQL).
            if dst in (S.MQL, S.SQL) and team is not None and not assignments:
                assign_at = at + dt.timedelta(minutes=rng.randint(1, 30))
                if i + 1 < len(times):
                    assign_at = min(assign_at, at + (times[i + 1] - at) / 2)
                a = Assignment(
                    lead=lead,
                    from_owner=None,
                    to_owner=owner,
                    team=team,
                    actor_type=ActorType.AUTOMATION,
                    reason=f"Routing: territory {lead.country} → {team_name}"
                    + (", weighted round-robin" if owner else ", team pool"),
                    details={
                        "rule": f"territory-{'fr' if team_name.endswith('FR') else 'emea'}",
                        "team": team_name,
                        "country": lead.country,
                    },
                )
                a.created_at = assign_at
                assignments.append(a)
        spec["changes"], spec["assignments"] = changes, assignments

        currency = COUNTRIES[company.country][5]
        spec["bant"] = []
        if S.SQL in path:
            sql_at = times[path.index(S.SQL)]
            bant = Bant(
                lead=lead,
                budget=f"{budget_band} {currency} earmarked for {sql_at.year + (sql_at.month > 9)}",
                authority=f"{lead.job_title} leads the project; "
                + rng.choice(("CFO signs above 50k", "CEO has the final word", "IT must validate security")),
                need={
                    "crm": "Replace spreadsheets and a legacy CRM; pipeline visibility for management",
                    "analytics": "Consolidate marketing and sales reporting; attribution per channel",
                    "support": "Omnichannel ticketing with SLAs for a growing support team",
                }[product],
                timeline=rng.choice(
                    (
                        "Decision this quarter",
                        "Go-live before the end of the year",
                        "Budget review next month, decision in 8 weeks",
                        "Pilot within 30 days",
                    )
                ),
                notes=rng.choice(("", "", "Currently on " + lead.properties["crm_in_place"])),
                updated_by=owner,
            )
            bant.updated_at = sql_at
            spec["bant"] = [bant]

        spec["opportunity"] = []
        if S.CO in path:
            co_at = times[path.index(S.CO)]
            base = PRODUCTS[product][2]
            factor = 0.6 if company.size < 250 else 1.0 if company.size < 1000 else 2.0 if company.size < 5000 else 3.5
            amount = Decimal(round(base * factor * rng.uniform(0.7, 1.5), -2))
            status = {S.WO: OpportunityStatus.WON, S.LOST: OpportunityStatus.LOST}.get(lead.stage, "open")
            expected = co_at + dt.timedelta(days=rng.randint(30, 90))
            if lead.closed_at is not None:  # closed around the date it was forecast for
                expected = lead.closed_at + dt.timedelta(days=rng.randint(-10, 25))
            elif expected < self.now:
                expected = self.now + dt.timedelta(days=rng.randint(7, 60))
            opportunity = Opportunity(
                lead=lead,
                amount=amount,
                currency=currency,
                expected_close=expected.date(),
                status=status,
                closed_at=lead.closed_at if status != OpportunityStatus.OPEN else None,
                lost_reason=changes[-1].reason if status == OpportunityStatus.LOST else "",
                created_by=owner,
            )
            opportunity.created_at, opportunity.updated_at = co_at, lead.closed_at or co_at
            spec["opportunity"] = [opportunity]
            if company.owner is None and owner is not None:
                company.owner = owner  # a known account's next leads go to its owner

    def anonymous_visitors(self, touchpoints: list[Touchpoint], count: int) -> list[Visitor]:
        """Visitors who never said who they are: page views only."""
        rng, now = self.rng, self.now
        visitors = []
        for _ in range(count):
            visitor = Visitor(key=f"v-{rng.getrandbits(64):016x}")
            visitor.first_seen_at = now - dt.timedelta(days=rng.uniform(0, 89))
            for _ in range(rng.randint(1, 5)):
                at = visitor.first_seen_at + (now - visitor.first_seen_at) * rng.random() ** 2
                kind = TouchpointType.PRICING_VIEW if rng.random() < 0.1 else TouchpointType.PAGE_VIEW
                url = f"{SITE}/pricing" if kind == TouchpointType.PRICING_VIEW else SITE + rng.choice(PAGES)
                touchpoints.append(Touchpoint(visitor=visitor, type=kind, occurred_at=at, url=url))
            visitors.append(visitor)
        return visitors

    # --- configuration, through the services ---------------------------------------------

    def configure_routing(self, users: dict[str, User], teams: dict[str, Team]) -> dict:
        """Routing as the admin sets it up: settings, territories, a partner reseller with its
        login, ordered rules, SLA policies per grade, and the sellers' languages and skills."""
        admin = Actor(users["admin"], ActorType.USER)
        routing_services.routing_settings_update(
            actor=admin, route_on_mql=True, route_on_capture=False, default_team=teams["Inside Sales EMEA"]
        )
        territories = {
            name: routing_services.config_save(instance=Territory(), actor=admin, fields={"name": name, "countries": c})
            for name, c in TERRITORIES.items()
        }
        partner_user = User(
            username=PARTNER["username"],
            password=make_password(PARTNER["password"]),
            role=Role.SDR,
            first_name=PARTNER["first_name"],
            last_name=PARTNER["last_name"],
            email=f"{PARTNER['username']}@iberia-italia-crm.example",
            routing_active=False,  # leads reach it as partner offers, never by round-robin
            date_joined=self.now - dt.timedelta(days=120),
        )
        partner_user.save()
        users[PARTNER["username"]] = partner_user
        partner_user.token = Token.objects.get_or_create(user=partner_user)[0].key
        partner = routing_services.config_save(
            instance=Partner(),
            actor=admin,
            fields={
                "name": PARTNER["name"],
                "kind": "reseller",
                "user": partner_user,
                "email": partner_user.email,
                "response_hours": 48,
            },
            m2m={"territories": [territories[t] for t in PARTNER["territories"]]},
        )
        for position, name, conditions, target in ROUTING_RULES:
            dest = {"partner": partner} if target == "partner" else {"team": teams[target.split(":", 1)[1]]}
            routing_services.routing_rule_create(
                actor=admin, name=name, position=position, conditions=conditions, **dest
            )
        for grade, minutes, reassign in SLA_BY_GRADE:
            routing_services.config_save(
                instance=SlaPolicy(),
                actor=admin,
                fields={
                    "name": f"Grade {grade}: first touch within {minutes // 60} business hours",
                    "grade": grade,
                    "minutes_to_first_touch": minutes,
                    "reassign_after_minutes": reassign,
                },
            )
        for username, profile in SELLER_PROFILES.items():
            routing_services.seller_profile_update(seller=users[username], actor=admin, **profile)
        return {"rules": len(ROUTING_RULES), "territories": len(territories), "sla": len(SLA_BY_GRADE)}

    def configure_scoring(self, users: dict[str, User]) -> dict:
        """The default group's rule set v1, created, completed and activated through the
        scoring services, then every lead rescored with it, set-based and synchronously. MCL
        leads whose new score reaches the threshold are promoted by the service (MQL, with
        their StageChange row) and routed at once by the rules above."""
        marketing = Actor(users["marketing"], ActorType.USER)
        ruleset = scoring_services.ruleset_create(data=SCORING_RULESET, actor=marketing)
        for rule in NEGATIVE_ENGAGEMENT_RULES:
            scoring_services.rule_create(ruleset_id=ruleset.pk, kind="engagement", data=rule, actor=marketing)
        # Activation also queues a background full rescore once committed: by then it has (almost)
        # nothing left to change; this one runs now, so the demo opens with its scores.
        scoring_services.ruleset_activate(ruleset_id=ruleset.pk, actor=marketing)
        started = timezone.now()
        stats = scoring_services.leads_rescore_all()
        moves = list(
            StageChange.objects.filter(
                to_stage=S.MQL, created_at__gte=started, actor_type=ActorType.AUTOMATION
            ).values_list("lead_id", "from_stage")
        )
        promoted = [lead_id for lead_id, _ in moves]
        routed = routing_services.leads_route_batch(lead_ids=promoted, actor=Actor.automation()) if promoted else {}
        return {
            "moves": Counter(src for _, src in moves),
            "seconds": stats.seconds,
            "ruleset": ruleset,
            "rules": len(SCORING_RULESET["fit_rules"]) + len(SCORING_RULESET["engagement_rules"]) + 2,
            "scored": stats.leads,
            "changed": stats.changed,
            "promoted": stats.promoted,
            "routed": routed,
        }

    # --- report ---------------------------------------------------------------------------

    def print_summary(self, users: dict[str, User], summary: dict, seconds: float) -> None:
        out = self.stdout
        out.write(self.style.SUCCESS("Demo company Nordlys Software created."))
        out.write("\nUsers (username / password / role / team / API token):")
        for username, password, role, team, *_ in USERS:
            out.write(f"  {username:<10} {password:<10} {role:<10} {team or '-':<18} {users[username].token}")
        out.write("\nAPI: curl -H 'Authorization: Token <token>' http://127.0.0.1:8000/api/v1/leads/")
        stages = summary["stages"]
        out.write(f"\nLeads: {sum(stages.values())} in {summary['companies']} companies")
        out.write("  " + "  ".join(f"{s}={stages.get(s, 0)}" for s in Stage.values))
        opps = summary["opportunities"]
        out.write(
            f"Touchpoints: {summary['touchpoints']}  visitors: {summary['visitors']}  "
            f"stage changes: {summary['stage_changes']}  assignments: {summary['assignments']}  "
            f"BANT: {summary['bant']}  opportunities: {sum(opps.values())} "
            f"(open {opps.get('open', 0)}, won {opps.get('won', 0)}, lost {opps.get('lost', 0)})"
        )
        sc, rt = summary["scoring"], summary["routing"]
        out.write(
            f"Scoring: rule set {sc['ruleset']} active ({sc['rules']} rules, MQL at {sc['ruleset'].mql_threshold}); "
            f"{sc['scored']} leads scored in {sc['seconds']:.1f} s, {sc['promoted']} promoted to MQL"
            + (f" and routed ({', '.join(f'{k} {v}' for k, v in sc['routed'].items() if v)})" if sc["promoted"] else "")
        )
        out.write(
            f"Routing: route at MQL on; {rt['rules']} rules, {rt['territories']} territories, "
            f"partner {PARTNER['name']} (login {PARTNER['username']} / {PARTNER['password']}), "
            f"{rt['sla']} SLA policies (A 1 h, B 4 h, C 24 h, D 72 h business hours)"
        )
        out.write(f"Done in {seconds:.1f} s.")

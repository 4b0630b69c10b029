"""The demo company's data: who works there, its markets and the shape of its leads, its
funnel and touchpoints, the scoring rule set and the routing set-up an admin would enter.
Plain values only; `manage.py seed_demo` is the generator that draws leads from them and
creates everything through the services."""

from __future__ import annotations

from accounts.models import Role
from leads.models import Stage

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
TITLES = (  # title, weight
    ("CEO", 3),
    ("Directeur général", 3),
    ("CMO", 2),
    ("CTO", 2),
    ("Head of Marketing", 5),
    ("Directrice marketing", 4),
    ("Sales Director", 4),
    ("Head of Customer Service", 3),
    ("Directeur commercial", 3),
    ("Marketing Manager", 8),
    ("Responsable marketing digital", 7),
    ("Chef de projet CRM", 5),
    ("IT Manager", 5),
    ("Customer Success Manager", 4),
    ("Marketing Assistant", 5),
    ("Business Developer", 5),
    ("Chargée de communication", 4),
    ("Consultant", 3),
    ("Student", 2),
    ("Stagiaire marketing", 2),
)
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
# How much luck counts beside fit when the leads are ranked for the stages (a standard
# deviation, in the rule set's fit points): fit alone does not decide who buys.
FIT_NOISE = 8.0
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


# Nurturing's starting point (seed_demo.create_nurturing): templates (name, subject, text).
DEMO_TEMPLATES = (
    (
        "Welcome",
        'Welcome, {{ lead.first_name|default:"there" }}',
        'Hello {{ lead.first_name|default:"there" }},\n\nThanks for your interest in Nordlys. '
        '{{ owner.first_name|default:"Our team" }} will be glad to help {{ company.name|default:"your team" }}.',
    ),
    (
        "Case study",
        'How a team like {{ company.name|default:"yours" }} cut its lead response time',
        'Hello {{ lead.first_name|default:"there" }},\n\nHere is how a team of your size answers its leads in minutes.',
    ),
    (
        "Short pitch",
        'Two minutes, {{ lead.first_name|default:"there" }}?',
        'Hello {{ lead.first_name|default:"there" }},\n\nShall we show you Nordlys in a 20-minute call?',
    ),
    (
        "Last call",
        "Should we stay in touch?",
        'Hello {{ lead.first_name|default:"there" }},\n\nTell us if the timing is wrong; we will write less often.',
    ),
)
DEMO_SEGMENT_FILTER = {"consent": ["opt_in"], "grade": ["A", "B"]}

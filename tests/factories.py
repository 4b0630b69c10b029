"""factory-boy factories for tests.

They write rows directly (test set-up), not through `leads.services`: a lead made here has
no capture history unless a test adds one. Tests of behaviour should act through services
or the API and use these only to arrange the world.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from accounts.models import Role, Team, User
from leads.models import Bant, Company, Lead, Opportunity, OpportunityStatus, Stage, Touchpoint, TouchpointType

PASSWORD = "pw-test-123!"


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    timezone = "Europe/Paris"


class UserFactory(factory.django.DjangoModelFactory):
    """`UserFactory(role="manager", team=team)`; the password is `PASSWORD`."""

    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    role = Role.SDR
    username = factory.LazyAttributeSequence(lambda o, n: f"{o.role}{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    team = None
    password = factory.django.Password(PASSWORD)
    is_staff = factory.LazyAttribute(lambda o: o.role in (Role.ADMIN, Role.MARKETING))
    is_superuser = factory.LazyAttribute(lambda o: o.role == Role.ADMIN)


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    name = factory.Faker("company")
    domain = factory.Sequence(lambda n: f"company{n}.example")
    industry = "Software"
    size = 250
    country = "FR"


class LeadFactory(factory.django.DjangoModelFactory):
    """A lead in `stage` (MCL by default). With `owner`, its team is the owner's."""

    class Meta:
        model = Lead

    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    job_title = "Marketing Manager"
    company_name = factory.Faker("company")
    company_domain = factory.LazyAttribute(lambda o: o.email.rsplit("@", 1)[1])
    industry = "Software"
    company_size = 250
    country = "FR"
    city = "Paris"
    source = "seo"
    stage = Stage.MCL
    stage_changed_at = factory.LazyFunction(timezone.now)
    owner = None
    team = factory.LazyAttribute(lambda o: o.owner.team if o.owner is not None else None)
    score = 0
    fit_score = 0
    engagement_score = 0
    properties = factory.LazyFunction(dict)


class TouchpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Touchpoint

    lead = factory.SubFactory(LeadFactory)
    type = TouchpointType.PAGE_VIEW
    url = "https://www.example.com/pricing"
    occurred_at = factory.LazyFunction(timezone.now)
    properties = factory.LazyFunction(dict)


class BantFactory(factory.django.DjangoModelFactory):
    """A complete BANT: the four fields documented."""

    class Meta:
        model = Bant

    lead = factory.SubFactory(LeadFactory)
    budget = "20-50k EUR approved"
    authority = "Head of Marketing decides; CFO signs"
    need = "Replace spreadsheets with a CRM"
    timeline = "Decision this quarter"
    notes = ""


class OpportunityFactory(factory.django.DjangoModelFactory):
    """An open offer on a lead in CO."""

    class Meta:
        model = Opportunity

    lead = factory.SubFactory(LeadFactory, stage=Stage.CO)
    amount = Decimal("12000.00")
    currency = "EUR"
    expected_close = factory.LazyFunction(lambda: timezone.now().date() + dt.timedelta(days=30))
    status = OpportunityStatus.OPEN


class CaptureFormFactory(factory.django.DjangoModelFactory):
    """A capture form (capture.models.Form) asking e-mail, first name and company, with a
    progressive queue (job title, phone) and one allowed origin."""

    class Meta:
        model = "capture.Form"

    name = factory.Sequence(lambda n: f"Form {n}")
    site_key = factory.Sequence(lambda n: f"site-key-{n}-abcdefghijklmnop")
    allowed_origins = factory.LazyFunction(lambda: ["https://www.example.com"])
    fields = factory.LazyFunction(
        lambda: [
            {
                "name": "email",
                "maps_to": "email",
                "required": True,
                "label": {"en": "E-mail", "fr": "E-mail"},
                "help": "",
            },
            {
                "name": "first_name",
                "maps_to": "first_name",
                "required": True,
                "label": {"en": "First name", "fr": "Prénom"},
                "help": "",
            },
            {
                "name": "company",
                "maps_to": "company",
                "required": False,
                "label": {"en": "Company", "fr": "Société"},
                "help": "",
            },
        ]
    )
    progressive = factory.LazyFunction(
        lambda: [
            {
                "name": "job_title",
                "maps_to": "job_title",
                "required": False,
                "label": {"en": "Job title", "fr": "Fonction"},
                "help": "",
            },
            {
                "name": "phone",
                "maps_to": "phone",
                "required": False,
                "label": {"en": "Phone", "fr": "Téléphone"},
                "help": "",
            },
            {
                "name": "team_size",
                "maps_to": "properties.team_size",
                "required": False,
                "label": {"en": "Team size", "fr": "Taille de l'équipe"},
                "help": "",
            },
        ]
    )
    consent_text = "I agree to receive e-mails."
    thank_you = "Thanks!"


# --- integrations (webhooks) ----------------------------------------------------------------
from integrations.models import Webhook  # noqa: E402
from integrations.signing import new_secret  # noqa: E402


class WebhookFactory(factory.django.DjangoModelFactory):
    """A subscription written directly (no URL check: arrange loopback targets freely)."""

    class Meta:
        model = Webhook

    url = "https://hooks.example.com/leadcrm"
    events = factory.LazyFunction(lambda: ["lead.created"])
    owner = factory.SubFactory(UserFactory, role=Role.ADMIN)
    secret = factory.LazyFunction(new_secret)

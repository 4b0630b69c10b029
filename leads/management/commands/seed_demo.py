"""`python manage.py seed_demo [--leads N]`: a realistic demo company in one command.

Nordlys Software, a B2B vendor of CRM, analytics and customer-support software, selling
in France and EMEA: two inside-sales teams, their managers and SDRs, marketing, an admin,
and N leads (3,000 by default) spread over the last 90 days across every lifecycle stage
with funnel proportions, each with its history (stage changes along the moves that
`leads.lifecycle` allows, assignments, BANT, offers) and its touchpoints.

What the company is (people, markets, funnel shape, the scoring rule set, the routing
set-up) is data, in `leads.demo.data`; this command is the generator that draws from it.

It configures the company the way an admin would, through the services (so the rules are
validated exactly as in the admin): teams (`accounts.services`), the scoring rule set of
the default group (`scoring.services.ruleset_create` / `rule_create`), the routing
configuration (`routing.services`: settings, territories, a partner reseller with its
login, ordered rules, SLA policies per grade, sellers' languages and skills).

The 90-day history is the one part written as rows (`bulk_create`): no service writes at
a past instant, and the demo's reports need their dates. Every stage path is checked
against `leads.lifecycle.ALLOWED_MOVES` / `SKIP_RULES` before anything is saved; no domain
event is emitted for the history (no webhook, scoring or routing runs on it). The leads
are written unscored: the real engine scores them. Which leads reach the deepest stages
follows the rule set's fit (`scoring.selectors.fit_points_of`) plus noise; the activity
roll-up is `leads.services.lead_activity_refresh`; then the rule set is activated and
every lead rescored set-based and synchronously (`scoring.services.leads_rescore_all`:
MCL leads crossing the threshold are promoted to MQL with their StageChange row) and the
promoted ones routed at once (`routing.services.leads_route_batch`).

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

from accounts import services as accounts_services
from accounts.models import Role, Team, User
from leadcrm.actors import Actor, ActorType
from leads import lifecycle
from leads import services as lead_services
from leads.demo.data import (
    COUNTRIES,
    DEMO_SEGMENT_FILTER,
    DEMO_TEMPLATES,
    DISQUALIFY_REASONS,
    DOWNLOADS,
    FIT_NOISE,
    FREE_MAIL,
    INDUSTRIES,
    LEGAL_WORDS,
    LOST_REASONS,
    MARKETING_PERMS,
    NEGATIVE_ENGAGEMENT_RULES,
    PAGES,
    PARTNER,
    PRODUCTS,
    RECYCLE_REASONS,
    ROUTING_RULES,
    SCORING_RULESET,
    SEED,
    SELLER_PROFILES,
    SITE,
    SIZES,
    SLA_BY_GRADE,
    SOURCES,
    STAFF_DOMAIN,
    STAGE_MIX,
    TEAMS,
    TERRITORIES,
    TITLES,
    TOUCH_WEIGHTS,
    TOUCHES,
    USERS,
    WEBINARS,
    S,
)
from leads.models import (
    CLOSED_STAGES,
    Assignment,
    Bant,
    Company,
    ConsentStatus,
    Lead,
    Opportunity,
    OpportunityStatus,
    Stage,
    StageChange,
    Touchpoint,
    TouchpointType,
    Visitor,
)
from nurturing import services as nurturing_services
from routing import services as routing_services
from routing.models import Partner, SlaPolicy, Territory
from scoring import selectors as scoring_selectors
from scoring import services as scoring_services
from scoring.models import RuleSet


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
        with transaction.atomic():
            users, teams = self.create_people()
            ruleset = self.create_ruleset(users)
            summary = self.create_leads(n, users, teams)
            summary["routing"] = self.configure_routing(users, teams)
            summary["scoring"] = self.score_and_route(users, ruleset)
            summary["nurturing"] = self.create_nurturing(users)
            for src, count in summary["scoring"]["moves"].items():  # the stages as they now are
                summary["stages"][src] -= count
                summary["stages"][S.MQL] += count
                summary["stage_changes"] += count
        self.print_summary(users, summary, time.monotonic() - started)

    # --- people ---------------------------------------------------------------------------

    def create_people(self) -> tuple[dict[str, User], dict[str, Team]]:
        hashes = {pw: make_password(pw) for pw in {u[1] for u in USERS}}  # one hash per password
        teams = {
            name: Team.objects.filter(name=name).first()
            or accounts_services.team_create(name=name, timezone=t["timezone"])
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
            accounts_services.team_update(team=teams[name], manager=users[t["manager"]])
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

        # Profiles first; the best (the rule set's fit + noise) get the deepest stages.
        specs = [self.make_profile(companies, taken_emails) for _ in range(n)]
        specs.sort(key=lambda s: self.fit(s) + rng.gauss(0, FIT_NOISE), reverse=True)
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
        lead_services.lead_activity_refresh(lead_ids=[lead.pk for lead in leads])

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
        title = rng.choices([t[0] for t in TITLES], weights=[t[1] for t in TITLES])[0]
        free_mail = rng.random() < 0.06
        domain = rng.choice(FREE_MAIL) if free_mail else company.domain
        local = rng.choice((f"{_slug(first)}.{_slug(last)}", f"{_slug(first)[:1]}{_slug(last)}", _slug(first)))
        email, i = f"{local}@{domain}", 2
        while email in taken_emails:
            email, i = f"{local}{i}@{domain}", i + 1
        taken_emails.add(email)
        return {
            "company": None if free_mail else company,
            "company_obj": company,
            "email": email,
            "first_name": first,
            "last_name": last,
            "job_title": title,
        }

    def fit(self, spec: dict) -> float:
        """The profile's fit points under the demo's rule set (the real engine's; custom
        fields and consent are drawn later and left out of the ranking)."""
        company = spec["company_obj"]
        fields = {
            "industry": company.industry,
            "company_size": company.size,
            "country": company.country,
            "job_title": spec["job_title"],
        }
        return scoring_selectors.fit_points_of(ruleset=self.ruleset, profiles=[fields])[0]

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
        lead.updated_at = max([last_move, *(t.occurred_at for t in tps)])
        if S.MQL in path:
            # Not a score (the engine computes those, at the end), the history's one fact about
            # it: the lead once crossed the threshold. The first scoring then sees no second
            # crossing (a recycled lead stays recycled); MCL leads start at 0 and may cross.
            lead.score = SCORING_RULESET["mql_threshold"]
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

    def history(self, lead, spec, times, users, owner, team, team_name, company, product, budget_band) -> None:
        rng = self.rng
        path = spec["path"]
        threshold = SCORING_RULESET["mql_threshold"]  # the rule set's, which the seeded history follows
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
                reason = f"Score crossed the MQL threshold ({threshold})" + (" again" if src == S.RECYCLED else "")
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

    def create_ruleset(self, users: dict[str, User]) -> RuleSet:
        """The default group's rule set v1, created and completed through the scoring
        services as marketing would (activated once the leads exist). Its compiled rules
        rank the generated leads (`fit`)."""
        marketing = Actor(users["marketing"], ActorType.USER)
        ruleset = scoring_services.ruleset_create(data=SCORING_RULESET, actor=marketing)
        for rule in NEGATIVE_ENGAGEMENT_RULES:
            scoring_services.rule_create(ruleset_id=ruleset.pk, kind="engagement", data=rule, actor=marketing)
        self.ruleset = ruleset
        return ruleset

    def score_and_route(self, users: dict[str, User], ruleset: RuleSet) -> dict:
        """Activate the rule set, then score every lead with it, set-based and synchronously.
        MCL leads whose score reaches the threshold are promoted by the service (MQL, with
        their StageChange row) and routed at once by the routing rules."""
        marketing = Actor(users["marketing"], ActorType.USER)
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

    # --- nurturing -----------------------------------------------------------------------

    def create_nurturing(self, users: dict[str, User]) -> dict[str, int]:
        """What marketing starts from: templates, a segment, a welcome sequence with an A/B
        split (off until marketing switches it on) and a workflow that hands MQLs to their
        owner, all through the services (checked and audited as by hand)."""
        actor = Actor(users["marketing"], ActorType.USER)
        created = {
            name: nurturing_services.email_template_create(actor=actor, name=name, subject=subject, text=text)
            for name, subject, text in DEMO_TEMPLATES
        }
        nurturing_services.segment_create(actor=actor, name="Opted-in, grade A or B", filter=DEMO_SEGMENT_FILTER)
        steps = [
            {"type": "email", "template": created["Welcome"].pk},
            {"type": "wait", "days": 3, "business_days": True, "window": {"start": "09:00", "end": "17:00"}},
            {
                "type": "split",
                "variants": [
                    {"weight": 50, "steps": [{"type": "email", "template": created["Case study"].pk}]},
                    {"weight": 50, "steps": [{"type": "email", "template": created["Short pitch"].pk}]},
                ],
            },
            {"type": "wait", "days": 4, "business_days": True},
            {
                "type": "branch",
                "if": {"clicked_last": True},
                "then": [{"type": "task", "kind": "call", "due_in_hours": 24, "title": "Call: clicked the e-mail"}],
                "else": [{"type": "email", "template": created["Last call"].pk}],
            },
        ]
        nurturing_services.sequence_create(
            actor=actor,
            name="Welcome series",
            steps=steps,
            active=False,
            exit_on=["reply", "opt_out", "bounce", "converted"],
            reentry="after_days:90",
        )
        nurturing_services.workflow_create(
            actor=actor,
            name="New MQL: a call task for the owner",
            trigger={"event": "lead.stage_changed", "to": "MQL"},
            actions=[{"type": "task", "kind": "call", "due_in_hours": 4, "title": "Call the new MQL"}],
        )
        return {"templates": len(created), "segments": 1, "sequences": 1, "workflows": 1}

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
        nu = summary["nurturing"]
        out.write(
            f"Nurturing: {nu['templates']} e-mail templates, {nu['segments']} segment, "
            f"{nu['sequences']} sequence (A/B split, off until switched on), {nu['workflows']} workflow"
        )
        out.write(f"Done in {seconds:.1f} s.")

"""Leads, companies, activity and the lifecycle's history.

State predicates live here; every write goes through `leads.services`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from leadcrm.actors import ActorType


class Stage(models.TextChoices):
    MCL = "MCL", "Marketing captured lead"
    MQL = "MQL", "Marketing qualified lead"
    SQL = "SQL", "Sales qualified lead"
    SAL = "SAL", "Sales accepted lead"
    CO = "CO", "Created opportunity"
    WO = "WO", "Won opportunity"
    DISQUALIFIED = "DISQUALIFIED", "Disqualified"
    LOST = "LOST", "Lost"
    RECYCLED = "RECYCLED", "Recycled"


OPEN_STAGES = frozenset({Stage.MCL, Stage.MQL, Stage.SQL, Stage.SAL, Stage.CO, Stage.RECYCLED})
CLOSED_STAGES = frozenset({Stage.WO, Stage.LOST, Stage.DISQUALIFIED})
FUNNEL_STAGES = (Stage.MCL, Stage.MQL, Stage.SQL, Stage.SAL, Stage.CO, Stage.WO)


class Grade(models.TextChoices):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


class ConsentStatus(models.TextChoices):
    NONE = "none", "No consent"
    PENDING = "pending", "Awaiting double opt-in confirmation"
    OPT_IN = "opt_in", "Opted in"
    OPT_OUT = "opt_out", "Opted out"


class Company(models.Model):
    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, null=True, blank=True, unique=True)
    industry = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True, help_text="Employees")
    country = models.CharField(max_length=2, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="companies"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "companies"
        ordering = ["name"]
        indexes = [models.Index(Lower("name"), name="company_name_lower")]

    def __str__(self) -> str:
        return self.name or self.domain or f"Company {self.pk}"


class Lead(models.Model):
    # E-mails are stored lower-cased: one unique index makes dedupe race-free.
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    job_title = models.CharField(max_length=150, blank=True)
    company = models.ForeignKey(Company, null=True, blank=True, on_delete=models.SET_NULL, related_name="leads")
    company_name = models.CharField(max_length=200, blank=True)
    company_domain = models.CharField(max_length=253, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    company_size = models.PositiveIntegerField(null=True, blank=True)
    country = models.CharField(max_length=2, blank=True)
    city = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=100, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict, blank=True)

    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.MCL)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Owner and team are indexed by the composite indexes in Meta (every index costs the
    # 10,000-row imports).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_index=False,
    )
    team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leads",
        db_index=False,
        help_text="The team whose pool holds the lead while it has no owner.",
    )

    score = models.PositiveSmallIntegerField(default=0)
    fit_score = models.PositiveSmallIntegerField(default=0)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    grade = models.CharField(max_length=1, choices=Grade.choices, blank=True)
    conversion_probability = models.FloatField(null=True, blank=True)

    consent_status = models.CharField(max_length=10, choices=ConsentStatus.choices, default=ConsentStatus.NONE)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=200, blank=True)

    last_activity_at = models.DateTimeField(null=True, blank=True)
    activity_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["email"], name="lead_email_unique")]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="lead_created_idx"),
            models.Index(fields=["source"], name="lead_source_idx"),
            models.Index(fields=["stage", "-created_at"]),
            models.Index(fields=["owner", "stage"]),
            models.Index(fields=["team", "owner"]),
            models.Index(fields=["-score", "-id"]),
            models.Index(fields=["country"]),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_open(self) -> bool:
        return self.stage in OPEN_STAGES

    @property
    def may_receive_marketing(self) -> bool:
        return self.consent_status == ConsentStatus.OPT_IN


class Visitor(models.Model):
    """An anonymous browser, known by a cookie id, until it says who it is."""

    key = models.CharField(max_length=100, unique=True)
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.SET_NULL, related_name="visitors")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    identified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.key


class TouchpointType(models.TextChoices):
    PAGE_VIEW = "page_view"
    FORM_SUBMIT = "form_submit"
    DOWNLOAD = "download"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    # A person answered one of our e-mails (the inbound webhook, or an integration's event):
    # sequences that exit on a reply stop.
    EMAIL_REPLY = "email_reply"
    DEMO_REQUEST = "demo_request"
    PRICING_VIEW = "pricing_view"
    WEBINAR = "webinar"
    CHAT = "chat"
    CALL = "call"
    CUSTOM = "custom"
    # Logged by sellers, or by the system when a known lead is captured again.
    MEETING = "meeting"
    EMAIL_SENT = "email_sent"
    NOTE = "note"
    CAPTURE = "capture"


# What the public events API accepts (SPEC.md); the rest are written by the app itself.
EVENT_TYPES = (
    "page_view",
    "form_submit",
    "download",
    "email_open",
    "email_click",
    "email_reply",
    "demo_request",
    "pricing_view",
    "webinar",
    "chat",
    "call",
    "custom",
)
# Activities that count as the owner's first touch for SLAs.
SALES_TOUCH_TYPES = frozenset({TouchpointType.CALL, TouchpointType.MEETING, TouchpointType.EMAIL_SENT})


class Touchpoint(models.Model):
    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="touchpoints")
    visitor = models.ForeignKey(Visitor, null=True, blank=True, on_delete=models.SET_NULL, related_name="touchpoints")
    type = models.CharField(max_length=20, choices=TouchpointType.choices)
    url = models.URLField(max_length=2000, blank=True)
    utm_source = models.CharField(max_length=200, blank=True)
    utm_medium = models.CharField(max_length=200, blank=True)
    utm_campaign = models.CharField(max_length=200, blank=True)
    utm_term = models.CharField(max_length=200, blank=True)
    utm_content = models.CharField(max_length=200, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["lead", "-occurred_at"]),
            models.Index(fields=["visitor", "lead"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lead__isnull=False) | models.Q(visitor__isnull=False),
                name="touchpoint_has_lead_or_visitor",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class StageChange(models.Model):
    """The lifecycle's audit trail: time in each stage is derived from it."""

    # The lead is indexed by (lead, -created_at) below; nobody looks moves up by actor.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="stage_changes", db_index=False)
    from_stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.from_stage or '∅'} → {self.to_stage}"


class Assignment(models.Model):
    """Every change of owner: who had it, who has it, who decided and why."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="assignments")
    from_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_type = models.CharField(max_length=12, choices=ActorType.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Why: rule, conditions, loads.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]


# The four BANT criteria SQL needs; a BANT also has free notes.
BANT_CRITERIA = ("budget", "authority", "need", "timeline")
BANT_FIELDS = (*BANT_CRITERIA, "notes")


class Bant(models.Model):
    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="bant")
    budget = models.TextField(blank=True)
    authority = models.TextField(blank=True)
    need = models.TextField(blank=True)
    timeline = models.TextField(blank=True)
    notes = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "BANT qualification"

    @property
    def is_complete(self) -> bool:
        return not self.missing

    @property
    def missing(self) -> list[str]:
        return [f for f in BANT_CRITERIA if not getattr(self, f).strip()]


class OpportunityStatus(models.TextChoices):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Opportunity(models.Model):
    lead = models.OneToOneField(Lead, on_delete=models.CASCADE, related_name="opportunity")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    expected_close = models.DateField()
    status = models.CharField(max_length=5, choices=OpportunityStatus.choices, default=OpportunityStatus.OPEN)
    lost_reason = models.TextField(blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "opportunities"
        constraints = [models.CheckConstraint(condition=models.Q(amount__gte=0), name="opportunity_amount_gte_0")]

    @property
    def is_complete(self) -> bool:
        return self.amount is not None and bool(self.currency) and self.expected_close is not None


class ScoreChange(models.Model):
    """The score's audit trail: old → new and why (the scoring rules that fired)."""

    # Indexed by (lead, -created_at) below: no second index on the lead alone.
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="score_changes", db_index=False)
    old_score = models.PositiveSmallIntegerField()
    new_score = models.PositiveSmallIntegerField()
    fit_score = models.PositiveSmallIntegerField(default=0)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    grade = models.CharField(max_length=1, choices=Grade.choices, blank=True)
    reasons = models.JSONField(default=list, blank=True, help_text="The rules that fired: [{rule, points}].")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["lead", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.old_score} → {self.new_score}"


class Campaign(models.Model):
    """A marketing campaign and what it cost: CPL = spend / leads it brought. Leads are tied
    to a campaign by their `utm_campaign` key."""

    name = models.CharField(max_length=200)
    utm_campaign = models.CharField(max_length=200, unique=True, help_text="The utm_campaign key of its leads.")
    source = models.CharField(max_length=100, blank=True, db_index=True)
    spend = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="EUR")
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SavedFilter(models.Model):
    """A user's named filter on a list page (the query string it applies)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters")
    page = models.CharField(max_length=20, default="queue")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "page", "name"], name="savedfilter_unique_name")]

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV import: the uploaded file, its column mapping and progress, and the report of
    the lines refused (line number, column, message)."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=255)
    data = models.BinaryField(help_text="The uploaded file as received.")
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=1, blank=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="CSV header -> lead field or properties.<key>.")
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    recorded_count = models.PositiveIntegerField(
        default=0, help_text="Lines naming a lead the importer cannot see: kept as a touchpoint, the lead unchanged."
    )
    failed_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{line, column, message}]")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def progress(self) -> int:
        return round(100 * self.processed_rows / self.total_rows) if self.total_rows else 0


class LeadRollup(models.Model):
    """The dashboard's aggregate table, rebuilt by a worker (`leads.tasks.dashboard_rollup_refresh`,
    every few minutes): leads per creation day and source (`kind` "source") or campaign
    (`kind` "campaign"), current stage and furthest funnel stage reached, with their offers'
    figures. Each lead is counted once per kind. Read instead of the leads when the dashboard
    covers the whole base."""

    day = models.DateField()
    kind = models.CharField(max_length=8)
    key = models.CharField(max_length=200, blank=True)
    stage = models.CharField(max_length=16)
    top = models.SmallIntegerField(help_text="Rank in FUNNEL_STAGES of the furthest stage reached; -1 none.")
    n = models.PositiveIntegerField()
    open_n = models.PositiveIntegerField(default=0)
    open_value = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    won_n = models.PositiveIntegerField(default=0)
    won_value = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    lost_n = models.PositiveIntegerField(default=0)
    cycle_n = models.PositiveIntegerField(default=0)
    cycle_seconds = models.FloatField(default=0)

    class Meta:
        indexes = [models.Index(fields=["kind", "day"])]


class AttributionRollup(models.Model):
    """Credit per source for qualified leads (SQL and beyond) per creation day and model."""

    day = models.DateField()
    model = models.CharField(max_length=6)
    credited = models.CharField(max_length=200)
    credit = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["model", "day"])]


class RollupRun(models.Model):
    finished_at = models.DateTimeField()
    leads = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-finished_at"]


class SlaRollup(models.Model):
    """SLA clocks decided (touched, or past due) per start day and team, and how many were
    touched in time: the dashboard's SLA panel for whole-base views (rebuilt with the others)."""

    day = models.DateField(db_index=True)
    team_id = models.BigIntegerField(null=True)
    total = models.PositiveIntegerField()
    met = models.PositiveIntegerField()


class TaskKind(models.TextChoices):
    CALL = "call", "Call"
    EMAIL = "email", "E-mail"
    MEETING = "meeting", "Meeting"
    LINKEDIN = "linkedin", "LinkedIn"
    TODO = "todo", "To-do"


class Task(models.Model):
    """Work someone owes a lead at a given time: a call back, a meeting, a LinkedIn touch of a
    sequence's playbook. Done is a time (`done_at`), so "done late" stays readable."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    kind = models.CharField(max_length=10, choices=TaskKind.choices, default=TaskKind.TODO)
    title = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField()
    done_at = models.DateTimeField(null=True, blank=True)
    # Set by automation (a sequence step) so that running the step twice makes one task.
    key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["assignee", "due_at"], condition=models.Q(done_at__isnull=True), name="task_open_due"),
            models.Index(fields=["lead", "due_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.title or self.lead_id}"

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def is_overdue(self, now) -> bool:
        return self.done_at is None and self.due_at < now


class ConsentPurpose(models.TextChoices):
    """What a consent is for; a new purpose is one more choice (no migration of the rows)."""

    MARKETING_EMAIL = "marketing_email", "Marketing e-mail"


class LegalBasis(models.TextChoices):
    """GDPR art. 6(1): why we may process the person's data for this purpose."""

    CONSENT = "consent", "Consent"
    CONTRACT = "contract", "Contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"


class ConsentChannel(models.TextChoices):
    """Where the person's word came from (derived by the leads service from the source)."""

    FORM = "form", "Form"
    IMPORT = "import", "Import"
    API = "api", "API"
    USER = "user", "Entered by a user"
    UNSUBSCRIBE = "unsubscribe", "Unsubscribe link"
    DOUBLE_OPT_IN = "double_opt_in", "Double opt-in"
    COMPLAINT = "complaint", "Spam complaint"
    ERASURE = "erasure", "Erasure"
    AUTOMATION = "automation", "Automation"


class ConsentRecord(models.Model):
    """The consent log: one row per word the person gave (or that was recorded for them), per
    purpose, never changed nor deleted: the evidence GDPR art. 7(1) asks for. Written only by
    `leads.services.lead_consent_set`. A PostgreSQL trigger (migration 0012) refuses any
    UPDATE or DELETE, except the one update an erasure makes: blanking `ip` and `user_agent`
    while setting `erased_at`, every other column unchanged. The lead is PROTECTed: a lead
    with a consent log is anonymised (compliance), never deleted."""

    lead = models.ForeignKey(Lead, on_delete=models.PROTECT, related_name="consent_records", db_index=False)
    purpose = models.CharField(max_length=40, default=ConsentPurpose.MARKETING_EMAIL)
    legal_basis = models.CharField(max_length=20, choices=LegalBasis.choices, default=LegalBasis.CONSENT)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    text = models.TextField(blank=True, help_text="The exact words the person agreed to.")
    text_sha256 = models.CharField(max_length=64, blank=True, help_text="Version hash of the text (hex SHA-256).")
    source = models.CharField(max_length=200, blank=True, help_text="Form name, import, API, message...")
    channel = models.CharField(max_length=20, choices=ConsentChannel.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    proof_reference = models.CharField(
        max_length=200, blank=True, help_text="Double opt-in proof: the confirmation message (e.g. message:42)."
    )
    proof_at = models.DateTimeField(null=True, blank=True, help_text="When the confirmation was clicked.")
    # Plain id, not a foreign key: deleting a user must not have to change the log.
    actor_kind = models.CharField(max_length=12, choices=ActorType.choices)
    actor_id = models.BigIntegerField(null=True, blank=True)
    given_at = models.DateTimeField(help_text="When the person gave it (as told), else when recorded.")
    recorded_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True, help_text="IP and user agent blanked by an erasure.")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["lead", "purpose", "-recorded_at"], name="consent_lead_purpose")]

    def __str__(self) -> str:
        return f"{self.purpose}: {self.status} ({self.channel})"

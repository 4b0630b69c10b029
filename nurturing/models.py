"""Nurturing: segments, e-mail, sequences and workflows.

Segments are saved filters and static lists with their members.
Membership is a table kept up to date by the domain events (a lead scored, moved or
assigned is re-checked against each dynamic segment), never rebuilt whole on a read; every
entry and exit is a row of `SegmentChange`, which workflows trigger on."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", "Dynamic (a saved filter)"
    STATIC = "static", "Static list"


class Segment(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    # The filter, as `nurturing.segment_rules.clean_filter` normalised it (dynamic segments).
    filter = models.JSONField(default=dict, blank=True)
    member_count = models.PositiveIntegerField(default=0)
    # When a full evaluation last ran (creation, an edit of the filter, the nightly check of
    # time windows such as "visited in the last 7 days").
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_dynamic(self) -> bool:
        return self.kind == SegmentKind.DYNAMIC


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["segment", "lead"], name="segment_member_once")]
        indexes = [models.Index(fields=["lead"], name="segment_member_lead_idx")]


class SegmentChangeKind(models.TextChoices):
    ENTERED = "entered", "Entered"
    LEFT = "left", "Left"


class SegmentChange(models.Model):
    """A lead entered or left a segment, and why (the event that re-checked it, a hand edit)."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="segment_changes")
    kind = models.CharField(max_length=8, choices=SegmentChangeKind.choices)
    cause = models.CharField(max_length=60, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["segment", "-at"]), models.Index(fields=["lead", "-at"])]


# --- e-mail ------------------------------------------------------------------------------


class TemplateKind(models.TextChoices):
    MARKETING = "marketing", "Marketing (needs consent, carries the unsubscribe)"
    TRANSACTIONAL = "transactional", "Transactional (a confirmation, a notification)"


class SenderIdentity(models.Model):
    """Who an e-mail comes from (a verified address of the marketing team or a seller)."""

    name = models.CharField(max_length=200)
    from_email = models.EmailField(max_length=254, unique=True)
    reply_to = models.EmailField(max_length=254, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_sender"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.from_email}>"


class Topic(models.Model):
    """A subscription topic (newsletter, events, product news): a person may leave one
    without leaving all."""

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    name_fr = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TopicPreference(models.Model):
    """A lead's choice for one topic (no row: subscribed while the lead has consent)."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="topic_preferences")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="preferences")
    subscribed = models.BooleanField()
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "topic"], name="topic_preference_once")]


class EmailTemplate(models.Model):
    """Subject, HTML and text parts with merge fields (`{{ lead.first_name|default:"there" }}`),
    checked by `nurturing.mail_render.template_errors` before they are saved."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=15, choices=TemplateKind.choices, default=TemplateKind.MARKETING)
    subject = models.CharField(max_length=300)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    sender = models.ForeignKey(SenderIdentity, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.PROTECT, related_name="templates")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_marketing(self) -> bool:
        return self.kind == TemplateKind.MARKETING


class MessageStatus(models.TextChoices):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"


class Message(models.Model):
    """One e-mail to one lead: queued, then claimed and sent once (its idempotency key is
    unique, its claim takes the row lock), then what the person did with it."""

    # Indexed by `message_lead` (lead, -queued_at) below: each index costs every send.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="messages", db_index=False)
    template = models.ForeignKey(EmailTemplate, null=True, on_delete=models.SET_NULL, related_name="messages")
    kind = models.CharField(max_length=15, choices=TemplateKind.choices)
    idempotency_key = models.CharField(max_length=200)  # unique: `message_key_once` below
    status = models.CharField(max_length=15, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    to_email = models.EmailField(max_length=254, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    # The Message-ID header it was sent with (replies and provider events name it).
    smtp_id = models.CharField(max_length=255, blank=True)
    # The provider's id for it (anymail's message_id), for tracking webhooks.
    provider_id = models.CharField(max_length=255, blank=True)
    # What sent it, for the per-step and per-variant reports (empty for a one-off message).
    enrollment = models.ForeignKey(
        "Enrollment", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    step = models.CharField(max_length=40, blank=True)  # the step's path in its version's tree
    variant = models.CharField(max_length=40, blank=True)  # the split branch taken, e.g. "3:1"

    class Meta:
        ordering = ["-queued_at", "-id"]
        # Exact lookups only (no LIKE), so no pattern-ops copies: each index costs every send.
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="message_key_once")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="message_due"),
            models.Index(fields=["lead", "-queued_at"], name="message_lead"),
            models.Index(fields=["smtp_id"], name="message_smtp_id"),
            models.Index(fields=["provider_id"], name="message_provider_id"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or self.idempotency_key} → {self.to_email or self.lead_id}"


class SuppressionReason(models.TextChoices):
    OPT_OUT = "opt_out", "Opted out"
    HARD_BOUNCE = "hard_bounce", "Hard bounce"
    COMPLAINT = "complaint", "Spam complaint"
    ERASED = "erased", "Erased person"


class Suppression(models.Model):
    """Addresses no marketing e-mail goes to, whatever the lead's consent says; bounces,
    complaints and erasures stop transactional ones too."""

    email = models.CharField(max_length=254, unique=True)  # lower case
    reason = models.CharField(max_length=12, choices=SuppressionReason.choices)
    source = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.email} ({self.reason})"


# --- sequences ---------------------------------------------------------------------------


class Reentry(models.TextChoices):
    NEVER = "never", "Never"
    AFTER_DAYS = "after_days", "After N days"
    ALWAYS = "always", "Always"


class Sequence(models.Model):
    """A drip campaign: ordered steps (kept per version in `SequenceVersion`, so editing a
    running sequence never changes what its running enrollments do unless they are moved)."""

    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    # Why an enrollment ends early: any of "reply", "opt_out", "bounce", "stage_change", "converted".
    exit_on = models.JSONField(default=list, blank=True)
    reentry = models.CharField(max_length=12, choices=Reentry.choices, default=Reentry.NEVER)
    reentry_days = models.PositiveIntegerField(null=True, blank=True)  # with AFTER_DAYS
    current_version = models.ForeignKey(
        "SequenceVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SequenceVersion(models.Model):
    """The steps of a sequence as they were at one edit: a tree of step objects (SPEC.md),
    validated by the sequence rules before it is written, never changed afterwards."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    steps = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sequence", "-number"]
        constraints = [models.UniqueConstraint(fields=["sequence", "number"], name="sequence_version_once")]

    def __str__(self) -> str:
        return f"{self.sequence_id} v{self.number}"


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited (an exit rule)"
    STOPPED = "stopped", "Stopped by hand"
    FAILED = "failed", "Failed"


class Enrollment(models.Model):
    """One lead's walk through one version of a sequence. The database says what is due
    (`next_run_at`, indexed where active): a beat tick claims due rows in batches with
    SKIP LOCKED, so its cost follows the work due, not the audience."""

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(SequenceVersion, on_delete=models.PROTECT, related_name="enrollments")
    # Indexed by `enrollment_lead` (lead, -enrolled_at) below.
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="enrollments", db_index=False)
    state = models.CharField(max_length=10, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    # Where the walk stands: the path of the next step to run in the version's tree (SPEC's
    # nested "then"/"else"/"variants"), e.g. [2, "variants", 1, "steps", 0]; [] when done.
    cursor = models.JSONField(default=list, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # How many steps ran (keys the messages and tasks of a step run: a retry makes no copy).
    steps_run = models.PositiveIntegerField(default=0)
    enrolled_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=60, blank=True)
    enrolled_by = models.CharField(max_length=80, blank=True)  # "user:12", "segment:3", "workflow:5"
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-enrolled_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sequence", "lead"],
                condition=models.Q(state="active"),
                name="enrollment_active_once",
            )
        ]
        indexes = [
            models.Index(fields=["next_run_at"], condition=models.Q(state="active"), name="enrollment_due"),
            models.Index(fields=["lead", "-enrolled_at"], name="enrollment_lead"),
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} in {self.sequence_id} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state == EnrollmentState.ACTIVE


class StepRun(models.Model):
    """Every step of every enrollment that ran: what, when, and why it branched."""

    # Indexed by (enrollment, at) below.
    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="step_runs", db_index=False)
    path = models.CharField(max_length=40)  # the step's path, e.g. "2.variants.1.steps.0"
    type = models.CharField(max_length=20)
    at = models.DateTimeField()
    outcome = models.CharField(max_length=40)  # "sent", "refused:no_consent", "then", "variant:1", "waiting"...
    detail = models.JSONField(default=dict, blank=True)
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["enrollment", "at"])]


# --- workflows ---------------------------------------------------------------------------


class Workflow(models.Model):
    """If/then automation: a trigger (a domain event, inactivity, a date property), conditions
    on the lead, then actions (the sequence step actions plus assign and route)."""

    name = models.CharField(max_length=200, unique=True)
    active = models.BooleanField(default=True)
    trigger = models.JSONField(default=dict)
    conditions = models.JSONField(default=dict, blank=True)
    actions = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkflowRunResult(models.TextChoices):
    DONE = "done", "Actions ran"
    SKIPPED = "skipped", "Conditions not met"
    LOOP = "loop", "Stopped: a loop"
    FAILED = "failed", "Failed"


class WorkflowRun(models.Model):
    """One trigger of a workflow for one lead, traced: the trigger, the conditions, each
    action's outcome. `key` makes a re-delivered trigger run once."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="workflow_runs")
    key = models.CharField(max_length=200, unique=True)
    trigger = models.JSONField(default=dict)
    result = models.CharField(max_length=10, choices=WorkflowRunResult.choices)
    trace = models.JSONField(default=list, blank=True)
    depth = models.PositiveSmallIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["workflow", "-at"]), models.Index(fields=["lead", "-at"])]

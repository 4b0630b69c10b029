"""Routing as data: territories, partners, ordered rules, SLA policies, and the state the
router keeps (round-robin counters, SLA clocks, partner offers).

Every write goes through `routing.services`; decisions are made by the pure `routing.engine`.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Territory(models.Model):
    """A named region (e.g. "DACH", "Benelux") as a set of countries; rules match it with the
    `region` condition and partners cover territories."""

    name = models.CharField(max_length=100, unique=True)
    countries = models.JSONField(default=list, blank=True, help_text="ISO 3166-1 alpha-2 codes.")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "territories"

    def __str__(self) -> str:
        return self.name


class PartnerKind(models.TextChoices):
    RESELLER = "reseller", "Reseller"
    DISTRIBUTOR = "distributor", "Distributor"


class Partner(models.Model):
    """An external sales force. Its `user` is the partner's login: leads offered to the
    partner are owned by it until the partner accepts, declines or lets the deadline pass."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=12, choices=PartnerKind.choices, default=PartnerKind.RESELLER)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="partners")
    territories = models.ManyToManyField(Territory, blank=True, related_name="partners")
    email = models.EmailField(blank=True)
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    response_hours = models.PositiveIntegerField(
        default=48, validators=[MinValueValidator(1)], help_text="Time to accept or decline an offered lead."
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Ordered (lower `position` first); the first active rule whose conditions all hold
    fires. Empty conditions match everything: the default rule, placed last. One target:
    a team (round-robin), a named seller, a partner, or any partner covering the lead's
    country (`partners_by_territory`)."""

    name = models.CharField(max_length=200)
    position = models.IntegerField(default=100, db_index=True)
    conditions = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    partner = models.ForeignKey(Partner, null=True, blank=True, on_delete=models.CASCADE, related_name="rules")
    partners_by_territory = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(team__isnull=False, user__isnull=True, partner__isnull=True, partners_by_territory=False)
                    | models.Q(team__isnull=True, user__isnull=False, partner__isnull=True, partners_by_territory=False)
                    | models.Q(team__isnull=True, user__isnull=True, partner__isnull=False, partners_by_territory=False)
                    | models.Q(team__isnull=True, user__isnull=True, partner__isnull=True, partners_by_territory=True)
                ),
                name="routingrule_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class RoutingSettings(models.Model):
    """One row: when routing runs and where unmatched leads go."""

    route_on_mql = models.BooleanField(default=True, help_text="Route a lead when it reaches MQL.")
    route_on_capture = models.BooleanField(default=False, help_text="Also route new leads at capture.")
    default_team = models.ForeignKey(
        "accounts.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where a lead goes when no rule matches.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return "Routing settings"

    @classmethod
    def current(cls) -> RoutingSettings:
        return cls.objects.select_related("default_team").filter(pk=1).first() or cls(pk=1)


def weekdays_default() -> list[int]:
    return [0, 1, 2, 3, 4]


class SlaPolicy(models.Model):
    """Time to first touch for leads of a grade and/or stage (blank = any), counted in the
    business hours of the owner's team's time zone. After the breach, `reassign_after_minutes`
    more business minutes without a touch and the lead is routed again."""

    name = models.CharField(max_length=100)
    grade = models.CharField(max_length=1, blank=True)
    stage = models.CharField(max_length=16, blank=True)
    minutes_to_first_touch = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    reassign_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Second delay after the breach before reassignment; blank: never."
    )
    day_start = models.TimeField(default="09:00")
    day_end = models.TimeField(default="18:00")
    weekdays = models.JSONField(default=weekdays_default, help_text="Working days, Monday = 0.")
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["grade", "stage", "id"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"

    def __str__(self) -> str:
        return self.name


class RoundRobinState(models.Model):
    """How many leads each seller got from their team's round-robin: the fairness memory."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    served = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="roundrobin_team_user")]


class SlaClock(models.Model):
    """One per owner assignment: when it started, when the first touch is due, when the
    owner touched the lead, whether it breached and was reassigned."""

    # No single-column indexes: the composite indexes below start with lead, owner and team
    # (fewer indexes to maintain when a batch routing inserts thousands of clocks).
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="sla_clocks", db_index=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    policy = models.ForeignKey(
        SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    reassign_at = models.DateTimeField(null=True, blank=True)
    first_touch_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    reassigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True, help_text="Touched, reassigned or handed over.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["due_at"], name="slaclock_open_due", condition=models.Q(closed_at__isnull=True)),
            models.Index(fields=["lead", "closed_at"]),
            models.Index(fields=["owner", "started_at"]),
            models.Index(fields=["team", "started_at"]),
        ]

    @property
    def met(self) -> bool | None:
        if self.first_touch_at is not None:
            return self.first_touch_at <= self.due_at
        return False if self.breached_at else None


class OfferStatus(models.TextChoices):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"


class PartnerOffer(models.Model):
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="partner_offers")
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="offers")
    rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=OfferStatus.choices, default=OfferStatus.PENDING)
    offered_at = models.DateTimeField()
    deadline = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-offered_at", "-id"]
        indexes = [
            models.Index(
                fields=["deadline"], name="partneroffer_pending_deadline", condition=models.Q(status="pending")
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["lead"], condition=models.Q(status="pending"), name="partneroffer_one_pending_per_lead"
            )
        ]

    def __str__(self) -> str:
        return f"{self.lead_id} → {self.partner_id} ({self.status})"

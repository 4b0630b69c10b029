"""Users, their role and their team: the basis of every permission check."""

import zoneinfo

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone: {value!r}.")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    manager = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_teams"
    )
    timezone = models.CharField(max_length=64, default="Europe/Paris", validators=[validate_timezone])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    MARKETING = "marketing", "Marketing"
    MANAGER = "manager", "Sales manager"
    SDR = "sdr", "SDR / seller"


class User(AbstractUser):
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.SDR)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    # Routing profile: how many open leads a seller can hold, their share, and whether
    # they take new leads now ("away" when False).
    capacity = models.PositiveIntegerField(default=50)
    weight = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    routing_active = models.BooleanField(default=True)
    # Spoken languages (ISO 639-1 codes) and product lines the seller covers.
    languages = models.JSONField(default=list, blank=True)
    skills = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["username"]

    # --- role predicates, used by selectors and permissions -------------------------------
    @property
    def is_admin_role(self) -> bool:
        return self.is_superuser or self.role == Role.ADMIN

    @property
    def uses_admin(self) -> bool:
        """The Django admin is for admins (superusers or the admin role), active ones."""
        return self.is_active and self.is_admin_role

    @property
    def sees_all_leads(self) -> bool:
        return self.is_admin_role or self.role == Role.MARKETING

    @property
    def works_leads(self) -> bool:
        """Sales roles move leads through the sales stages; marketing only reads them."""
        return self.is_admin_role or self.role in (Role.MANAGER, Role.SDR)


class Notification(models.Model):
    """An in-app message to one user (new lead, SLA breach, pool waiting...)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    text = models.TextField()
    # A plain id, not a foreign key: accounts never imports leads.
    lead_id = models.BigIntegerField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} → {self.user_id}"

"""Scoring rules as data: versioned rule sets (one active per score group), fit rules,
engagement rules and the trained predictive models.

Every write goes through `scoring.services`; the computation is `scoring.engine`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

DEFAULT_GROUP = "default"


class Operator(models.TextChoices):
    EQUALS = "equals", "equals"
    IN = "in", "is one of"
    CONTAINS = "contains", "contains"
    RANGE = "range", "in range"
    EXISTS = "exists", "is set"


class RuleSet(models.Model):
    """One version of a score model. A score group (e.g. one per product line) keeps its
    versions; exactly one of them is active and scores the leads. The `default` group's
    score is the lead's `score`."""

    group = models.SlugField(max_length=50, default=DEFAULT_GROUP)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=False)
    mql_threshold = models.PositiveSmallIntegerField(default=50)
    # Grade from fit: fit >= grade_a_min → A, >= grade_b_min → B, >= grade_c_min → C, else D.
    grade_a_min = models.PositiveSmallIntegerField(default=75)
    grade_b_min = models.PositiveSmallIntegerField(default=50)
    grade_c_min = models.PositiveSmallIntegerField(default=25)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["group", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["group", "version"], name="ruleset_group_version_unique"),
            models.UniqueConstraint(
                fields=["group"], condition=models.Q(is_active=True), name="ruleset_one_active_per_group"
            ),
            models.CheckConstraint(
                condition=models.Q(grade_a_min__gte=models.F("grade_b_min"))
                & models.Q(grade_b_min__gte=models.F("grade_c_min")),
                name="ruleset_grade_bands_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} v{self.version}" + (f" ({self.name})" if self.name else "")


class FitRule(models.Model):
    """Profile points: `field` is a lead field (`industry`, `company_size`, ...) or a custom
    field as `properties.<key>`; `value` depends on the operator (a value, a list, a
    substring, `{"min": .., "max": ..}`, nothing for `exists`)."""

    ruleset = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="fit_rules")
    name = models.CharField(max_length=200, blank=True)
    field = models.CharField(max_length=150)
    operator = models.CharField(max_length=10, choices=Operator.choices)
    value = models.JSONField(null=True, blank=True)
    points = models.SmallIntegerField()

    class Meta:
        ordering = ["ruleset", "id"]

    def __str__(self) -> str:
        return self.name or f"{self.field} {self.operator} {self.value!r}"


class EngagementRule(models.Model):
    """Behaviour points per event of `event_type` (optionally only when its URL matches
    `url_pattern`, a regular expression, or its `properties[property_key]` equals
    `property_value`). Points may be negative; at most `cap` points (in absolute value) per
    `cap_period_days` (or ever, without a period); each event's points halve every
    `half_life_days` (no decay when empty)."""

    ruleset = models.ForeignKey(RuleSet, on_delete=models.CASCADE, related_name="engagement_rules")
    name = models.CharField(max_length=200, blank=True)
    event_type = models.CharField(max_length=20)
    url_pattern = models.CharField(max_length=500, blank=True)
    property_key = models.CharField(max_length=100, blank=True)
    property_value = models.JSONField(null=True, blank=True)
    points = models.SmallIntegerField()
    cap = models.PositiveSmallIntegerField(null=True, blank=True)
    cap_period_days = models.PositiveSmallIntegerField(null=True, blank=True)
    half_life_days = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["ruleset", "id"]

    def __str__(self) -> str:
        return self.name or f"{self.event_type} {self.points:+d}"


class PredictiveModel(models.Model):
    """One trained conversion model, stored in the database (no shared filesystem needed):
    `blob` is the joblib dump of the scikit-learn pipeline. The newest active one scores."""

    version = models.PositiveIntegerField(unique=True)
    algorithm = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)
    auc = models.FloatField(null=True, blank=True, help_text="Hold-out ROC AUC")
    n_train = models.PositiveIntegerField(default=0)
    n_test = models.PositiveIntegerField(default=0)
    positives = models.PositiveIntegerField(default=0)
    calibration = models.JSONField(default=list, blank=True)
    top_features = models.JSONField(default=list, blank=True)
    blob = models.BinaryField()
    trained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Predictive v{self.version} (AUC {self.auc:.3f})" if self.auc is not None else f"v{self.version}"


class LeadScore(models.Model):
    """A lead's score in another score group than `default` (e.g. one per product line),
    each group with its own rules and threshold. The default group's score is the lead's
    own `score` (it drives the lifecycle: MQL)."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="group_scores")
    group = models.SlugField(max_length=50)
    ruleset = models.ForeignKey(RuleSet, null=True, on_delete=models.SET_NULL, related_name="+")
    score = models.PositiveSmallIntegerField(default=0)
    fit_score = models.PositiveSmallIntegerField(default=0)
    engagement_score = models.PositiveSmallIntegerField(default=0)
    grade = models.CharField(max_length=1, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "group"], name="leadscore_lead_group_unique")]
        indexes = [models.Index(fields=["group", "-score"])]

    def __str__(self) -> str:
        return f"{self.group}: {self.score}"

"""Reads on scoring: rule sets, the active one as engine values, the MQL threshold, models."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from scoring import engine
from scoring.models import DEFAULT_GROUP, LeadScore, PredictiveModel, RuleSet


def rulesets(*, group: str | None = None) -> QuerySet[RuleSet]:
    qs = RuleSet.objects.prefetch_related("fit_rules", "engagement_rules")
    return qs.filter(group=group) if group else qs


def active_ruleset(*, group: str = DEFAULT_GROUP) -> RuleSet | None:
    return rulesets(group=group).filter(is_active=True).first()


def active_rulesets() -> list[RuleSet]:
    """Active versions, the default group first."""
    return sorted(rulesets().filter(is_active=True), key=lambda r: (r.group != DEFAULT_GROUP, r.group))


def lead_scores(lead) -> list[dict]:
    """A lead's score in every active group: the default group's from the lead itself."""
    active = {r.group: r for r in RuleSet.objects.filter(is_active=True)}
    rows = []
    default = active.get(DEFAULT_GROUP)
    rows.append(
        {
            "group": DEFAULT_GROUP,
            "score": lead.score,
            "fit_score": lead.fit_score,
            "engagement_score": lead.engagement_score,
            "grade": lead.grade,
            "mql_threshold": default.mql_threshold if default else mql_threshold(),
            "qualified": lead.score >= (default.mql_threshold if default else mql_threshold()),
            "version": default.version if default else None,
        }
    )
    for s in LeadScore.objects.filter(lead=lead, group__in=list(active)).order_by("group"):
        rs = active[s.group]
        rows.append(
            {
                "group": s.group,
                "score": s.score,
                "fit_score": s.fit_score,
                "engagement_score": s.engagement_score,
                "grade": s.grade,
                "mql_threshold": rs.mql_threshold,
                "qualified": s.score >= rs.mql_threshold,
                "version": rs.version,
                "reasons": s.reasons,
            }
        )
    return rows


def ruleset_spec(ruleset: RuleSet) -> engine.RuleSet:
    """The rule set as the engine's plain values (rules prefetched: no query per rule)."""
    return engine.RuleSet(
        id=ruleset.pk,
        fit_rules=tuple(
            engine.FitRule(
                id=r.pk, name=r.name or str(r), field=r.field, operator=r.operator, value=r.value, points=r.points
            )
            for r in ruleset.fit_rules.all()
        ),
        engagement_rules=tuple(
            engine.EngagementRule(
                id=r.pk,
                name=r.name or str(r),
                event_type=r.event_type,
                points=r.points,
                url_pattern=r.url_pattern,
                property_key=r.property_key,
                property_value=r.property_value,
                cap=r.cap,
                cap_period_days=r.cap_period_days,
                half_life_days=r.half_life_days,
            )
            for r in ruleset.engagement_rules.all()
        ),
        mql_threshold=ruleset.mql_threshold,
        grade_a_min=ruleset.grade_a_min,
        grade_b_min=ruleset.grade_b_min,
        grade_c_min=ruleset.grade_c_min,
    )


def mql_threshold() -> int:
    """The active default rule set's MQL threshold; settings.LEADCRM_MQL_THRESHOLD until a
    rule set is active. Named by settings.LEADCRM_MQL_THRESHOLD_SELECTOR for the leads app."""
    value = RuleSet.objects.filter(group=DEFAULT_GROUP, is_active=True).values_list("mql_threshold", flat=True).first()
    return settings.LEADCRM_MQL_THRESHOLD if value is None else value


def predictive_model_active() -> PredictiveModel | None:
    return PredictiveModel.objects.filter(is_active=True).order_by("-version").first()


def predictive_models() -> QuerySet[PredictiveModel]:
    return PredictiveModel.objects.defer("blob")


def fit_points_of(*, ruleset: RuleSet, profiles: list[dict]) -> list[int]:
    """The fit points each profile (lead fields by name, as a capture gives them) would
    get under the rule set: the real engine's, for a lead not yet written (the demo data
    ranks its generated people by it)."""
    compiled = engine.compile_ruleset(ruleset_spec(ruleset))
    return [engine.fit_points(compiled, engine.LeadFacts(id=0, fields=fields))[0] for fields in profiles]

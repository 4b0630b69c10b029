"""Rule-set configuration: versions of a score group's rule set and their rules, created
(validated), copied, edited and activated; audited. A change to the active set asks for a
full rescore of its group (the resumable job, written in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from scoring import selectors
from scoring.models import DEFAULT_GROUP, EngagementRule, FitRule, RuleSet
from scoring.services.rescore_job import rescore_start
from scoring.services.validation import (
    ENGAGEMENT_RULE_FIELDS,
    FIT_RULE_FIELDS,
    RULESET_FIELDS,
    engagement_rule_values,
    fit_rule_values,
    picked,
    validate_engagement_rule,
    validate_fit_rule,
    validate_ruleset,
)


def ruleset_create(*, data: dict, actor: Actor) -> RuleSet:
    """A new (inactive) version in its score group, with its rules. Bad rules → 400."""
    return _ruleset_create(data, actor, "scoring.ruleset.create", {})


def _ruleset_create(data: dict, actor: Actor, action: str, details: dict) -> RuleSet:
    errors = validate_ruleset(data)
    if errors:
        raise ServiceError(errors)
    group = data.get("group") or DEFAULT_GROUP
    for attempt in range(3):
        try:
            return _ruleset_insert(group, data, actor, action, details)
        except IntegrityError:
            if attempt == 2:
                raise  # the unique (group, version) keeps numbering right; retry takes the next one
    raise AssertionError("unreachable")


def _ruleset_insert(group: str, data: dict, actor: Actor, action: str, details: dict) -> RuleSet:
    with transaction.atomic():
        # Serialise version numbering within a group (a first version races on the unique key).
        list(RuleSet.objects.select_for_update().filter(group=group).values_list("pk"))
        version = (RuleSet.objects.filter(group=group).aggregate(v=Max("version"))["v"] or 0) + 1
        ruleset = RuleSet.objects.create(
            group=group, version=version, created_by=actor.user, **picked(data, RULESET_FIELDS)
        )
        FitRule.objects.bulk_create(
            [FitRule(ruleset=ruleset, **fit_rule_values(r)) for r in data.get("fit_rules") or []]
        )
        EngagementRule.objects.bulk_create(
            [EngagementRule(ruleset=ruleset, **engagement_rule_values(r)) for r in data.get("engagement_rules") or []]
        )
        audit.record(
            actor=actor,
            action=action,
            target=ruleset,
            changes={k: [None, v] for k, v in audit.snapshot(ruleset, ("group", "version", *RULESET_FIELDS)).items()},
            details={
                **details,
                "fit_rules": data.get("fit_rules") or [],
                "engagement_rules": data.get("engagement_rules") or [],
            },
        )
    return ruleset


def ruleset_copy(*, ruleset_id: int, actor: Actor, name: str = "") -> RuleSet:
    """A new draft version with the same thresholds and rules, to edit before activating."""
    src = selectors.rulesets().get(pk=ruleset_id)
    data = {
        "group": src.group,
        **{k: getattr(src, k) for k in RULESET_FIELDS},
        "fit_rules": [{k: getattr(r, k) for k in FIT_RULE_FIELDS} for r in src.fit_rules.all()],
        "engagement_rules": [{k: getattr(r, k) for k in ENGAGEMENT_RULE_FIELDS} for r in src.engagement_rules.all()],
    }
    # The default name must fit the column even when the source's name is already full.
    data["name"] = name or (f"Copy of v{src.version}" + (f" ({src.name})" if src.name else ""))[:200]
    return _ruleset_create(data, actor, "scoring.ruleset.copy", {"copied_from": {"id": src.pk, "version": src.version}})


def _rescore_if_active(ruleset: RuleSet, actor: Actor, reason: str) -> None:
    """The active set changed: its group's scores for every lead, as the resumable rescore
    job (written in this transaction, so kept while the broker is down)."""
    if ruleset.is_active:
        rescore_start(actor=actor, group=ruleset.group, reason=reason)


def ruleset_update(*, ruleset_id: int, data: dict, actor: Actor) -> RuleSet:
    """Thresholds, grade bands, name. Editing the active set rescores everyone."""
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        merged = {k: getattr(ruleset, k) for k in ("grade_a_min", "grade_b_min", "grade_c_min")}
        merged.update(picked(data, RULESET_FIELDS))
        errors = validate_ruleset({**merged, "group": ruleset.group})
        if errors:
            raise ServiceError(errors)
        before = audit.snapshot(ruleset, RULESET_FIELDS)
        for k, v in picked(data, RULESET_FIELDS).items():
            setattr(ruleset, k, v)
        ruleset.save()
        audit.record(
            actor=actor,
            action="scoring.ruleset.update",
            target=ruleset,
            changes=audit.diff(before, ruleset),
            skip_empty=True,
        )
        _rescore_if_active(ruleset, actor, "scoring.ruleset.update")
    return ruleset


def ruleset_activate(*, ruleset_id: int, actor: Actor) -> RuleSet:
    """Make this version the active one of its group (the previous one is kept, inactive)
    and rescore every lead in the background once committed."""
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        previous = list(
            RuleSet.objects.filter(group=ruleset.group, is_active=True)
            .exclude(pk=ruleset.pk)
            .values_list("pk", "version")
        )
        RuleSet.objects.filter(pk__in=[pk for pk, _ in previous]).update(is_active=False)
        was_active = ruleset.is_active
        ruleset.is_active, ruleset.activated_at = True, timezone.now()
        ruleset.save(update_fields=["is_active", "activated_at"])
        audit.record(
            actor=actor,
            action="scoring.ruleset.activate",
            target=ruleset,
            changes={"is_active": [was_active, True]} if not was_active else {},
            details={"deactivated": [{"id": pk, "version": v} for pk, v in previous]},
        )
        _rescore_if_active(ruleset, actor, "scoring.ruleset.activate")
    return ruleset


def rule_create(*, ruleset_id: int, kind: str, data: dict, actor: Actor) -> FitRule | EngagementRule:
    """Add a fit or engagement rule (`kind`: "fit" / "engagement") to a rule set."""
    model, check, values = _rule_kind(kind)
    errors = check(data)
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        rule = model.objects.create(ruleset=ruleset, **values(data))
        audit.record(
            actor=actor,
            action="scoring.rule.create",
            target=rule,
            changes={k: [None, v] for k, v in audit.snapshot(rule, _rule_fields(model)).items()},
            details={"kind": kind, "ruleset": ruleset.pk},
        )
        _rescore_if_active(ruleset, actor, "scoring.rule.create")
    return rule


def rule_update(*, kind: str, rule_id: int, data: dict, actor: Actor) -> FitRule | EngagementRule:
    """Change a rule's fields (validated as a whole); the active set's change rescores."""
    model, check, values = _rule_kind(kind)
    with transaction.atomic():
        rule = model.objects.select_for_update().select_related("ruleset").get(pk=rule_id)
        names = _rule_fields(model)
        before = audit.snapshot(rule, names)
        merged = {**{k: getattr(rule, k) for k in names}, **picked(data, names)}
        errors = check(merged)
        if errors:
            raise ServiceError(errors)
        for k, v in values(merged).items():
            setattr(rule, k, v)
        rule.save()
        audit.record(
            actor=actor,
            action="scoring.rule.update",
            target=rule,
            changes=audit.diff(before, rule),
            details={"kind": kind, "ruleset": rule.ruleset_id},
            skip_empty=True,
        )
        _rescore_if_active(rule.ruleset, actor, "scoring.rule.update")
    return rule


def rule_delete(*, kind: str, rule_id: int, actor: Actor) -> None:
    model, _, _ = _rule_kind(kind)
    with transaction.atomic():
        rule = model.objects.select_related("ruleset").get(pk=rule_id)
        audit.record(
            actor=actor,
            action="scoring.rule.delete",
            target=rule,
            changes={k: [v, None] for k, v in audit.snapshot(rule, _rule_fields(model)).items()},
            details={"kind": kind, "ruleset": rule.ruleset_id},
        )
        rule.delete()
        _rescore_if_active(rule.ruleset, actor, "scoring.rule.delete")


def _rule_fields(model: type) -> tuple[str, ...]:
    return FIT_RULE_FIELDS if model is FitRule else ENGAGEMENT_RULE_FIELDS


def _rule_kind(kind: str) -> tuple[type, Callable, Callable]:
    """(model, validator, stored values) of a rule kind."""
    if kind == "fit":
        return FitRule, validate_fit_rule, fit_rule_values
    if kind == "engagement":
        return EngagementRule, validate_engagement_rule, engagement_rule_values
    raise ServiceError({"kind": ["`fit` or `engagement`."]})

"""Routing configuration, audited: rules (their target and conditions checked by
`routing.rules.routing_rule_errors`, the one definition the admin form and these services
use; the API's writes come here),
territories, partners, SLA policies, the settings, and a seller's routing profile."""

from __future__ import annotations

from django.db import transaction

from accounts import services as accounts_services
from accounts.models import User
from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from routing import rules, selectors
from routing.models import RoutingRule, RoutingSettings


def _check_rule(conditions: object, targets: dict, *, user_changed: bool = True) -> None:
    errors = rules.routing_rule_errors(
        conditions=conditions,
        **{k: targets.get(k) for k in ("team", "user", "partner")},
        partners_by_territory=bool(targets.get("partners_by_territory")),
        regions=selectors.territory_names(),
        user_changed=user_changed,
    )
    if errors:
        raise ServiceError(errors)


RULE_FIELDS = ("name", "position", "conditions", "team", "user", "partner", "partners_by_territory", "active")


def routing_rule_create(*, actor: Actor, **fields) -> RoutingRule:
    fields.setdefault("conditions", {})
    _check_rule(fields["conditions"], fields)
    with transaction.atomic():
        rule = RoutingRule.objects.create(**{k: v for k, v in fields.items() if k in RULE_FIELDS})
        audit.record(
            actor=actor,
            action="routing.rule.create",
            target=rule,
            changes={k: [None, v] for k, v in audit.snapshot(rule, RULE_FIELDS).items()},
        )
        return rule


def routing_rule_update(*, rule: RoutingRule, actor: Actor, **fields) -> RoutingRule:
    merged = {k: getattr(rule, k) for k in ("team", "user", "partner", "partners_by_territory")}
    for k in ("team", "user", "partner", "partners_by_territory"):
        if k in fields:
            merged = {
                "team": None,
                "user": None,
                "partner": None,
                "partners_by_territory": False,
                **{x: fields[x] for x in ("team", "user", "partner", "partners_by_territory") if x in fields},
            }
            break
    conditions = fields.get("conditions", rule.conditions)
    _check_rule(conditions, merged, user_changed="user" in fields)
    with transaction.atomic():
        before = audit.snapshot(rule, RULE_FIELDS)
        for k, v in {**fields, **merged}.items():
            if k in RULE_FIELDS:
                setattr(rule, k, v)
        rule.save()
        audit.record(
            actor=actor, action="routing.rule.update", target=rule, changes=audit.diff(before, rule), skip_empty=True
        )
    return rule


def routing_rule_delete(*, rule: RoutingRule, actor: Actor) -> None:
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="routing.rule.delete",
            target=rule,
            changes={k: [v, None] for k, v in audit.snapshot(rule, RULE_FIELDS).items()},
        )
        rule.delete()


def config_save(*, instance, actor: Actor, fields: dict, m2m: dict | None = None):
    """Create or update a territory, partner or SLA policy (validated by the API)."""
    with transaction.atomic():
        created = instance.pk is None
        names = [*fields, *(m2m or {})]
        before = dict.fromkeys(names) if created else audit.snapshot(instance, names)
        for k, v in fields.items():
            setattr(instance, k, v)
        instance.full_clean(exclude=[f for f in ("user",) if f not in fields and instance.pk])
        instance.save()
        for k, v in (m2m or {}).items():
            getattr(instance, k).set(v)
        audit.record(
            actor=actor,
            action=f"routing.{instance._meta.model_name}.{'create' if created else 'update'}",
            target=instance,
            changes=audit.diff(before, instance),
            skip_empty=not created,
        )
    return instance


def config_delete(*, instance, actor: Actor) -> None:
    """Delete a territory, partner or SLA policy, its last values kept in the audit log."""
    with transaction.atomic():
        names = [f.name for f in instance._meta.concrete_fields if not f.primary_key]
        audit.record(
            actor=actor,
            action=f"routing.{instance._meta.model_name}.delete",
            target=instance,
            changes={k: [v, None] for k, v in audit.snapshot(instance, names).items()},
        )
        instance.delete()


def routing_settings_update(*, actor: Actor, **fields) -> RoutingSettings:
    with transaction.atomic():
        current, _ = RoutingSettings.objects.get_or_create(pk=1)
        names = ("route_on_mql", "route_on_capture", "default_team")
        before = audit.snapshot(current, names)
        for k in names:
            if k in fields:
                setattr(current, k, fields[k])
        current.save()
        audit.record(
            actor=actor,
            action="routing.settings.update",
            target=current,
            changes=audit.diff(before, current),
            skip_empty=True,
        )
    return current


def seller_profile_update(*, seller: User, actor: Actor, **fields) -> User:
    """Capacity, weight, availability and skills of a seller, from the manager page."""
    allowed = {k: v for k, v in fields.items() if k in ("capacity", "weight", "routing_active", "languages", "skills")}
    return accounts_services.user_update(user=seller, actor=actor, **allowed)

"""What a valid routing rule is, once: its target and its conditions (SPEC "Admin API",
`/api/v1/routing-rules/`). Pure: plain values in, field errors out, no database.

The admin form (`routing.admin.RoutingRuleForm`), the API (through the services) and the
services (`routing.services.configuration`) all ask `routing_rule_errors`.
"""

from __future__ import annotations

from collections.abc import Iterable

from leadcrm.permissions import may_own_leads
from routing import engine

# A rule's targets: exactly one of these is given (partners_by_territory is a flag).
TARGET_FIELDS = ("team", "user", "partner", "partners_by_territory")

TARGET_MESSAGE = "Give exactly one target: team, user or partner (or partners_by_territory)."
USER_MESSAGE = "Leads can only be routed to active sellers or managers."


def conditions_errors(conditions: object, regions: Iterable[str] | None = None) -> list[str]:
    """The `conditions` object's errors as messages naming their condition ("country: ...")."""
    errors = engine.validate_conditions(conditions, regions)
    if list(errors) == ["conditions"]:
        return errors["conditions"]
    return [f"{key}: {message}" for key, messages in errors.items() for message in messages]


def routing_rule_errors(
    *,
    conditions: object,
    team: object | None = None,
    user: object | None = None,
    partner: object | None = None,
    partners_by_territory: bool = False,
    regions: Iterable[str] | None = None,
    user_changed: bool = True,
) -> dict[str, list[str]]:
    """Field errors of a routing rule (empty when it is valid):

    - `conditions`: an object whose keys and value shapes are `engine.validate_conditions`'s
      (lists of strings, numbers with min <= max, properties as {key: [values]}; `region`
      names one of `regions` when they are given);
    - `target`: exactly one of team, user, partner or partners_by_territory;
    - `user`: a user target may own leads (`leadcrm.permissions.may_own_leads`: an active
      seller); `user` is anything with `is_active` and `role`. Checked when the user target
      is set (`user_changed`): a rule left pointing at a seller who has since left can still
      be renamed or switched off.
    """
    errors: dict[str, list[str]] = {}
    found = conditions_errors(conditions, regions)
    if found:
        errors["conditions"] = found
    given = sum(t is not None for t in (team, user, partner)) + bool(partners_by_territory)
    if given != 1:
        errors["target"] = [TARGET_MESSAGE]
    if user_changed and user is not None and not may_own_leads(user):
        errors["user"] = [USER_MESSAGE]
    return errors

"""Who owns a lead: giving it to a seller, or to a team's pool.

Who may own leads at all is `leadcrm.permissions.may_own_leads`; routing decides whom
(`routing.services`) and writes through here.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leadcrm.permissions import may_own_leads
from leads.models import (
    Assignment,
    Lead,
)


def lead_assign(
    *,
    lead_id: int,
    owner: User | None,
    actor: Actor,
    reason: str = "",
    details: dict | None = None,
    team_id: int | None = None,
    only_unowned: bool = False,
) -> Lead:
    """One lead: a batch of one of `leads_assign`."""
    leads_assign(
        lead_ids=[lead_id],
        owner=owner,
        actor=actor,
        reason=reason,
        details=details,
        team_id=team_id,
        only_unowned=only_unowned,
    )
    return Lead.objects.get(pk=lead_id)


def leads_assign(
    *,
    lead_ids: list[int],
    owner: User | None,
    actor: Actor,
    reason: str = "",
    details: dict | None = None,
    team_id: int | None = None,
    only_unowned: bool = False,
) -> list[int]:
    """Give the leads to a seller (or, with no owner, to a team's pool). Audited and
    announced as one `lead.assigned`; answers the ids whose owner or team changed.

    `only_unowned` (a claim from the pool) is checked under the row locks, so of two
    sellers claiming the same lead at once one gets it and the other a 409."""
    if owner is not None and not may_own_leads(owner):
        raise ServiceError({"owner": ["Leads can only be assigned to active sellers or managers."]})
    changed: list[int] = []
    with transaction.atomic():
        leads = list(Lead.objects.select_for_update().filter(pk__in=lead_ids).order_by("pk"))
        if only_unowned and any(lead.owner_id is not None for lead in leads):
            raise Conflict("already_owned", "This lead already has an owner.")
        now = timezone.now()
        rows, entries, moved = [], [], []
        for lead in leads:
            previous, previous_team = lead.owner_id, lead.team_id
            team = owner.team_id if owner is not None else team_id if team_id is not None else lead.team_id
            if previous == (owner.pk if owner else None) and team == lead.team_id:
                continue
            lead.owner, lead.team_id, lead.updated_at = owner, team, now
            moved.append(lead)
            rows.append(
                Assignment(
                    lead=lead,
                    from_owner_id=previous,
                    to_owner=owner,
                    team_id=team,
                    actor_type=actor.kind,
                    actor=actor.user,
                    reason=reason,
                    details=details or {},
                )
            )
            entries.append(
                audit.entry(
                    actor=actor,
                    action="lead.assign",
                    target=lead,
                    changes=audit.diff({"owner": previous, "team": previous_team}, {"owner": owner, "team": team}),
                    details={"reason": reason},
                )
            )
            changed.append(lead.pk)
        if changed:
            Lead.objects.bulk_update(moved, ["owner", "team", "updated_at"])
            Assignment.objects.bulk_create(rows)
            audit.record_many(entries)
            events.emit(events.LEAD_ASSIGNED, lead_ids=changed, owner_id=owner.pk if owner else None)
    return changed

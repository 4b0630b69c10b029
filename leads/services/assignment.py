"""Who owns a lead: giving it to a seller, or to a team's pool.

Who may own leads at all is `leadcrm.permissions.may_own_leads`; routing decides whom
(`routing.services`) and writes through here.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
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
) -> Lead:
    """Give the lead to a seller (or, with no owner, to a team's pool). Audited and announced
    as `lead.assigned`."""
    if owner is not None and not may_own_leads(owner):
        raise ServiceError({"owner": ["Leads can only be assigned to active sellers or managers."]})
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        previous, previous_team = lead.owner_id, lead.team_id
        team = owner.team_id if owner is not None else team_id if team_id is not None else lead.team_id
        if previous == (owner.pk if owner else None) and team == lead.team_id:
            return lead
        lead.owner, lead.team_id = owner, team
        lead.save(update_fields=["owner", "team", "updated_at"])
        Assignment.objects.create(
            lead=lead,
            from_owner_id=previous,
            to_owner=owner,
            team_id=team,
            actor_type=actor.kind,
            actor=actor.user,
            reason=reason,
            details=details or {},
        )
        audit.record(
            actor=actor,
            action="lead.assign",
            target=lead,
            changes=audit.diff({"owner": previous, "team": previous_team}, {"owner": owner, "team": team}),
            details={"reason": reason},
        )
        events.emit(events.LEAD_ASSIGNED, lead_ids=[lead.pk], owner_id=owner.pk if owner else None)
    return lead

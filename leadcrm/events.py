"""Domain events and who reacts to them: the one table a reader follows from capture to
scoring, routing and nurturing.

Services call `emit()` inside their transaction; reactions (Celery tasks, named by dotted
path so apps never import each other in a circle) are enqueued only after commit, so a
rolled-back write never triggers anything. Every payload carries `lead_ids`, so a batch
of 10,000 leads is one message, not 10,000.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

LEAD_CREATED = "lead.created"
LEAD_UPDATED = "lead.updated"
LEAD_ACTIVITY_RECORDED = "lead.activity_recorded"
LEAD_STAGE_CHANGED = "lead.stage_changed"
LEAD_ASSIGNED = "lead.assigned"
LEAD_SCORE_CHANGED = "lead.score_changed"

# event -> Celery tasks (dotted paths) that react, in order.
REACTIONS: dict[str, tuple[str, ...]] = {
    LEAD_CREATED: ("scoring.tasks.leads_rescore", "routing.tasks.leads_route_on_capture"),
    LEAD_UPDATED: ("scoring.tasks.leads_rescore",),
    LEAD_ACTIVITY_RECORDED: (
        "leads.tasks.lead_activity_refresh",
        "scoring.tasks.leads_rescore",
        "routing.tasks.sla_first_touch",
    ),
    LEAD_STAGE_CHANGED: ("routing.tasks.leads_route_on_stage", "routing.tasks.sla_first_touch"),
    LEAD_ASSIGNED: ("routing.tasks.sla_clocks_sync",),
    LEAD_SCORE_CHANGED: (),
}


def emit(event: str, *, lead_ids: list[int], **payload: object) -> None:
    if event not in REACTIONS:
        raise ValueError(f"Unknown domain event {event!r}")
    if not lead_ids or not REACTIONS[event]:
        return
    data = {"lead_ids": list(lead_ids), **payload}
    transaction.on_commit(lambda: _dispatch(event, data))


def _dispatch(event: str, data: dict) -> None:
    for path in REACTIONS[event]:
        task = import_string(path)
        task.delay(**data)
        logger.debug("event %s -> %s (%d leads)", event, path, len(data["lead_ids"]))

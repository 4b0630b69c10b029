"""Domain events and who reacts to them: the one table a reader follows from capture to
scoring, routing and nurturing.

Services call `emit()` inside their transaction: it writes one outbox row per reaction
(a Celery task, named by dotted path so apps never import each other in a circle, and its
keyword arguments) in that same transaction, so a rolled-back write triggers nothing and a
committed one never loses its reactions. After commit `leadcrm.outbox` relays the rows to
the broker (at once when it answers, else later by the relay loop, until it takes them).
Every payload carries `lead_ids`, so a batch of 10,000 leads is one message, not 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEAD_CREATED = "lead.created"
LEAD_UPDATED = "lead.updated"
LEAD_ACTIVITY_RECORDED = "lead.activity_recorded"
LEAD_STAGE_CHANGED = "lead.stage_changed"
LEAD_ASSIGNED = "lead.assigned"
LEAD_SCORE_CHANGED = "lead.score_changed"
# After a rescore of given leads (changed or not); `cause` says why they were rescored.
LEAD_SCORED = "lead.scored"
# A lead entered or left a segment (`segment_id` in the payload): workflows trigger on these.
SEGMENT_ENTERED = "segment.entered"
SEGMENT_LEFT = "segment.left"
# E-mail (payload `message_ids`): sent, and what the person did; sequences exit on some.
EMAIL_SENT = "email.sent"
EMAIL_BOUNCED = "email.bounced"
EMAIL_COMPLAINED = "email.complained"
EMAIL_OPENED = "email.opened"
EMAIL_CLICKED = "email.clicked"
EMAIL_REPLIED = "email.replied"
LEAD_UNSUBSCRIBED = "lead.unsubscribed"
# A capture asked for a double opt-in (payload `source`): the confirmation e-mail goes at once.
LEAD_CONSENT_REQUESTED = "lead.consent_requested"
# Work kicked off by a service (not about given leads): one task, its own arguments.
JOB_REQUESTED = "job.requested"


@dataclass(frozen=True, eq=False)
class Reaction:
    """A task reacting to an event: `kwargs` are added to the event's payload, and `when`
    (payload values that must match) keeps the row from being written otherwise. Equal to
    its task's dotted path, as the plain entries of the table are."""

    task: str
    kwargs: dict = field(default_factory=dict)
    when: dict = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.task
        if isinstance(other, Reaction):
            return (self.task, self.kwargs, self.when) == (other.task, other.kwargs, other.when)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.task)


def _workflows(event: str, **when: object) -> Reaction:
    """Workflows listening to the event (nurturing.workflow_rules): one task finds the active
    workflows whose trigger matches, so an event no workflow listens to costs one read."""
    return Reaction("nurturing.tasks.workflows_trigger", {"event": event}, when=when)


def _webhooks(event: str) -> Reaction:
    """Webhook subscriptions to the event (integrations): one task writes a delivery per
    active subscription and lead (keyed by the outbox row: a re-delivered reaction writes
    none), sent in order per lead. `email.sent` is not one of them: one outbox row per
    message sent would halve the dispatch's speed (bench/dispatch.py)."""
    return Reaction("integrations.tasks.deliveries_create", {"event": event})


def _exit(reason: str) -> Reaction:
    """Sequences whose `exit_on` lists the reason end the lead's enrollments."""
    return Reaction("nurturing.tasks.enrollments_exit", {"reason": reason})


# event -> reactions (a task's dotted path, or a Reaction). Order between them is not a
# rule (they run side by side); where order matters, the later reaction listens to an event
# the earlier one emits: routing at capture follows the first scoring (`lead.scored` with
# cause `lead.created`), so a grade or score rule judges the lead's real score; so do the
# "lead.created" workflows.
REACTIONS: dict[str, tuple[str | Reaction, ...]] = {
    # Enrichment fills blank fields after capture (its change is a `lead.updated`, rescored).
    LEAD_CREATED: (
        Reaction("scoring.tasks.leads_rescore", {"cause": LEAD_CREATED}),
        "enrichment.tasks.leads_enrich",
        _webhooks(LEAD_CREATED),
    ),
    LEAD_UPDATED: ("scoring.tasks.leads_rescore",),
    LEAD_ACTIVITY_RECORDED: (
        "leads.tasks.lead_activity_refresh",
        "scoring.tasks.leads_rescore",
        "routing.tasks.sla_first_touch",
        _workflows(LEAD_ACTIVITY_RECORDED),
    ),
    LEAD_STAGE_CHANGED: (
        "routing.tasks.leads_route_on_stage",
        "routing.tasks.sla_first_touch",
        Reaction("nurturing.tasks.segments_refresh", {"trigger": LEAD_STAGE_CHANGED}),
        _exit("stage_change"),  # also "converted" (payload: to_stage)
        _workflows(LEAD_STAGE_CHANGED),
        _webhooks(LEAD_STAGE_CHANGED),
    ),
    LEAD_ASSIGNED: (
        "routing.tasks.sla_clocks_sync",
        Reaction("nurturing.tasks.segments_refresh", {"trigger": LEAD_ASSIGNED}),
        _webhooks(LEAD_ASSIGNED),
    ),
    LEAD_SCORE_CHANGED: (_workflows(LEAD_SCORE_CHANGED), _webhooks(LEAD_SCORE_CHANGED)),
    # Every write that changes what a segment reads (fields, consent, activity) is rescored,
    # so segments re-check their leads after the score they may filter on.
    LEAD_SCORED: (
        Reaction("routing.tasks.leads_route_on_capture", when={"cause": LEAD_CREATED}),
        Reaction("nurturing.tasks.segments_refresh", {"trigger": LEAD_SCORED}),
        _workflows(LEAD_CREATED, cause=LEAD_CREATED),
    ),
    SEGMENT_ENTERED: (_workflows(SEGMENT_ENTERED),),
    SEGMENT_LEFT: (_workflows(SEGMENT_LEFT),),
    EMAIL_SENT: (),
    EMAIL_BOUNCED: (_exit("bounce"), _webhooks(EMAIL_BOUNCED)),
    EMAIL_COMPLAINED: (_exit("bounce"), _webhooks(EMAIL_COMPLAINED)),
    EMAIL_OPENED: (_workflows(EMAIL_OPENED), _webhooks(EMAIL_OPENED)),
    EMAIL_CLICKED: (_workflows(EMAIL_CLICKED), _webhooks(EMAIL_CLICKED)),
    EMAIL_REPLIED: (_exit("reply"), _workflows(EMAIL_REPLIED), _webhooks(EMAIL_REPLIED)),
    LEAD_UNSUBSCRIBED: (_exit("opt_out"), _webhooks(LEAD_UNSUBSCRIBED)),
    LEAD_CONSENT_REQUESTED: ("nurturing.tasks.consent_confirmation_request",),
}
# The events a webhook subscription may listen to: those with a webhooks reaction.
WEBHOOK_EVENTS = tuple(
    event
    for event, reactions in REACTIONS.items()
    if any(isinstance(r, Reaction) and r.task == "integrations.tasks.deliveries_create" for r in reactions)
)


def emit(event: str, *, lead_ids: list[int], **payload: object) -> None:
    """Owe the event's reactions: outbox rows written in the caller's transaction."""
    if event not in REACTIONS:
        raise ValueError(f"Unknown domain event {event!r}")
    if not lead_ids or not REACTIONS[event]:
        return
    from leadcrm import outbox

    data = {"lead_ids": list(lead_ids), **payload}
    reactions = (r if isinstance(r, Reaction) else Reaction(r) for r in REACTIONS[event])
    owed = [(r.task, {**data, **r.kwargs}) for r in reactions if all(data.get(k) == v for k, v in r.when.items())]
    if owed:
        outbox.write(event, owed)


def has_reactions(event: str) -> bool:
    """Whether emitting the event owes anything (a writer may then skip the transaction
    it would need for the outbox rows)."""
    return bool(REACTIONS[event])


def enqueue(task: str, **kwargs: object) -> None:
    """Owe one task that is not a reaction to leads (an import run, a full rescore): the
    same outbox, so it is sent once committed and kept until the broker takes it."""
    from leadcrm import outbox

    outbox.write(JOB_REQUESTED, [(task, kwargs)])

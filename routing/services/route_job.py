"""Routing every unassigned lead (or one team's pool) as the resumable job `routing.route`:
chunks by lead id, each routed set-based (`assignment.leads_route_batch`) in one
transaction with the job's cursor and counts."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Team, User
from leadcrm import audit, jobs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import Job
from leads.models import CLOSED_STAGES, Lead
from routing.services.assignment import leads_route_batch

ROUTE_KIND = "routing.route"
ROUTE_LANE = "routing.route"
ROUTE_CHUNK = 500  # leads per chunk (one transaction with its cursor): well under a second


def _unassigned(team_id: int | None):
    """Open leads nobody owns (or only those waiting in that team's pool), by id."""
    qs = Lead.objects.filter(owner__isnull=True).exclude(stage__in=CLOSED_STAGES).order_by("pk")
    return qs.filter(team_id=team_id) if team_id is not None else qs


def _merge_route(old: dict, new: dict) -> dict:
    """Two requests for one run: one team's pool only when both ask for that team."""
    return {
        "team": old.get("team") if old.get("team") == new.get("team") else None,
        "actor_kind": new.get("actor_kind") or old.get("actor_kind"),
        **({"chunk": new["chunk"]} if new.get("chunk") else {}),
    }


def route_unassigned_start(*, actor: Actor, team: Team | None = None, chunk_size: int | None = None):
    """Route every open lead without an owner (or one team's pool) as the resumable job
    `routing.route`: chunked by lead id, each chunk routed set-based (`leads_route_batch`)
    in one transaction with the job's cursor and counts. One at a time: a second request
    joins the queued job, or is run once after the running one. Audited. Returns the
    `leadcrm.jobs.JobRequest`."""
    if chunk_size is not None and not (isinstance(chunk_size, int) and 1 <= chunk_size <= 10_000):
        raise ServiceError({"chunk_size": ["A whole number from 1 to 10,000."]})
    params = {
        "team": team.pk if team is not None else None,
        "actor_kind": str(actor.kind),
        **({"chunk": chunk_size} if chunk_size else {}),
    }
    with transaction.atomic():
        request = jobs.job_request(
            kind=ROUTE_KIND, lane=ROUTE_LANE, params=params, merge=_merge_route, created_by=actor.user
        )
        audit.record(
            actor=actor,
            action="routing.route_unassigned.start",
            target=request.job,
            details={
                "team": {"id": team.pk, "name": team.name} if team is not None else None,
                "job": request.job.pk,
                "joined": not request.created,
                "after_current_run": request.follow_up,
            },
        )
    return request


def route_job_chunks(ctx) -> None:
    """The job's chunk loop: the next unowned open leads after the cursor (by id), routed in
    one transaction with the cursor's advance and the counts. A lead owned meanwhile (or by
    an earlier run) is skipped under its row lock, one still in the pool it was put in gets
    no second write: each lead is routed once, and a chunk rolled back by a crash is redone
    whole by the next run."""
    params = ctx.params
    size = int(params.get("chunk") or ROUTE_CHUNK)
    created_by = Job.objects.filter(pk=ctx.job_id).values_list("created_by", flat=True).first()
    user = User.objects.filter(pk=created_by).first() if created_by else None
    actor = Actor(user, params.get("actor_kind") or "user") if user is not None else Actor.automation()
    leads = _unassigned(params.get("team"))
    after = int(ctx.cursor.get("after", 0))
    while True:
        with transaction.atomic():
            ids = list(leads.filter(pk__gt=after).values_list("pk", flat=True)[:size])
            if not ids:
                return
            counts = leads_route_batch(lead_ids=ids, actor=actor)
            routed = {k: v for k, v in counts.items() if k != "skipped"}
            ctx.commit_chunk(
                cursor={"after": ids[-1]},
                counts={"leads": len(ids), **routed, "skipped": len(ids) - sum(routed.values())},
            )
        after = ids[-1]

"""The full rescore as the resumable job `scoring.rescore` (`leadcrm.jobs`): asked for by
an activation or a change of the active set, the nightly decay and `manage.py rescore`;
run a chunk of leads per transaction, each chunk counted and written once."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from leadcrm import audit, jobs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.models import Job
from leads.models import Lead
from scoring import selectors
from scoring.services.rescore import gc_paused, rescore_active
from scoring.services.validation import int_in

RESCORE_KIND = "scoring.rescore"
RESCORE_LANE = "scoring.rescore"
JOB_CHUNK = 1000  # leads per chunk (one transaction): well under a second, far under the stale threshold


def _merge_rescore(old: dict, new: dict) -> dict:
    """Two requests for one run: the wider scope (every group unless both name the same one;
    every lead unless both ask only the engaged ones), the later instant."""
    return {
        "group": old.get("group") if old.get("group") == new.get("group") else None,
        "engaged_only": bool(old.get("engaged_only")) and bool(new.get("engaged_only")),
        "now": max(old.get("now") or "", new.get("now") or "") or None,
        **({"chunk": new["chunk"]} if new.get("chunk") else {}),
        **({"night": old["night"]} if old.get("night") else {}),
    }


def rescore_start(
    *,
    actor: Actor,
    group: str | None = None,
    engaged_only: bool = False,
    reason: str = "",
    now: dt.datetime | None = None,
    chunk_size: int | None = None,
    night: str = "",
    enqueue: bool = True,
):
    """Ask for a full rescore (every lead, or only `group`'s scores, or only the engaged
    leads for the nightly decay) as the resumable job `scoring.rescore`. One at a time: a
    request while one is queued joins it, while one runs is run once after it (the job's
    lane, `leadcrm.jobs.job_request`). Audited: who asked for what, and which job took it.
    Returns the `JobRequest`."""
    if chunk_size is not None and not int_in(chunk_size, 1, 100_000):
        raise ServiceError({"chunk_size": ["A whole number from 1 to 100,000."]})
    if group is not None and not selectors.active_ruleset(group=group):
        raise ServiceError({"group": [f"No active rule set in the group {group!r}."]})
    params = {
        "group": group,
        "engaged_only": engaged_only,
        # An explicit instant (tests, a replay); else each chunk scores as of its own run, as
        # the per-lead rescores running beside it do.
        "now": now.astimezone(dt.UTC).isoformat() if now else None,
        **({"chunk": chunk_size} if chunk_size else {}),
        **({"night": night} if night else {}),
    }
    with transaction.atomic():
        request = jobs.job_request(
            kind=RESCORE_KIND,
            lane=RESCORE_LANE,
            params=params,
            merge=_merge_rescore,
            created_by=actor.user,
            enqueue=enqueue,
        )
        audit.record(
            actor=actor,
            action="scoring.rescore.start",
            target=request.job,
            details={
                "reason": reason,
                "group": group,
                "engaged_only": engaged_only,
                "job": request.job.pk,
                "joined": not request.created,
                "after_current_run": request.follow_up,
            },
        )
    return request


def rescore_nightly(*, now: dt.datetime | None = None):
    """The nightly decay: the engaged leads' scores, once per night (a second delivery of the
    beat finds that night's job and asks nothing)."""
    night = timezone.localdate(now or timezone.now()).isoformat()
    if Job.objects.filter(kind=RESCORE_KIND, params__night=night).exists():
        return None
    return rescore_start(actor=Actor.automation(), engaged_only=True, reason="nightly decay", night=night)


def rescore_job_chunks(ctx) -> None:
    """The job's chunk loop: the next JOB_CHUNK leads by id after the cursor, scored with the
    active rule sets (`rescore_active`, as for a few leads) and written in one transaction
    with the cursor's advance and the counts: a chunk counts and writes once, a resumed run
    starts after the last committed one. Rescoring is idempotent anyway (an unchanged lead
    gets no write and no ScoreChange)."""
    params = ctx.params
    now = dt.datetime.fromisoformat(params["now"]) if params.get("now") else None
    size = int(params.get("chunk") or JOB_CHUNK)
    after = int(ctx.cursor.get("after", 0))
    leads = Lead.objects.order_by("pk")
    if params.get("engaged_only"):
        leads = leads.filter(engagement_score__gt=0)
    plan: dict = {}  # the active sets compiled once for this run (a change meanwhile asks for one more run)
    with gc_paused():
        while True:
            with transaction.atomic():
                ids = list(leads.filter(pk__gt=after).values_list("pk", flat=True)[:size])
                if not ids:
                    return
                stats = rescore_active(lead_ids=ids, now=now, chunk_size=size, group=params.get("group"), plan=plan)
                ctx.commit_chunk(
                    cursor={"after": ids[-1]},
                    counts={"leads": len(ids), "changed": stats.changed, "promoted": stats.promoted},
                )
            after = ids[-1]

"""Sequences: their versions, enrollments, exits, and the engine that walks them.

The database says what is due: each active enrollment has `next_run_at` (indexed where
active). `sequences_tick` (beat) claims due rows in batches with `FOR UPDATE SKIP LOCKED`,
one transaction per batch, so two ticks or workers never take the same enrollment and the
cost follows the work due, not the audience. Each claimed enrollment walks its version's
steps from its cursor until a wait or the end: every step is a StepRun row (what ran, its
outcome, why it branched). E-mail steps queue messages (`messages_queue`, consent and the
frequency cap checked there and again at send time) with the key
`enr:{enrollment}:{steps_run}`: a batch rolled back and run again, or a task delivered
twice, queues the same rows, so nothing is sent twice. An error in one enrollment marks it
failed (its savepoint rolled back) and the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from leadcrm import audit, events
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import selectors as lead_selectors
from leads.models import ConsentStatus, Lead, Stage, StageChange
from nurturing import conditions
from nurturing import sequence_rules as rules
from nurturing.models import (
    EmailTemplate,
    Enrollment,
    EnrollmentState,
    Message,
    Reentry,
    Segment,
    SegmentMembership,
    Sequence,
    SequenceVersion,
    StepRun,
)
from nurturing.services.mail import MessageRequest, messages_queue

logger = logging.getLogger(__name__)

SEQUENCE_FIELDS = ("name", "active", "exit_on", "reentry", "reentry_days")
BATCH = 500
MAX_WALK = 100  # steps one run may take before it yields (the next tick goes on)
RUN_TASK_CHUNK = 1_000  # enrollments per enrollments_run task after an enrollment
# "converted": the lead reached SQL or beyond.
CONVERTED_STAGES = frozenset({Stage.SQL, Stage.SAL, Stage.CO, Stage.WO})
EXIT_REASONS = rules.EXIT_REASONS


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


# --- configuration -----------------------------------------------------------------------


def _clean(*, name: object = None, steps: object = None, exit_on: object = None, reentry: object = None,
           active: object = None, sequence_id: int | None = None, fields: Iterable[str]) -> dict:  # fmt: skip
    """The given fields checked and normalised, or ServiceError with every field error."""
    fields = set(fields)
    errors: dict[str, list[str]] = {}
    out: dict = {}
    if "name" in fields:
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
            errors["name"] = ["A name of at most 200 characters."]
        elif Sequence.objects.filter(name=name.strip()).exclude(pk=sequence_id).exists():
            errors["name"] = ["A sequence with this name exists."]
        else:
            out["name"] = name.strip()
    if "active" in fields:
        if not isinstance(active, bool):
            errors["active"] = ["true or false."]
        else:
            out["active"] = active
    if "exit_on" in fields:
        reasons, problems = rules.exit_on_errors(list(exit_on) if isinstance(exit_on, tuple) else exit_on)
        if problems:
            errors["exit_on"] = problems
        else:
            out["exit_on"] = reasons
    if "reentry" in fields:
        kind, days, problems = rules.parse_reentry(reentry)
        if problems:
            errors["reentry"] = problems
        else:
            out["reentry"], out["reentry_days"] = kind, days
    if "steps" in fields:
        try:
            cleaned = rules.clean_steps(
                steps,
                template_ids=set(EmailTemplate.objects.values_list("pk", flat=True)),
                sequence_ids=set(Sequence.objects.values_list("pk", flat=True)),
                segment_ids=set(Segment.objects.values_list("pk", flat=True)),
            )
        except rules.StepsInvalid as exc:
            errors.update(exc.errors)
        else:
            if sequence_id is not None and sequence_id in _enrolls_into(cleaned):
                errors["steps"] = ["A sequence cannot enroll its leads into itself."]
            out["steps"] = cleaned
    if errors:
        raise ServiceError(errors)
    return out


def _has_actions(steps: list) -> bool:
    for step in steps:
        if step.get("type") in rules.ACTION_TYPES:
            return True
        nested = [step.get("then") or [], step.get("else") or []]
        nested += [variant.get("steps") or [] for variant in step.get("variants") or []]
        if any(_has_actions(sub) for sub in nested):
            return True
    return False


def _enrolls_into(steps: list) -> set[int]:
    found: set[int] = set()
    for step in steps:
        if step.get("type") == "enroll":
            found.add(step.get("sequence"))
        for key in ("then", "else"):
            found |= _enrolls_into(step.get(key) or [])
        for variant in step.get("variants") or []:
            found |= _enrolls_into(variant.get("steps") or [])
    return found


def sequence_create(
    *,
    actor: Actor,
    name: str,
    steps: list,
    active: bool = True,
    exit_on: Iterable[str] = (),
    reentry: str = "never",
) -> Sequence:
    """A sequence and its first version."""
    clean = _clean(
        name=name, steps=steps, exit_on=list(exit_on), reentry=reentry, active=active,
        fields=("name", "steps", "exit_on", "reentry", "active"),
    )  # fmt: skip
    with transaction.atomic():
        sequence = Sequence.objects.create(
            name=clean["name"],
            active=clean["active"],
            exit_on=clean["exit_on"],
            reentry=clean["reentry"],
            reentry_days=clean["reentry_days"],
            created_by=actor.user,
        )
        version = SequenceVersion.objects.create(
            sequence=sequence, number=1, steps=clean["steps"], created_by=actor.user
        )
        sequence.current_version = version
        sequence.save(update_fields=["current_version"])
        audit.record(
            actor=actor,
            action="nurturing.sequence.create",
            target=sequence,
            changes={**audit.created(sequence, SEQUENCE_FIELDS), "version": [None, 1]},
            details={"steps": clean["steps"]},
        )
    return sequence


def sequence_update(*, actor: Actor, sequence_id: int, move_running: bool = False, **fields: object) -> Sequence:
    """Change a sequence. New steps make a new version; running enrollments stay on theirs
    unless `move_running` (then they go on in the new version at the same place when that
    place still exists, else at the same top-level step)."""
    unknown = set(fields) - {"name", "active", "exit_on", "reentry", "steps"}
    if unknown:
        raise ServiceError({k: ["Unknown field."] for k in sorted(unknown)})
    clean = _clean(**fields, sequence_id=sequence_id, fields=fields)
    with transaction.atomic():
        sequence = (
            Sequence.objects.select_for_update(of=("self",)).select_related("current_version").get(pk=sequence_id)
        )
        before = audit.snapshot(sequence, SEQUENCE_FIELDS)
        for key in SEQUENCE_FIELDS:
            if key in clean:
                setattr(sequence, key, clean[key])
        changes = audit.diff(before, sequence)
        details: dict = {}
        old = sequence.current_version
        if "steps" in clean and (old is None or old.steps != clean["steps"]):
            number = (SequenceVersion.objects.filter(sequence=sequence).aggregate(n=Max("number"))["n"] or 0) + 1
            version = SequenceVersion.objects.create(
                sequence=sequence, number=number, steps=clean["steps"], created_by=actor.user
            )
            sequence.current_version = version
            changes["version"] = [old.number if old else None, number]
            details["steps"] = clean["steps"]
            if move_running:
                details["moved"] = _move_running(sequence, version, now=timezone.now())
        if changes:
            sequence.save(update_fields=[*SEQUENCE_FIELDS, "current_version", "updated_at"])
            audit.record(
                actor=actor, action="nurturing.sequence.update", target=sequence, changes=changes, details=details
            )
    return sequence


def _move_running(sequence: Sequence, version: SequenceVersion, *, now: dt.datetime) -> int:
    """Active enrollments onto the new version (an explicit choice of the editor)."""
    moved = list(
        Enrollment.objects.select_for_update()
        .filter(sequence=sequence, state=EnrollmentState.ACTIVE)
        .exclude(version=version)
    )
    runs = []
    for enrollment in moved:
        cursor = list(enrollment.cursor or [])
        if cursor and rules.step_at(version.steps, cursor) is None:
            top = cursor[0] if isinstance(cursor[0], int) else len(version.steps)
            cursor = [top] if top < len(version.steps) else []
        runs.append(
            StepRun(
                enrollment=enrollment,
                path=rules.path_of(cursor)[:40],
                type="version",
                at=now,
                outcome="moved",
                detail={"from_version": enrollment.version_id, "to_version": version.pk, "cursor": cursor},
            )
        )
        enrollment.version, enrollment.cursor = version, cursor
    Enrollment.objects.bulk_update(moved, ["version", "cursor"], batch_size=1000)
    StepRun.objects.bulk_create(runs, batch_size=1000)
    return len(moved)


# --- enrolling ---------------------------------------------------------------------------


def sequence_enroll(
    *,
    actor: Actor,
    sequence_id: int,
    lead_ids: Iterable[int] | None = None,
    segment_id: int | None = None,
    now: dt.datetime | None = None,
    source: str = "",
) -> dict[int, str]:
    """Enroll leads (or a segment's members) and start them at once (a task after commit).
    Per lead: "enrolled", "no_consent" (no opt-in), "already_enrolled" (active in it),
    "reentry" (the re-entry rule refuses), "not_found" (absent, or not visible to the
    actor's user), "inactive" (the sequence is off)."""
    now = _now(now)
    sequence = Sequence.objects.select_related("current_version").filter(pk=sequence_id).first()
    if sequence is None:
        raise ServiceError({"sequence": ["Unknown sequence."]})
    wanted: set[int] = set()
    if lead_ids is not None:
        wanted |= {int(pk) for pk in lead_ids}
    if segment_id is not None:
        if not Segment.objects.filter(pk=segment_id).exists():
            raise ServiceError({"segment": ["Unknown segment."]})
        wanted |= set(SegmentMembership.objects.filter(segment_id=segment_id).values_list("lead_id", flat=True))
    if not wanted:
        return {}
    visible = lead_selectors.lead_ids_visible_to(actor.user, wanted)
    consent = dict(Lead.objects.filter(pk__in=visible).values_list("pk", "consent_status"))
    out = {pk: "not_found" for pk in wanted if pk not in consent}
    if not sequence.active or sequence.current_version is None:
        out.update(dict.fromkeys(consent, "inactive"))
        return out
    candidates = []
    for pk, status in consent.items():
        if status != ConsentStatus.OPT_IN:
            out[pk] = "no_consent"
        else:
            candidates.append(pk)
    history = (
        Enrollment.objects.filter(sequence=sequence, lead_id__in=candidates)
        .values("lead_id")
        .annotate(
            active=Max("id", filter=Q(state=EnrollmentState.ACTIVE)),
            last=Max(Coalesce("ended_at", "enrolled_at")),
        )
    )
    for row in history:
        pk = row["lead_id"]
        if row["active"] is not None:
            out[pk] = "already_enrolled"
        elif sequence.reentry == Reentry.NEVER:
            out[pk] = "reentry"
        elif sequence.reentry == Reentry.AFTER_DAYS and row["last"] > now - dt.timedelta(
            days=sequence.reentry_days or 0
        ):
            out[pk] = "reentry"
    todo = sorted(pk for pk in candidates if pk not in out)
    by = source or (f"segment:{segment_id}" if segment_id else "")
    by = by or (f"user:{actor.user.pk}" if actor.user else "automation")
    with transaction.atomic():
        created = _insert_enrollments(sequence, todo, now=now, enrolled_by=by[:80])
        for pk in todo:
            out[pk] = "enrolled" if pk in created else "already_enrolled"  # a concurrent enrollment won
        if created:
            ids = sorted(created.values())
            for i in range(0, len(ids), RUN_TASK_CHUNK):
                events.enqueue("nurturing.tasks.enrollments_run", enrollment_ids=ids[i : i + RUN_TASK_CHUNK])
            audit.record(
                actor=actor,
                action="nurturing.sequence.enroll",
                target=sequence,
                details={"enrolled": len(created), "leads": sorted(created)[:200], "by": by},
            )
    return out


def _insert_enrollments(sequence: Sequence, lead_ids: list[int], *, now: dt.datetime, enrolled_by: str) -> dict:
    """lead id -> enrollment id of the rows inserted (ON CONFLICT DO NOTHING: the partial
    unique index keeps one active enrollment per lead and sequence, whoever races)."""
    if not lead_ids:
        return {}
    version = sequence.current_version
    cursor = json.dumps(rules.first_cursor(version.steps))
    table = Enrollment._meta.db_table
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    created: dict[int, int] = {}
    with connection.cursor() as cur:
        for i in range(0, len(lead_ids), 1000):
            chunk = lead_ids[i : i + 1000]
            row = f"(%s, %s, %s, 'active', %s{cast}, %s, 0, %s, '', %s, '')"
            params: list = []
            for pk in chunk:
                params += [sequence.pk, version.pk, pk, cursor, now, now, enrolled_by]
            cur.execute(
                f"INSERT INTO {table} (sequence_id, version_id, lead_id, state, cursor, next_run_at, steps_run,"  # noqa: S608
                f" enrolled_at, exit_reason, enrolled_by, last_error) VALUES {', '.join([row] * len(chunk))}"
                " ON CONFLICT DO NOTHING RETURNING id, lead_id",
                params,
            )
            created.update({lead: pk for pk, lead in cur.fetchall()})
    return created


def enrollments_stop(*, actor: Actor, enrollment_ids: Iterable[int]) -> int:
    """Stop active enrollments by hand (those of leads the actor's user may see)."""
    ids = {int(pk) for pk in enrollment_ids}
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Enrollment.objects.select_for_update()
            .filter(pk__in=ids, state=EnrollmentState.ACTIVE)
            .select_related("lead")
            .order_by("pk")
        )
        visible = lead_selectors.lead_ids_visible_to(actor.user, {e.lead_id for e in rows})
        rows = [e for e in rows if e.lead_id in visible]
        if not rows:
            return 0
        Enrollment.objects.filter(pk__in=[e.pk for e in rows]).update(
            state=EnrollmentState.STOPPED, ended_at=now, next_run_at=None, exit_reason="stopped"
        )
        StepRun.objects.bulk_create(
            [StepRun(enrollment=e, path="", type="exit", at=now, outcome="stopped") for e in rows]
        )
        audit.record_many(
            audit.entry(
                actor=actor,
                action="nurturing.enrollment.stop",
                target=e,
                changes={"state": [EnrollmentState.ACTIVE, EnrollmentState.STOPPED]},
                details={"sequence": e.sequence_id, "lead": e.lead_id},
            )
            for e in rows
        )
    return len(rows)


def enrollments_retry(*, actor: Actor, enrollment_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Put failed enrollments back on their way (from the step that failed, at once), for
    those of leads the actor's user may see; audited."""
    ids = {int(pk) for pk in enrollment_ids}
    now = _now(now)
    with transaction.atomic():
        rows = list(
            Enrollment.objects.select_for_update().filter(pk__in=ids, state=EnrollmentState.FAILED).order_by("pk")
        )
        visible = lead_selectors.lead_ids_visible_to(actor.user, {e.lead_id for e in rows})
        rows = [e for e in rows if e.lead_id in visible]
        if not rows:
            return 0
        # A lead enrolled again meanwhile keeps that enrollment (one active per sequence).
        busy = set(
            Enrollment.objects.filter(
                state=EnrollmentState.ACTIVE,
                lead_id__in={e.lead_id for e in rows},
                sequence_id__in={e.sequence_id for e in rows},
            ).values_list("lead_id", "sequence_id")
        )
        rows = [e for e in rows if (e.lead_id, e.sequence_id) not in busy]
        Enrollment.objects.filter(pk__in=[e.pk for e in rows]).update(
            state=EnrollmentState.ACTIVE, ended_at=None, next_run_at=now, last_error=""
        )
        audit.record_many(
            audit.entry(
                actor=actor,
                action="nurturing.enrollment.retry",
                target=e,
                changes={"state": [EnrollmentState.FAILED, EnrollmentState.ACTIVE]},
                details={"last_error": e.last_error},
            )
            for e in rows
        )
        if rows:
            events.enqueue("nurturing.tasks.enrollments_run", enrollment_ids=[e.pk for e in rows])
    return len(rows)


def enrollments_exit(
    *, lead_ids: Iterable[int], reason: str, now: dt.datetime | None = None, to_stage: str = ""
) -> int:
    """End the active enrollments of these leads whose sequence exits on `reason` (the
    reaction to email.replied, lead.unsubscribed, email.bounced/complained and
    lead.stage_changed). A stage change is "converted" where the sequence lists it and the
    lead reached SQL or beyond; else "stage_change", unless this enrollment's own
    move_stage step made the move."""
    if reason not in EXIT_REASONS:
        raise ValueError(f"Unknown exit reason {reason!r}")
    now = _now(now)
    ids = {int(pk) for pk in lead_ids}
    if not ids:
        return 0
    with transaction.atomic():
        rows = list(
            Enrollment.objects.select_for_update(of=("self",))
            .filter(lead_id__in=ids, state=EnrollmentState.ACTIVE)
            .select_related("sequence")
            .order_by("pk")
        )
        if not rows:
            return 0
        ending: dict[int, str] = {}
        own = _own_moves(rows, to_stage) if reason == "stage_change" else set()
        for enrollment in rows:
            exit_on = set(enrollment.sequence.exit_on or ())
            if reason == "stage_change":
                if "converted" in exit_on and to_stage in CONVERTED_STAGES:
                    ending[enrollment.pk] = "converted"
                elif "stage_change" in exit_on and enrollment.pk not in own:
                    ending[enrollment.pk] = "stage_change"
            elif reason in exit_on:
                ending[enrollment.pk] = reason
        for why in set(ending.values()):
            Enrollment.objects.filter(pk__in=[pk for pk, r in ending.items() if r == why]).update(
                state=EnrollmentState.EXITED, ended_at=now, next_run_at=None, exit_reason=why
            )
        StepRun.objects.bulk_create(
            [
                StepRun(enrollment_id=pk, path="", type="exit", at=now, outcome=f"exit:{why}", detail={"to": to_stage})
                for pk, why in ending.items()
            ]
        )
    return len(ending)


def _own_moves(rows: list[Enrollment], to_stage: str) -> set[int]:
    """Enrollments whose own move_stage step made the lead's latest move to `to_stage`."""
    latest = dict(
        StageChange.objects.filter(lead_id__in={e.lead_id for e in rows}, to_stage=to_stage)
        .values("lead_id")
        .annotate(last=Max("id"))
        .values_list("lead_id", "last")
    )
    runs = StepRun.objects.filter(enrollment__in=rows, type="move_stage", outcome="done").values_list(
        "enrollment_id", "enrollment__lead_id", "detail"
    )
    return {pk for pk, lead_id, detail in runs if (detail or {}).get("stage_change") == latest.get(lead_id)}


# --- the engine ----------------------------------------------------------------------------


def sequences_tick(
    *, now: dt.datetime | None = None, batch: int = BATCH, max_batches: int = 200, fanout: int = 0
) -> int:
    """Beat: run every due enrollment, batch after batch (each its own transaction, its
    rows claimed with SKIP LOCKED, the earliest due first), until none is due. When the
    first batch is full and `fanout` > 1, `fanout - 1` more ticks are sent to the other
    workers: they drain the same rows side by side (SKIP LOCKED keeps them apart)."""
    done = 0
    for n in range(max_batches):
        if n == 1 and fanout > 1:
            with transaction.atomic():
                for part in range(1, fanout):  # `part`: the outbox coalesces identical calls
                    events.enqueue("nurturing.tasks.sequences_tick", fanout=0, part=part)
        with transaction.atomic():
            claimed = list(
                Enrollment.objects.select_for_update(skip_locked=True)
                .filter(state=EnrollmentState.ACTIVE, next_run_at__lte=_now(now))
                .order_by("next_run_at")[:batch]
            )
            if claimed:
                _run_batch(claimed, now=_now(now))
        done += len(claimed)
        if len(claimed) < batch:
            break
    return done


def enrollments_run(*, enrollment_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Run these enrollments now if they are due (a new enrollment starts at once, not at
    the next beat); rows another worker holds are left to it."""
    ids = sorted({int(pk) for pk in enrollment_ids})
    done = 0
    for i in range(0, len(ids), BATCH):
        with transaction.atomic():
            claimed = list(
                Enrollment.objects.select_for_update(skip_locked=True)
                .filter(pk__in=ids[i : i + BATCH], state=EnrollmentState.ACTIVE, next_run_at__lte=_now(now))
                .order_by("next_run_at")
            )
            if claimed:
                _run_batch(claimed, now=_now(now))
        done += len(claimed)
    return done


@dataclass(slots=True)
class _Step:
    """A StepRun row before it is written (a plain object: a model instance per step costs
    more than the rest of the walk)."""

    enrollment_id: int
    path: str
    type: str
    at: dt.datetime
    outcome: str
    detail: dict = field(default_factory=dict)
    message_id: int | None = None


@dataclass
class _Run:
    """One walk's results before they are written."""

    runs: list[_Step] = field(default_factory=list)
    emails: list[tuple[_Step, MessageRequest]] = field(default_factory=list)


class _Batch:
    """What the walks of a batch read, loaded once for the batch (a few queries)."""

    def __init__(self, enrollments: list[Enrollment], now: dt.datetime):
        self.now = now
        versions = SequenceVersion.objects.filter(pk__in={e.version_id for e in enrollments})
        self.versions = {v.pk: v.steps for v in versions}
        lead_ids = {e.lead_id for e in enrollments}
        self._zones: dict | None = None
        self._facts: dict | None = None
        self._lead_ids = lead_ids
        self._last_messages: dict[int, tuple[bool, bool]] | None = None
        self._enrollment_ids = [e.pk for e in enrollments]
        self._writes = {pk: _has_actions(steps) for pk, steps in self.versions.items()}

    def zone(self, lead_id: int) -> ZoneInfo:
        """The lead's time zone (waits, send windows), read for the whole batch on first use
        (a batch of e-mail steps only never reads them)."""
        if self._zones is None:
            self._zones = {}
            fallback = settings.TIME_ZONE
            rows = Lead.objects.filter(pk__in=self._lead_ids).annotate(tz=KT("properties__timezone"))
            for pk, tz, country, team_tz in rows.values_list("pk", "tz", "country", "team__timezone"):
                self._zones[pk] = rules.lead_zone(timezone_name=tz, country=country, fallback=team_tz or fallback)
        return self._zones.get(lead_id) or rules.lead_zone(fallback=settings.TIME_ZONE)

    def writes(self, enrollment: Enrollment) -> bool:
        """Whether its version has action steps (writes made during the walk)."""
        return self._writes.get(enrollment.version_id, True)

    def facts(self, enrollment: Enrollment, emailed_in_walk: bool) -> conditions.LeadFacts:
        from nurturing.selectors import lead_facts

        if self._facts is None:
            self._facts = lead_facts(self._lead_ids)
        if self._last_messages is None:
            self._last_messages = {}
            rows = (
                Message.objects.filter(enrollment_id__in=self._enrollment_ids)
                .order_by("enrollment_id", "-queued_at", "-id")
                .distinct("enrollment_id")
                .values_list("enrollment_id", "opened_at", "clicked_at")
                if connection.vendor == "postgresql"
                else []
            )
            for pk, opened, clicked in rows:
                self._last_messages[pk] = (opened is not None or clicked is not None, clicked is not None)
        base = self._facts.get(enrollment.lead_id) or conditions.LeadFacts(lead={})
        opened, clicked = (False, False) if emailed_in_walk else self._last_messages.get(enrollment.pk, (False, False))
        return replace(base, opened_last=opened, clicked_last=clicked)


def _run_batch(enrollments: list[Enrollment], *, now: dt.datetime) -> None:
    """Walk each claimed enrollment (a savepoint each: a failure marks that one failed),
    then queue the batch's e-mails at once and write the step runs and cursors."""
    batch = _Batch(enrollments, now)
    results: list[_Run] = []
    failed: list[Enrollment] = []
    for enrollment in enrollments:
        snapshot = (list(enrollment.cursor or []), enrollment.next_run_at, enrollment.steps_run)
        try:
            if batch.writes(enrollment):
                with transaction.atomic():  # a savepoint: its action steps' writes go if it fails
                    results.append(_walk(enrollment, batch))
            else:  # e-mails, waits, splits and branches only read: no savepoint to pay
                results.append(_walk(enrollment, batch))
        except Exception as exc:  # one enrollment's failure is its own: the batch goes on
            logger.exception("sequence enrollment %s failed", enrollment.pk)
            enrollment.cursor, enrollment.next_run_at, enrollment.steps_run = snapshot
            enrollment.state, enrollment.ended_at = EnrollmentState.FAILED, now
            enrollment.next_run_at = None
            enrollment.last_error = f"{type(exc).__name__}: {exc}"[:500]
            failed.append(enrollment)
            path = rules.path_of(enrollment.cursor or [])[:40]
            error = _Step(
                enrollment_id=enrollment.pk, path=path, type="error", at=now, outcome="failed",
                detail={"error": enrollment.last_error},
            )  # fmt: skip
            results.append(_Run(runs=[error]))
    emails = [pair for result in results for pair in result.emails]
    if emails:
        outcomes = messages_queue(actor=Actor.automation(), requests=[request for _, request in emails])
        for (run, _), outcome in zip(emails, outcomes, strict=True):
            if outcome.message_id:
                run.outcome, run.message_id = "queued", outcome.message_id
            else:
                run.outcome = f"refused:{outcome.refused}"[:40]
    _insert_step_runs([run for result in results for run in result.runs])
    _save_walks(enrollments)


def _insert_step_runs(runs: list[_Step]) -> None:
    """The batch's step runs: on PostgreSQL one INSERT ... SELECT FROM unnest(arrays) per
    thousand rows (Django's bulk_create prepares every field of every row in Python: a
    large part of a tick); elsewhere bulk_create."""
    if connection.vendor != "postgresql":
        fields = ("enrollment_id", "path", "type", "at", "outcome", "detail", "message_id")
        StepRun.objects.bulk_create([StepRun(**{f: getattr(r, f) for f in fields}) for r in runs], batch_size=1000)
        return
    table = StepRun._meta.db_table
    for i in range(0, len(runs), 1000):
        chunk = runs[i : i + 1000]
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT INTO {table} (enrollment_id, path, type, at, outcome, detail, message_id)"  # noqa: S608
                " SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], %s::timestamptz[],"
                " %s::varchar[], %s::jsonb[], %s::bigint[])",
                [
                    [r.enrollment_id for r in chunk],
                    [r.path for r in chunk],
                    [r.type for r in chunk],
                    [r.at for r in chunk],
                    [r.outcome for r in chunk],
                    [json.dumps(r.detail or {}) for r in chunk],
                    [r.message_id for r in chunk],
                ],
            )


WALK_FIELDS = ("cursor", "next_run_at", "steps_run", "state", "ended_at", "last_error")


def _save_walks(enrollments: list[Enrollment]) -> None:
    """Where each walk stands, in one UPDATE ... FROM (VALUES ...) per batch (Django's
    bulk_update builds a CASE per field and row: seconds per thousand rows)."""
    if connection.vendor != "postgresql":
        Enrollment.objects.bulk_update(enrollments, list(WALK_FIELDS), batch_size=BATCH)
        return
    table = Enrollment._meta.db_table
    row = "(%s::bigint, %s::jsonb, %s::timestamptz, %s::integer, %s::varchar, %s::timestamptz, %s::varchar)"
    for i in range(0, len(enrollments), BATCH):
        chunk = enrollments[i : i + BATCH]
        params: list = []
        for e in chunk:
            params += [e.pk, json.dumps(e.cursor or []), e.next_run_at, e.steps_run, e.state, e.ended_at, e.last_error]
        with connection.cursor() as cur:
            cur.execute(
                f"UPDATE {table} AS e SET cursor = v.cursor, next_run_at = v.next_run_at, steps_run = v.steps_run,"  # noqa: S608
                " state = v.state, ended_at = v.ended_at, last_error = v.last_error"
                f" FROM (VALUES {', '.join([row] * len(chunk))})"
                " AS v(id, cursor, next_run_at, steps_run, state, ended_at, last_error) WHERE e.id = v.id",
                params,
            )


def _walk(enrollment: Enrollment, batch: _Batch) -> _Run:
    """Run the enrollment's steps from its cursor until a wait, the end, or MAX_WALK steps."""
    now, result = batch.now, _Run()
    steps = batch.versions[enrollment.version_id]
    cursor = list(enrollment.cursor or [])
    emailed = False

    def record(kind: str, outcome: str, detail: dict | None = None) -> _Step:
        run = _Step(
            enrollment_id=enrollment.pk,
            path=rules.path_of(cursor)[:40],
            type=kind,
            at=now,
            outcome=outcome[:40],
            detail=detail or {},
        )
        result.runs.append(run)
        return run

    enrollment.next_run_at = None
    for _ in range(MAX_WALK):
        if not cursor:
            break
        step = rules.step_at(steps, cursor)
        if step is None:
            raise ValueError(f"cursor {cursor} is outside version {enrollment.version_id}")
        kind = step["type"]
        if kind == "wait":
            zone = batch.zone(enrollment.lead_id)
            until = rules.wait_until(step, start=now, zone=zone)
            record("wait", "waiting", {"until": until.isoformat(), "zone": zone.key})
            enrollment.steps_run += 1
            cursor = rules.next_cursor(steps, cursor)
            if until > now:
                enrollment.next_run_at = until
                break
            continue
        if kind == "email":
            window = rules.window_for(steps, cursor)
            zone = batch.zone(enrollment.lead_id) if window else None
            if window and not rules.in_window(now, window, zone):
                until = rules.next_in_window(now, window, zone)
                record("email", "waiting:window", {"until": until.isoformat(), "zone": zone.key})
                enrollment.next_run_at = until
                break
            path = rules.path_of(cursor)
            run = record("email", "queued", {"template": step["template"]})
            request = MessageRequest(
                lead_id=enrollment.lead_id,
                template_id=step["template"],
                idempotency_key=f"enr:{enrollment.pk}:{enrollment.steps_run}",
                enrollment_id=enrollment.pk,
                step=path[:40],
                variant=rules.variant_of(cursor)[:40],
            )
            result.emails.append((run, request))
            emailed = True
            enrollment.steps_run += 1
            cursor = rules.next_cursor(steps, cursor)
            continue
        if kind == "split":
            weights = [v.get("weight", 0) for v in step["variants"]]
            chosen = rules.choose_variant(weights, enrollment_id=enrollment.pk, path=rules.path_of(cursor))
            record("split", f"variant:{chosen}", {"weights": weights})
            enrollment.steps_run += 1
            cursor = rules.enter(steps, cursor, chosen)
            continue
        if kind == "branch":
            facts = batch.facts(enrollment, emailed)
            holds = conditions.condition_holds(step.get("if") or {}, facts)
            record("branch", "then" if holds else "else", {"if": step.get("if") or {}, "facts": _read(step, facts)})
            enrollment.steps_run += 1
            cursor = rules.enter(steps, cursor, "then" if holds else "else")
            continue
        _action(enrollment, step, cursor, now, record)
        enrollment.steps_run += 1
        cursor = rules.next_cursor(steps, cursor)
    else:
        enrollment.next_run_at = now  # a long run of instant steps: the next tick goes on
    enrollment.cursor = cursor
    if not cursor:
        enrollment.state, enrollment.ended_at, enrollment.next_run_at = EnrollmentState.COMPLETED, now, None
        result.runs.append(_Step(enrollment_id=enrollment.pk, path="", type="end", at=now, outcome="completed"))
    return result


def _read(step: dict, facts: conditions.LeadFacts) -> dict:
    """The values a branch's condition read (why it went one way), for the trace."""
    names: set[str] = set()

    def walk(cond: object) -> None:
        if isinstance(cond, dict):
            if "field" in cond:
                names.add(cond["field"])
            for key in ("all", "any"):
                for item in cond.get(key) or []:
                    walk(item)
            if "not" in cond:
                walk(cond["not"])
            if "segment" in cond:
                names.add("segments")
            if "opened_last" in cond or "clicked_last" in cond:
                names.update({"opened_last", "clicked_last"})

    walk(step.get("if"))
    out: dict = {}
    for name in sorted(names):
        if name == "segments":
            out[name] = sorted(facts.segment_ids)
        elif name in ("opened_last", "clicked_last"):
            out[name] = getattr(facts, name)
        else:
            out[name] = audit.jsonable(conditions._value_of(name, facts.lead))
    return out


def _action(enrollment: Enrollment, step: dict, cursor: list, now: dt.datetime, record) -> None:
    """A task, update, notify_owner, move_stage or enroll step, through nurturing.actions."""
    from nurturing.actions import actions_run

    action = dict(step)
    outcomes = actions_run(
        actor=Actor.automation(),
        action=action,
        lead_ids=[enrollment.lead_id],
        key=f"enr:{enrollment.pk}:{enrollment.steps_run}",
        now=now,
        context={"enrollments": {enrollment.lead_id: enrollment.pk}, "step": rules.path_of(cursor)},
    )
    outcome = outcomes.get(enrollment.lead_id, "skipped:not_found")
    detail: dict = {}
    if step["type"] == "move_stage" and outcome == "done":
        last = (
            StageChange.objects.filter(lead_id=enrollment.lead_id, to_stage=step["to"]).order_by("-id").values("pk")[:1]
        )
        detail = {"to": step["to"], "stage_change": next((r["pk"] for r in last), None)}
    record(step["type"], outcome, detail)

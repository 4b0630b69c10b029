"""The rescore pipeline: read leads with their facts (`reader`), score them with the
active rule sets (`scoring.engine`), write what changed. The default group's scores land
on the leads through `leads.services.lead_scores_set` (which owns the lead's ScoreChange
history, the `lead.score_changed` event and the promotion to MQL); another group's as
`LeadScore` rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from leadcrm import events
from leadcrm.actors import Actor
from leads import services as lead_services
from leads.models import CLOSED_STAGES, Lead
from scoring import engine, predictive, selectors
from scoring.models import DEFAULT_GROUP, LeadScore, RuleSet
from scoring.services.reader import CHUNK, Needs, needs_for, read_leads
from scoring.services.training import active_model


@dataclass
class RescoreStats:
    leads: int = 0
    changed: int = 0
    promoted: int = 0
    seconds: float = 0.0


class _Writer:
    """Writes chunks' scores while the next chunks are read and scored. On PostgreSQL and
    outside a transaction (a full rescore from a task or the command), writes run on
    `WRITERS` more connections in threads, so the database's work (index upkeep dominates)
    and Python's overlap on the cores; at most `WRITERS` chunks wait, so memory stays flat.
    Otherwise it writes inline. Chunks are disjoint id ranges: writers never wait on each
    other's row locks."""

    WRITERS = 2

    def __init__(self, stats: RescoreStats, *, background: bool):
        self.stats = stats
        self.pool = None
        if background and not connection.in_atomic_block:  # a second connection would not see this transaction
            self.pool = ThreadPoolExecutor(self.WRITERS, thread_name_prefix="rescore-writer")
        self.pending: list[Future] = []

    def _count(self, result) -> None:
        self.stats.changed += len(result.changed)
        self.stats.promoted += len(result.promoted)

    def submit(self, write: Callable) -> None:
        if self.pool is None:
            self._count(write())
            return
        while len(self.pending) >= self.WRITERS:
            self._count(self.pending.pop(0).result())
        self.pending.append(self.pool.submit(self._run, write))

    @staticmethod
    def _run(write: Callable):
        try:
            return write()
        finally:
            connection.close()  # this thread's own connection; the next chunk opens a fresh one

    def finish(self) -> None:
        if self.pool is None:
            return
        try:
            while self.pending:
                self._count(self.pending.pop(0).result())
        finally:
            self.pool.shutdown()


_DONE = object()


def _prefetched(chunks: Iterator) -> Iterator:
    """The next chunk is read (on its own connection, in a thread) while this one is scored:
    the database's query time overlaps Python's work. One chunk ahead at most."""
    box: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        box.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            box.put(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=read, name="rescore-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class _Prepared:
    """A rule set made ready to score with, once per run."""

    spec: engine.RuleSet
    compiled: engine.CompiledRuleSet
    model: object | None  # the active predictive model (default group only)
    needs: Needs


def rescore_active(
    *,
    lead_ids: list[int] | None,
    where: str = "",
    params: tuple = (),
    now: dt.datetime | None = None,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    group: str | None = None,
    plan: dict | None = None,
) -> RescoreStats:
    """Every active rule set (or only `group`'s): the default group writes the leads'
    scores, the others their `LeadScore` rows. No active rule set: scores stay as they are.
    `plan`: a dict kept across calls (the rescore job's chunks) that holds the active sets
    compiled once, instead of once per call."""
    started = time.perf_counter()
    stats = RescoreStats()
    if plan is None:
        plan = {}
    if "rulesets" not in plan:
        plan["rulesets"] = selectors.active_rulesets()
    for ruleset in plan["rulesets"]:
        if group is not None and ruleset.group != group:
            continue
        kwargs = {"lead_ids": lead_ids, "where": where, "params": params, "now": now, "chunk_size": chunk_size}
        kwargs["plan"] = plan
        if ruleset.group == DEFAULT_GROUP:
            _rescore_default(ruleset, stats, progress=progress, **kwargs)
        else:
            # Alone (its own activation), it reports the leads and the progress.
            _rescore_group(ruleset, stats, progress=progress, primary=group is not None, **kwargs)
    stats.seconds = time.perf_counter() - started
    return stats


def _prepared(ruleset: RuleSet, plan: dict, *, with_model: bool) -> _Prepared:
    """This rule set's spec, compiled rules, predictive model and what to read, computed
    once per `plan`."""
    key = ("ruleset", ruleset.pk)
    if key not in plan:
        spec = selectors.ruleset_spec(ruleset)
        model = active_model() if with_model else None
        plan[key] = _Prepared(spec, engine.compile_ruleset(spec), model, needs_for([spec], model=model is not None))
    return plan[key]


def _rescore_group(
    ruleset: RuleSet,
    stats: RescoreStats,
    *,
    lead_ids: list[int] | None,
    where: str,
    params: tuple,
    now: dt.datetime | None,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    primary: bool,
    plan: dict,
) -> None:
    """Another score group's scores: upserted `LeadScore` rows for the leads whose score in
    that group changed (one read of the current rows and one upsert per chunk)."""
    prepared = _prepared(ruleset, plan, with_model=False)
    now_ts = (now or timezone.now()).timestamp()
    for chunk in read_leads(prepared.needs, where=where, params=params, lead_ids=lead_ids, chunk_size=chunk_size):
        ids = [lead.state.id for lead in chunk]
        current = {
            r[0]: r[1:]
            for r in LeadScore.objects.filter(group=ruleset.group, lead_id__in=ids).values_list(
                "lead_id", "score", "fit_score", "engagement_score", "grade", "ruleset_id"
            )
        }
        changed = []
        for state, facts, evs in chunk:
            s = engine.score_lead(prepared.compiled, facts, evs, now_ts)
            if current.get(state.id) == (s.total, s.fit, s.engagement, s.grade, ruleset.pk):
                continue
            changed.append(
                LeadScore(
                    lead_id=state.id,
                    group=ruleset.group,
                    ruleset=ruleset,
                    score=s.total,
                    fit_score=s.fit,
                    engagement_score=s.engagement,
                    grade=s.grade,
                    reasons=s.reasons,
                )
            )
        LeadScore.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["lead", "group"],
            update_fields=["ruleset", "score", "fit_score", "engagement_score", "grade", "reasons", "updated_at"],
            batch_size=5000,
        )
        stats.changed += len(changed)
        if primary:
            stats.leads += len(chunk)
            if progress is not None:
                progress(len(chunk))


def _rescore_default(
    ruleset: RuleSet,
    stats: RescoreStats,
    *,
    lead_ids: list[int] | None,
    where: str,
    params: tuple,
    now: dt.datetime | None,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    plan: dict,
) -> None:
    prepared = _prepared(ruleset, plan, with_model=True)
    compiled, model = prepared.compiled, prepared.model
    now_ts = (now or timezone.now()).timestamp()
    actor = Actor.automation()
    background = lead_ids is None and connection.vendor == "postgresql" and not connection.in_atomic_block
    writer = _Writer(stats, background=background)
    score_update = lead_services.ScoreUpdate  # bound once: one per changed lead
    chunks = read_leads(prepared.needs, where=where, params=params, lead_ids=lead_ids, chunk_size=chunk_size)
    for chunk in _prefetched(chunks) if background else chunks:
        probabilities: list[float | None] = [None] * len(chunk)
        if model is not None:
            open_at = [i for i, lead in enumerate(chunk) if lead.state.stage not in CLOSED_STAGES]
            preds = predictive.predict(
                model, [predictive.features(chunk[i].facts, chunk[i].events, now_ts) for i in open_at]
            )
            for i, p in zip(open_at, preds, strict=True):
                probabilities[i] = p
        updates = []
        for (state, facts, evs), probability in zip(chunk, probabilities, strict=True):
            s = engine.score_lead(compiled, facts, evs, now_ts)
            if model is not None and state.stage in CLOSED_STAGES:
                probability = state.conversion_probability  # closed: the outcome is known, keep the last estimate
            same = (s.total, s.fit, s.engagement, s.grade) == state.scores
            if same and (model is None or probability == state.conversion_probability):
                continue
            updates.append(
                score_update(
                    lead_id=state.id,
                    score=s.total,
                    fit_score=s.fit,
                    engagement_score=s.engagement,
                    grade=s.grade,
                    reasons=engine.reasons_json(compiled, s),
                    conversion_probability=probability,
                    expected=state.expected,
                )
            )
        writer.submit(
            lambda updates=updates: lead_services.lead_scores_set(
                updates=updates,
                actor=actor,
                mql_threshold=prepared.spec.mql_threshold,
                with_probability=model is not None,
            )
        )
        stats.leads += len(chunk)
        if progress is not None:
            progress(len(chunk))
    writer.finish()


def leads_rescore(*, lead_ids: list[int], now: dt.datetime | None = None, cause: str = "") -> RescoreStats:
    """Rescore these leads from their facts and events (after an event or a change):
    idempotent, a few queries for any number of ids. Then `lead.scored` with the `cause`
    (the event that asked), in the same transaction: what must follow the scoring (routing
    at capture) reacts to it."""
    ids = sorted({int(i) for i in lead_ids})
    if not ids:
        return RescoreStats()
    with transaction.atomic():
        stats = rescore_active(lead_ids=ids, now=now)
        events.emit(events.LEAD_SCORED, lead_ids=ids, cause=cause)
    return stats


def leads_rescore_all(
    *,
    now: dt.datetime | None = None,
    chunk_size: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    engaged_only: bool = False,
    group: str | None = None,
) -> RescoreStats:
    """Every lead (or, for the nightly decay, those with engagement points), set-based and
    streamed: per chunk two reads and one compare-and-set statement (update and history; a
    lead changed meanwhile is compared again under its lock); memory flat in the number of
    leads."""
    where = "engagement_score > 0" if engaged_only else ""
    with gc_paused():
        return rescore_active(
            lead_ids=None, where=where, now=now, chunk_size=chunk_size, progress=progress, group=group
        )


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """A full rescore makes millions of short-lived tuples, all freed by reference counting;
    the cyclic collector would walk them again and again for nothing (~15 % of the run)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def leads_to_rescore(*, engaged_only: bool = False) -> int:
    """How many leads a full rescore reads (for a progress bar)."""
    qs = Lead.objects.filter(engagement_score__gt=0) if engaged_only else Lead.objects.all()
    return qs.count()

"""The transactional outbox: reactions owed to domain events, written with the change that
caused them, relayed to Celery until the broker takes them.

- `write()` (called by `events.emit`) inserts the rows in the caller's transaction and,
  once it commits, relays exactly those rows at once (the fast path): one publish per
  coalesced task, no publish retry and short broker timeouts, so a dead broker costs
  milliseconds and never fails the request; the rows then stay pending.
- `relay()` (beat task `leadcrm.tasks.outbox_relay`, `manage.py outbox_relay [--loop]`)
  takes what is due (`SELECT ... FOR UPDATE SKIP LOCKED` where the database has it;
  SQLite serialises writers anyway), sends it, marks `sent_at`, and on failure backs off
  (`attempts`, `available_at`, `last_error`) and tries again later, for ever.
- Confirmation: each message carries its rows' ids (header `outbox_ids`); the worker that
  ran the task marks them `done_at` (`confirm`, on Celery's task_postrun). The broker taking
  a message is not the end: a Redis restarted without persistence forgets what was queued,
  and a worker killed with kill -9 leaves its acks-late message invisible for the broker's
  visibility timeout (an hour). So a sent row not confirmed within `confirm_within()` is
  due again and sent again (the deadline doubling per delivery, up to MAX_DELIVERIES). A
  task marked `outbox_confirm="start"` (work the job runner keeps alive) is confirmed when
  it starts instead.
- Coalescing: rows relayed together that call the same task with the same arguments
  besides `lead_ids` become one call with the union of their `lead_ids` (a re-capture's
  `lead.updated` and `lead.activity_recorded` rescore the lead once).

Delivery is at least once (a relay that dies between publish and `sent_at` sends again, an
unconfirmed row is sent again): every reaction task is idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from celery import states
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from leadcrm.celery import app
from leadcrm.models import OutboxMessage

logger = logging.getLogger(__name__)

# A fresh row belongs to its transaction's fast path for this long: the relay loop leaves
# it alone meanwhile (no double send), and takes it afterwards if that process died.
FAST_PATH_LEASE = dt.timedelta(seconds=15)
# A row the relay loop took is its own for this long (a relay killed mid-batch releases it).
RELAY_LEASE = dt.timedelta(seconds=60)
BACKOFF_BASE = 1.0  # seconds; doubled per failed attempt
BACKOFF_MAX = 60.0  # so a pending reaction goes within a minute of the broker's return
BATCH = 500
# After a fast path that reached the broker, older pending rows (left while it was down)
# are relayed too, at most this often per process.
CATCH_UP_EVERY = 2.0
KEEP_SENT = dt.timedelta(days=3)
# A row sent this many times and never confirmed is given up (logged, marked done): its task
# keeps failing before it ends, or is unknown to the workers.
MAX_DELIVERIES = 8
CONFIRM_MAX = dt.timedelta(hours=6)


def confirm_within(deliveries: int = 1) -> dt.timedelta:
    """How long a sent row waits for its worker's confirmation before it is sent again:
    LEADCRM_OUTBOX_CONFIRM_SECONDS (a queue that deep is a backlog, not a loss: it doubles
    per delivery, so a backlog is not flooded with copies)."""
    base = getattr(settings, "LEADCRM_OUTBOX_CONFIRM_SECONDS", 300)
    return min(CONFIRM_MAX, dt.timedelta(seconds=base * 2 ** max(deliveries - 1, 0)))


@dataclass
class RelayResult:
    sent: int = 0  # rows
    published: int = 0  # task messages (after coalescing)
    failed: int = 0  # rows left pending with a backoff

    def __iadd__(self, other: RelayResult) -> RelayResult:
        self.sent += other.sent
        self.published += other.published
        self.failed += other.failed
        return self


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(attempts - 1, 0)))


# --- writing --------------------------------------------------------------------------


class _AfterCommit:
    """The fast path of one emit. Consecutive emits of one transaction chain their
    callbacks, and the first of the chain that runs relays the rows of all of them
    together (so they coalesce); a callback dropped with a rolled-back savepoint never
    runs, and rows rolled back with it are not found, so nothing of theirs is sent."""

    def __init__(self, ids: list[int]):
        self.ids = ids
        self.next: _AfterCommit | None = None
        self.done = False

    def __call__(self) -> None:
        ids, link = [], self
        while link is not None and not link.done:
            link.done = True
            ids += link.ids
            link = link.next
        if ids:
            relay_committed(ids)


_local = threading.local()


def write(event: str, owed: list[tuple[str, dict]]) -> None:
    """Insert one row per (task, kwargs) in the current transaction; relay them after commit."""
    now = timezone.now()
    rows = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(event=event, task=task, payload=kwargs, created_at=now, available_at=now + FAST_PATH_LEASE)
            for task, kwargs in owed
        ]
    )
    callback = _AfterCommit([r.pk for r in rows])
    previous = getattr(_local, "last", None)
    if previous is not None and not previous.done and connection.in_atomic_block:
        if any(func is previous for _, func, _ in reversed(connection.run_on_commit)):
            previous.next = callback
    _local.last = callback
    transaction.on_commit(callback)


# --- relaying -------------------------------------------------------------------------


def _coalesce(rows: list[tuple[int, str, dict]]) -> list[tuple[str, dict, list[int]]]:
    """(task, kwargs, row ids): one call per task and arguments besides `lead_ids`."""
    groups: dict[tuple[str, str], tuple[str, dict, list[int]]] = {}
    for pk, task, payload in rows:
        rest = {k: v for k, v in payload.items() if k != "lead_ids"}
        key = (task, json.dumps(rest, sort_keys=True, default=str) + ("|ids" if "lead_ids" in payload else ""))
        if key not in groups:
            groups[key] = (task, {**payload}, [pk])
            if "lead_ids" in payload:
                groups[key][1]["lead_ids"] = list(payload["lead_ids"])
            continue
        groups[key][2].append(pk)
        if "lead_ids" in payload:
            merged = groups[key][1]["lead_ids"]
            seen = set(merged)
            merged.extend(i for i in payload["lead_ids"] if i not in seen and not seen.add(i))
    return list(groups.values())


def _eager() -> bool:
    return bool(app.conf.task_always_eager)


def _publish(task: str, kwargs: dict[str, Any], ids: list[int]) -> None:
    """One message, no retry loop (CELERY_TASK_PUBLISH_RETRY is off): the broker's short
    timeouts decide (see settings). Under CELERY_TASK_ALWAYS_EAGER the task runs here. The
    rows' ids travel in a header, for the worker's confirmation."""
    import_string(task).apply_async(kwargs=kwargs, headers={"outbox_ids": ids})


def _send(rows: list[tuple[int, str, dict]]) -> RelayResult:
    """Publish coalesced rows; mark the sent ones, back the others off. The first broker
    error stops the batch: the broker is down, the rest would fail the same way."""
    result = RelayResult()
    sent: list[int] = []
    failed: list[int] = []
    error = ""
    for task, kwargs, ids in _coalesce(rows):
        if error:
            failed += ids
            continue
        try:
            _publish(task, kwargs, ids)
        except Exception as exc:  # the broker is down or refuses: keep the rows, retry later
            error = f"{type(exc).__name__}: {exc}"[:2000]
            logger.warning("outbox: could not send %s (%d rows kept): %s", task, len(ids), error)
            failed += ids
            continue
        sent += ids
        result.published += 1
    now = timezone.now()
    if sent:
        _mark_sent(sent, now)
    if failed:
        _back_off(failed, error, now)
    result.sent, result.failed = len(sent), len(failed)
    return result


def _mark_sent(ids: list[int], now: dt.datetime) -> None:
    """Sent: due again once its confirmation is late (done at once when the task ran here)."""
    if _eager():
        OutboxMessage.objects.filter(pk__in=ids).update(sent_at=now, done_at=now, deliveries=F("deliveries") + 1)
        return
    deliveries = dict(OutboxMessage.objects.filter(pk__in=ids).values_list("pk", "deliveries"))
    by_deliveries: dict[int, list[int]] = {}
    for pk, n in deliveries.items():
        by_deliveries.setdefault(n + 1, []).append(pk)
    for n, pks in by_deliveries.items():
        OutboxMessage.objects.filter(pk__in=pks).update(sent_at=now, deliveries=n, available_at=now + confirm_within(n))


def confirm(ids: list[int]) -> int:
    """The worker ran the task of these rows (Celery's task_postrun, `confirm_after_run`)."""
    return OutboxMessage.objects.filter(pk__in=ids, done_at__isnull=True).update(done_at=timezone.now())


def _outbox_ids(task) -> list[int]:
    request = task.request
    ids = getattr(request, "outbox_ids", None) or (getattr(request, "headers", None) or {}).get("outbox_ids")
    return list(ids or ())


def confirm_after_run(task=None, state=None, **_: object) -> None:
    """Celery's task_postrun (connected in leadcrm/apps.py): a task sent by the outbox ran to
    its end (success, or failure after its own retries): its rows are done, the relay will
    not send them again."""
    if task is None or state not in (states.SUCCESS, states.FAILURE) or getattr(task, "outbox_confirm", "") == "start":
        return
    ids = _outbox_ids(task)
    if ids:
        confirm(ids)


def confirm_at_start(task=None, **_: object) -> None:
    """Celery's task_prerun (connected in leadcrm/apps.py): a task marked
    `outbox_confirm="start"` is done for the outbox once a worker took it: sent again while
    it runs, it would run twice side by side. Surviving a killed worker is then the job
    runner's business (leadcrm.jobs)."""
    if task is None or getattr(task, "outbox_confirm", "") != "start":
        return
    ids = _outbox_ids(task)
    if ids:
        confirm(ids)


def _back_off(ids: list[int], error: str, now: dt.datetime) -> None:
    attempts = dict(OutboxMessage.objects.filter(pk__in=ids).values_list("pk", "attempts"))
    by_attempts: dict[int, list[int]] = {}
    for pk, n in attempts.items():
        by_attempts.setdefault(n + 1, []).append(pk)
    for n, pks in by_attempts.items():
        OutboxMessage.objects.filter(pk__in=pks).update(attempts=n, available_at=now + backoff(n), last_error=error)


_caught_up_at = 0.0


def relay_committed(ids: list[int]) -> RelayResult:
    """The fast path: the rows a transaction just committed (still unsent), then, when the
    broker took them, a batch of older pending rows now and then (left while it was down)."""
    global _caught_up_at
    try:
        rows = list(OutboxMessage.objects.filter(pk__in=ids, sent_at__isnull=True).values_list("pk", "task", "payload"))
        result = _send(rows) if rows else RelayResult()
        if result.failed == 0 and not _eager() and time.monotonic() - _caught_up_at > CATCH_UP_EVERY:
            _caught_up_at = time.monotonic()
            if OutboxMessage.objects.filter(done_at__isnull=True, available_at__lte=timezone.now()).exists():
                result += relay(limit=BATCH)
    except Exception:  # never fail the request: the relay loop sends what is left
        logger.exception("outbox: fast path failed; the relay loop will send the rows")
        return RelayResult()
    return result


def _claim(limit: int) -> list[tuple[int, str, dict]]:
    """Take up to `limit` due rows for this relay (a lease, committed at once): never sent,
    or sent and not confirmed in time. Rows sent MAX_DELIVERIES times are given up."""
    now = timezone.now()
    with transaction.atomic():
        qs = OutboxMessage.objects.filter(done_at__isnull=True, available_at__lte=now).order_by("available_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        rows = list(qs.values_list("pk", "task", "payload", "deliveries")[:limit])
        spent = [r[0] for r in rows if r[3] >= MAX_DELIVERIES]
        if spent:
            logger.error("outbox: rows sent %d times and never confirmed, given up: %s", MAX_DELIVERIES, spent)
            OutboxMessage.objects.filter(pk__in=spent).update(
                done_at=now, last_error=f"Never confirmed after {MAX_DELIVERIES} deliveries; given up."
            )
        rows = [r[:3] for r in rows if r[3] < MAX_DELIVERIES]
        if rows:
            OutboxMessage.objects.filter(pk__in=[r[0] for r in rows]).update(available_at=now + RELAY_LEASE)
    return rows


def relay(*, limit: int = BATCH, max_batches: int = 20) -> RelayResult:
    """Send what is pending and due, batch after batch, until none is left, the broker
    fails, or `max_batches` were sent (the next run goes on)."""
    total = RelayResult()
    for _ in range(max_batches):
        rows = _claim(limit)
        if not rows:
            break
        total += _send(rows)
        if total.failed or len(rows) < limit:
            break
    return total


def pending_count() -> int:
    """Rows whose reaction has not run yet (never sent, or sent and not confirmed)."""
    return OutboxMessage.objects.filter(done_at__isnull=True).count()


def prune(*, older_than: dt.timedelta = KEEP_SENT) -> int:
    """Delete rows done longer ago than `older_than` (rows still owed are never deleted)."""
    cutoff = timezone.now() - older_than
    deleted, _ = OutboxMessage.objects.filter(done_at__lt=cutoff).delete()
    return deleted

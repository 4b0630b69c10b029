"""Writes of the integrations app: API keys, webhook subscriptions, deliveries (written by
the events' reaction, sent by the worker, replayed by an admin). Every configuration change
is audited; sending writes its own log (DeliveryAttempt) instead of audit rows.

Sending (`deliveries_send_due`): due deliveries are claimed in chunks with
`SELECT ... FOR UPDATE SKIP LOCKED` (two workers never take the same row) and leased by
moving `next_attempt_at` forward, so a worker killed mid-send leaves them due again after
`lease()` (at least once; the receiver drops duplicates by `webhook-id`). A delivery is not
claimed while an earlier one (by event time) of the same webhook and lead is pending: per-lead
order. The chunk is sent by a few threads over keep-alive connections per target, with
timeouts, no redirects and the SSRF check on the connected socket; results are written in
bulk. A failure is retried with exponential backoff and jitter for RETRY_WINDOW (about three
days), then the delivery is failed. A 410 answer, or a target failing with no success for
DISABLE_AFTER, disables the webhook and notifies its owner."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import math
import os
import random
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as accounts_services
from integrations import selectors, signing, targets
from integrations.models import ApiKey, Delivery, DeliveryAttempt, DeliveryStatus, Scope, Webhook
from leadcrm import audit, bulk, events
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError

if TYPE_CHECKING:
    from collections.abc import Iterable

# --- API keys ---------------------------------------------------------------------------

LAST_USED_EVERY = dt.timedelta(minutes=1)


def _validated_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = list(dict.fromkeys(scopes or []))
    bad = [s for s in scopes if s not in Scope.values]
    if not scopes or bad:
        raise ServiceError({"scopes": [_("One or more of: %(scopes)s.") % {"scopes": ", ".join(Scope.values)}]})
    return scopes


@transaction.atomic
def api_key_create(*, actor: Actor, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """A new key acting as `actor.user` within `scopes`; returns it and the key itself, which
    is shown once and never stored (only its prefix and hash)."""
    name = (name or "").strip()
    if not name:
        raise ServiceError({"name": [_("A name is required.")]})
    scopes = _validated_scopes(scopes)
    if actor.user is None:
        raise ServiceError({"user": [_("A key acts for a person: create it signed in.")]})
    for _try in range(3):
        raw = selectors.KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name[:100],
                    prefix=raw[: selectors.PREFIX_LENGTH],
                    hashed_key=selectors.hash_key(raw),
                    scopes=scopes,
                    user=actor.user,
                )
            break
        except IntegrityError:  # the 8-character prefix was taken (rare): draw again
            continue
    else:
        raise Conflict("key_prefix", "Could not draw a free key prefix; try again.")
    changes = audit.created(key, ("name", "scopes", "user"))
    audit.record(actor=actor, action="api_key.create", target=key, changes=changes)
    return key, raw


@transaction.atomic
def api_keys_revoke(*, actor: Actor, key_ids: list[int]) -> int:
    """Revoke keys (refused from the next call on); revoking a revoked key changes nothing."""
    now = timezone.now()
    keys = list(ApiKey.objects.select_for_update().filter(pk__in=key_ids, revoked_at__isnull=True))
    if not keys:
        return 0
    ApiKey.objects.filter(pk__in=[k.pk for k in keys]).update(revoked_at=now)
    audit.record_many(
        audit.entry(actor=actor, action="api_key.revoke", target=k, changes={"revoked_at": [None, now]}) for k in keys
    )
    return len(keys)


def api_key_touch(*, key: ApiKey) -> None:
    """Record that the key was used: at most one write a minute per key (usage, not audited)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


# --- webhook subscriptions --------------------------------------------------------------

WEBHOOK_FIELDS = ("description", "url", "events", "active", "owner")
ROTATION_GRACE = dt.timedelta(hours=24)


def _checked_url(url: str) -> str:
    problem = targets.refusal(url)
    if problem:
        raise ServiceError({"url": [problem]})
    return url


def _checked_events(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names or []))
    bad = [n for n in names if n not in events.WEBHOOK_EVENTS]
    if not names or bad:
        allowed = ", ".join(events.WEBHOOK_EVENTS)
        raise ServiceError({"events": [_("One or more of: %(events)s.") % {"events": allowed}]})
    return names


@transaction.atomic
def webhook_create(
    *, actor: Actor, url: str, events: Iterable[str], description: str = "", active: bool = True
) -> Webhook:
    """A subscription owned by the actor (notified if it gets disabled), with a new secret."""
    if actor.user is None:
        raise ServiceError({"owner": [_("A webhook has an owner: create it signed in.")]})
    webhook = Webhook.objects.create(
        url=_checked_url(url),
        events=_checked_events(events),
        description=(description or "")[:200],
        active=bool(active),
        owner=actor.user,
        secret=signing.new_secret(),
    )
    audit.record(actor=actor, action="webhook.create", target=webhook, changes=audit.created(webhook, WEBHOOK_FIELDS))
    return webhook


@transaction.atomic
def webhook_update(*, actor: Actor, webhook_id: int, **fields: object) -> Webhook:
    """Edit a subscription; switching it on again clears its failure record."""
    webhook = Webhook.objects.select_for_update().get(pk=webhook_id)
    before = audit.snapshot(webhook, WEBHOOK_FIELDS)
    if "url" in fields:
        fields["url"] = _checked_url(str(fields["url"]))
    if "events" in fields:
        fields["events"] = _checked_events(fields["events"])  # type: ignore[arg-type]
    editable = ("description", "url", "events", "active")
    changed = [k for k in editable if k in fields and getattr(webhook, k) != fields[k]]
    for k in changed:
        setattr(webhook, k, fields[k])
    if "active" in changed and webhook.active:
        webhook.consecutive_failures, webhook.failing_since = 0, None
        webhook.disabled_at, webhook.disabled_reason = None, ""
        changed += ["consecutive_failures", "failing_since", "disabled_at", "disabled_reason"]
    if changed:
        webhook.save(update_fields=[*changed, "updated_at"])
        audit.record(actor=actor, action="webhook.update", target=webhook, changes=audit.diff(before, webhook))
    return webhook


@transaction.atomic
def webhook_rotate_secret(*, actor: Actor, webhook_id: int, grace: dt.timedelta = ROTATION_GRACE) -> Webhook:
    """A new secret; the previous one still signs (a second signature) for `grace`, so the
    receiver can switch without losing a message."""
    webhook = Webhook.objects.select_for_update().get(pk=webhook_id)
    webhook.previous_secret, webhook.secret = webhook.secret, signing.new_secret()
    webhook.previous_secret_expires_at = timezone.now() + grace
    webhook.save(update_fields=["previous_secret", "secret", "previous_secret_expires_at", "updated_at"])
    audit.record(
        actor=actor,
        action="webhook.rotate_secret",
        target=webhook,
        details={"previous_valid_until": webhook.previous_secret_expires_at},
    )
    return webhook


@transaction.atomic
def webhook_delete(*, actor: Actor, webhook_id: int) -> None:
    webhook = Webhook.objects.select_for_update().get(pk=webhook_id)
    audit.record(actor=actor, action="webhook.delete", target=webhook, changes=audit.deleted(webhook, WEBHOOK_FIELDS))
    webhook.delete()


def webhook_secrets(webhook: Webhook, now: dt.datetime | None = None) -> list[str]:
    """The secrets a message is signed with now: the current one, and the previous one
    during its grace period."""
    now = now or timezone.now()
    out = [webhook.secret]
    if webhook.previous_secret and webhook.previous_secret_expires_at and webhook.previous_secret_expires_at > now:
        out.append(webhook.previous_secret)
    return out


def webhook_disable(*, webhook_id: int, reason: str, actor: Actor | None = None) -> bool:
    """Switch a failing endpoint off and tell its owner; False when it was already off."""
    actor = actor or Actor.automation()
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().select_related("owner").filter(pk=webhook_id).first()
        if webhook is None or not webhook.active:
            return False
        now = timezone.now()
        webhook.active, webhook.disabled_at, webhook.disabled_reason = False, now, reason[:200]
        webhook.save(update_fields=["active", "disabled_at", "disabled_reason", "updated_at"])
        audit.record(
            actor=actor,
            action="webhook.disable",
            target=webhook,
            changes={"active": [True, False]},
            details={"reason": reason},
        )
        accounts_services.notify(
            user=webhook.owner,
            kind="webhook.disabled",
            text=_("Webhook to %(url)s was disabled: %(reason)s. Fix the endpoint, then switch it on again.")
            % {"url": webhook.url, "reason": reason},
        )
    return True


# --- deliveries: written by the events' reaction ---------------------------------------


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of an event: its idempotency key (the outbox row), time and leads."""

    key: str
    at: dt.datetime
    lead_ids: list[int]


def _body(event: str, at: dt.datetime, lead: dict, details: dict) -> str:
    payload = {"type": event, "timestamp": at.isoformat(), "data": {**details, "lead": lead}}
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def deliveries_write(*, event: str, occurrences: list[Occurrence], details: dict | None = None) -> int:
    """One delivery per active subscription to `event` and lead of each occurrence, with the
    lead as it is now. Idempotent: the unique key (webhook, occurrence, lead) makes a second
    run of the same reaction write nothing. Returns how many were written."""
    hooks = selectors.active_webhooks_for(event)
    if not hooks or not occurrences:
        return 0
    details = {k: v for k, v in (details or {}).items() if k not in ("lead_ids", "event")}
    snapshots = selectors.lead_snapshots(sorted({i for o in occurrences for i in o.lead_ids}))
    now = timezone.now()
    rows = []
    for occurrence in occurrences:
        for lead_id in occurrence.lead_ids:
            lead = snapshots.get(lead_id)
            if lead is None:  # deleted since
                continue
            body = _body(event, occurrence.at, lead, details)
            for hook in hooks:
                rows.append(
                    Delivery(
                        webhook=hook,
                        lead_id=lead_id,
                        event=event,
                        key=f"{hook.pk}:{occurrence.key}:{lead_id}"[:200],
                        msg_id="msg_" + secrets.token_urlsafe(18),
                        body=body,
                        ordered_at=occurrence.at,
                        next_attempt_at=now,
                        window_start=now,
                        created_at=now,
                    )
                )
    if not rows:
        return 0
    with transaction.atomic():
        written = Delivery.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
        # bulk_create(ignore_conflicts=True) returns every object: count the rows written now
        # (a message id is new per row, so a key kept from an earlier run does not match).
        return Delivery.objects.filter(msg_id__in=[r.msg_id for r in written]).count()


# --- deliveries: sending ----------------------------------------------------------------

RETRY_WINDOW = dt.timedelta(days=3)
BACKOFF_BASE = 5.0  # seconds, doubled per failed attempt
BACKOFF_CAP = 6 * 3600.0
JITTER = 0.2  # ± this share of the delay, so retries of many deliveries spread out
DISABLE_AFTER = dt.timedelta(days=3)  # failing with no success for a delivery's whole window
CHUNK = 500
SEND_THREADS = 8
CONNECT_TIMEOUT, READ_TIMEOUT, TOTAL_TIMEOUT = 5.0, 10.0, 15.0
EXCERPT = 1000  # characters of the answer kept
READ_MAX = 64 * 1024  # an answer longer than this is cut and its connection closed
USER_AGENT = "LeadCRM-Webhooks/1"


def lease(claimed: int) -> dt.timedelta:
    """How long claimed deliveries are this worker's: longer than the slowest send of its
    chunk (every target timing out, SEND_THREADS at a time) and of the chunk before it
    (pipelined), so a live worker's rows are never taken by another; a dead worker's come
    back after it."""
    return dt.timedelta(seconds=30 + 2 * TOTAL_TIMEOUT * math.ceil(claimed / SEND_THREADS))


def backoff(attempts: int, rand: random.Random | None = None) -> dt.timedelta:
    """Wait before the next try after `attempts` failed ones: 5 s, 10 s, 20 s... up to 6 h,
    ± 20 % jitter."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempts - 1, 0))
    return dt.timedelta(seconds=delay * (1 + (rand or random).uniform(-JITTER, JITTER)))


@dataclass
class Outgoing:
    delivery_id: int
    webhook_id: int
    url: str
    msg_id: str
    body: str
    secrets: list[str]
    number: int
    window_start: dt.datetime


@dataclass
class Outcome:
    out: Outgoing
    at: dt.datetime
    headers: dict
    status_code: int | None = None
    excerpt: str = ""
    duration_ms: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


@dataclass
class SendResult:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return self.delivered + self.retried + self.failed

    def __iadd__(self, other: SendResult) -> SendResult:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        self.disabled += other.disabled
        return self


_http_lock = threading.Lock()
_http: tuple[int, ThreadPoolExecutor] | None = None
_connections = threading.local()


def _executor() -> ThreadPoolExecutor:
    """This process's sending threads; made again after a fork (Celery's prefork workers)."""
    global _http
    with _http_lock:
        if _http is None or _http[0] != os.getpid():
            _http = (os.getpid(), ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="webhooks"))
        return _http[1]


def _connection(scheme: str, host: str, port: int) -> tuple[http.client.HTTPConnection, bool]:
    """This thread's keep-alive connection to the target (new or reused)."""
    pool = getattr(_connections, "pool", None)
    if pool is None:
        pool = _connections.pool = {}
    conn = pool.get((scheme, host, port))
    if conn is not None:
        return conn, True
    conn = targets.CONNECTION_CLASSES[scheme](host, port, timeout=CONNECT_TIMEOUT)
    conn.read_timeout = READ_TIMEOUT
    pool[(scheme, host, port)] = conn
    return conn, False


def _drop(scheme: str, host: str, port: int) -> None:
    conn = _connections.pool.pop((scheme, host, port), None)
    if conn is not None:
        conn.close()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One POST over this thread's keep-alive connection to the target (tried once more on
    a fresh connection when a reused one was closed by the other side meanwhile). The
    answer is read up to READ_MAX bytes and within TOTAL_TIMEOUT; a longer or slower one
    is cut and its connection closed. Never follows a redirect."""
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + TOTAL_TIMEOUT
    for attempt in (1, 2):
        conn, reused = _connection(scheme, host, port)
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            _drop(scheme, host, port)
            if reused and attempt == 1:
                continue
            raise
        except BaseException:
            _drop(scheme, host, port)
            raise
        break
    try:
        data = b""
        while len(data) <= READ_MAX:
            chunk = response.read(min(16384, READ_MAX + 1 - len(data)))
            if not chunk:
                break
            data += chunk
            if time.monotonic() > deadline:
                raise TimeoutError("the answer took longer than the total timeout")
        if len(data) > READ_MAX or response.will_close:
            _drop(scheme, host, port)
    except BaseException:
        _drop(scheme, host, port)
        raise
    return response.status, data


def _send_one(out: Outgoing) -> Outcome:
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(out.secrets, out.msg_id, timestamp, out.body),
    }
    outcome = Outcome(out=out, at=timezone.now(), headers=headers)
    start = time.perf_counter()
    try:
        status, data = _post(out.url, out.body.encode(), headers)
        outcome.status_code = status
        outcome.excerpt = data[: EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT]
        if 300 <= status < 400:
            outcome.error = "Redirects are not followed."
    except targets.TargetRefused as exc:
        outcome.error = str(exc)[:300]
    except Exception as exc:  # timeouts, refused connections, TLS, protocol errors
        outcome.error = f"{type(exc).__name__}: {exc}"[:300]
    outcome.duration_ms = int((time.perf_counter() - start) * 1000)
    return outcome


def _claim(limit: int, now: dt.datetime) -> list[Outgoing]:
    """Take up to `limit` due deliveries (the earliest pending one of each webhook and lead),
    leased (`lease`)."""
    earlier = Delivery.objects.filter(
        webhook=OuterRef("webhook"), lead=OuterRef("lead"), status=DeliveryStatus.PENDING
    ).filter(Q(ordered_at__lt=OuterRef("ordered_at")) | Q(ordered_at=OuterRef("ordered_at"), pk__lt=OuterRef("pk")))
    qs = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, webhook__active=True)
        .filter(~Exists(earlier))
        .order_by("next_attempt_at", "id")
    )
    if connection.features.has_select_for_update_skip_locked:
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    with transaction.atomic():
        rows = list(
            qs.values_list(
                "pk",
                "webhook_id",
                "webhook__url",
                "msg_id",
                "body",
                "attempts",
                "window_start",
                "webhook__secret",
                "webhook__previous_secret",
                "webhook__previous_secret_expires_at",
            )[:limit]
        )
        if not rows:
            return []
        until = max(now, timezone.now()) + lease(len(rows))
        Delivery.objects.filter(pk__in=[r[0] for r in rows]).update(next_attempt_at=until)
    real_now = timezone.now()
    out = []
    for pk, hook, url, msg_id, body, attempts, window_start, secret, previous, expires in rows:
        keys = [secret] + ([previous] if previous and expires and expires > real_now else [])
        out.append(Outgoing(pk, hook, url, msg_id, body, keys, attempts + 1, window_start))
    return out


def _record(outcomes: list[Outcome], now: dt.datetime) -> SendResult:
    """Write the attempts and the deliveries' new state in bulk (one transaction: one
    commit per chunk); judge each webhook's health."""
    with transaction.atomic():
        result = _record_chunk(outcomes, now)
    result.disabled = _judge_health(outcomes, now)
    return result


def _record_chunk(outcomes: list[Outcome], now: dt.datetime) -> SendResult:
    result = SendResult()
    bulk.bulk_insert(
        [
            {
                "delivery_id": o.out.delivery_id,
                "number": o.out.number,
                "at": o.at,
                "url": o.out.url,
                "request_headers": o.headers,
                "status_code": o.status_code,
                "response_excerpt": o.excerpt,
                "duration_ms": o.duration_ms,
                "error": o.error,
            }
            for o in outcomes
        ],
        model=DeliveryAttempt,
    )
    by_code: dict[int, list[int]] = {}
    for o in outcomes:
        if o.ok:
            by_code.setdefault(o.status_code, []).append(o.out.delivery_id)  # type: ignore[arg-type]
    for code, ids in by_code.items():
        Delivery.objects.filter(pk__in=ids).update(
            status=DeliveryStatus.DELIVERED,
            delivered_at=now,
            attempts=F("attempts") + 1,
            last_status_code=code,
            next_attempt_at=now,
        )
        result.delivered += len(ids)
    again = []
    for o in outcomes:
        if o.ok:
            continue
        give_up = o.gone or now >= o.out.window_start + RETRY_WINDOW
        again.append(
            {
                "id": o.out.delivery_id,
                "attempts": o.out.number,
                "last_status_code": o.status_code,
                "status": DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
                "next_attempt_at": now if give_up else now + backoff(o.out.number),
            }
        )
        if give_up:
            result.failed += 1
        else:
            result.retried += 1
    if again:
        bulk.update_rows(again, model=Delivery, fields=["attempts", "last_status_code", "status", "next_attempt_at"])
    return result


def _judge_health(outcomes: list[Outcome], now: dt.datetime) -> list[int]:
    """A webhook's last answer in the chunk decides: a success clears its failure record,
    failures add to it. 410 Gone, or no success for DISABLE_AFTER, disables it."""
    last: dict[int, Outcome] = {}
    failures: Counter[int] = Counter()
    for o in outcomes:
        last[o.out.webhook_id] = o
        failures[o.out.webhook_id] += 0 if o.ok else 1
    healthy = [hook for hook, o in last.items() if o.ok]
    if healthy:
        Webhook.objects.filter(pk__in=healthy).exclude(consecutive_failures=0, failing_since=None).update(
            consecutive_failures=0, failing_since=None
        )
    disabled = []
    for hook, o in last.items():
        if o.ok:
            continue
        Webhook.objects.filter(pk=hook).update(
            consecutive_failures=F("consecutive_failures") + failures[hook],
            failing_since=Coalesce("failing_since", now),
        )
    gone = {o.out.webhook_id for o in outcomes if o.gone}
    for hook in gone:
        if webhook_disable(webhook_id=hook, reason=_("the endpoint answered 410 Gone")):
            disabled.append(hook)
    stale = Webhook.objects.filter(
        pk__in=[h for h, o in last.items() if not o.ok and h not in gone],
        active=True,
        failing_since__lte=now - DISABLE_AFTER,
    ).values_list("pk", flat=True)
    for hook in list(stale):
        if webhook_disable(webhook_id=hook, reason=_("no delivery succeeded for 3 days")):
            disabled.append(hook)
    return disabled


def deliveries_send_chunk(*, limit: int = CHUNK, now: dt.datetime | None = None) -> SendResult:
    """Claim one chunk of due deliveries, send it, record what happened."""
    return deliveries_send_due(limit=limit, now=now, max_chunks=1)


def deliveries_send_due(
    *, limit: int = CHUNK, now: dt.datetime | None = None, budget_seconds: float = 20.0, max_chunks: int = 0
) -> SendResult:
    """Send chunk after chunk while some are due, for at most `budget_seconds` (or
    `max_chunks`). Pipelined: while the threads send one chunk, this thread records the
    previous one and claims the next (the database waits release the GIL). A chunk claimed
    while the previous one is in flight never holds a successor of it: those are still
    pending, so per-lead order holds."""
    total = SendResult()
    deadline = time.monotonic() + budget_seconds
    executor = _executor()
    in_flight: list = []
    chunks = 0
    while True:
        more = time.monotonic() < deadline and (not max_chunks or chunks < max_chunks)
        outgoing = _claim(limit, now or timezone.now()) if more else []
        chunks += 1 if outgoing else 0
        sending = [executor.submit(_send_one, o) for o in outgoing]
        if in_flight:
            total += _record([f.result() for f in in_flight], max(now or timezone.now(), timezone.now()))
        elif not sending:
            return total
        in_flight = sending


def deliveries_due_count(now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    return Delivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, webhook__active=True
    ).count()


# --- replay -----------------------------------------------------------------------------


def _replay(qs, now: dt.datetime) -> int:
    return qs.update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        window_start=now,
        delivered_at=None,
        replays=F("replays") + 1,
    )


@transaction.atomic
def deliveries_replay(*, actor: Actor, delivery_ids: list[int]) -> int:
    """Send these deliveries again (same message id and body, a fresh retry window)."""
    deliveries = list(Delivery.objects.select_related("webhook").filter(pk__in=delivery_ids))
    inactive = [d.pk for d in deliveries if not d.webhook.active]
    if inactive:
        raise Conflict("webhook_inactive", "The webhook is switched off: switch it on before replaying.")
    now = timezone.now()
    count = _replay(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]), now)
    audit.record_many(
        audit.entry(
            actor=actor,
            action="webhook.delivery_replay",
            target=d,
            changes={"status": [d.status, DeliveryStatus.PENDING]},
            details={"webhook": d.webhook_id, "msg_id": d.msg_id},
        )
        for d in deliveries
    )
    if count:
        events.enqueue("integrations.tasks.deliveries_send_due")
    return count


@transaction.atomic
def deliveries_replay_range(
    *, actor: Actor, webhook_id: int, since: dt.datetime, until: dt.datetime, failed_only: bool = False
) -> int:
    """Send again every delivery of the webhook created in [since, until) (only the failed
    ones with `failed_only`). One audit entry names the range and the count."""
    if until <= since:
        raise ServiceError({"until": [_("After since.")]})
    webhook = Webhook.objects.get(pk=webhook_id)
    if not webhook.active:
        raise Conflict("webhook_inactive", "The webhook is switched off: switch it on before replaying.")
    qs = Delivery.objects.filter(webhook_id=webhook_id, created_at__gte=since, created_at__lt=until)
    if failed_only:
        qs = qs.filter(status=DeliveryStatus.FAILED)
    count = _replay(qs, timezone.now())
    audit.record(
        actor=actor,
        action="webhook.replay_range",
        target=webhook,
        details={"since": since, "until": until, "failed_only": failed_only, "count": count},
    )
    if count:
        events.enqueue("integrations.tasks.deliveries_send_due")
    return count

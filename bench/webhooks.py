"""Webhook deliveries/s to a loopback receiver, sent by 2 Celery worker processes.

    python bench/webhooks.py [--leads 10000] [--workers 2] [--redis-db 9]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_webhooks;
its deliveries, webhooks and leads are emptied first) and Redis (a database of its own,
flushed: --redis-db). Two events per lead (`lead.created`, then `lead.stage_changed`) are
written as deliveries to one subscription on a receiver running in a process of its own
(asyncio, HTTP/1.1 keep-alive) that checks every signature, counts each `webhook-id` and
checks per-lead order. Then `--workers` `celery worker --pool solo` processes are started
and asked to send; the clock runs from the ask to the last delivery marked delivered.
Target: ≥ 1,000 deliveries/s, 0 lost, 0 duplicated, 0 out of order, 0 bad signatures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_webhooks")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ["LEADCRM_WEBHOOK_ALLOW_PRIVATE"] = "true"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

from bench.common import django_ready  # noqa: E402

# --- the receiver (a process of its own: it must not share the bench's GIL) ----------------


def _receiver(port: int, secret: str, ready) -> None:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    seen: dict[str, int] = {}
    stats = {"requests": 0, "bad_signature": 0, "out_of_order": 0}
    created: set[int] = set()

    def handle(headers: dict[str, str], body: bytes) -> None:
        stats["requests"] += 1
        msg_id, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        expected = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest())
        if not any(
            hmac.compare_digest(s.partition(",")[2].encode(), expected)
            for s in headers.get("webhook-signature", "").split()
        ):
            stats["bad_signature"] += 1
        seen[msg_id] = seen.get(msg_id, 0) + 1
        payload = json.loads(body)
        lead = payload["data"]["lead"]["id"]
        if payload["type"] == "lead.created":
            created.add(lead)
        elif lead not in created:
            stats["out_of_order"] += 1

    def report() -> bytes:
        return json.dumps(
            {**stats, "unique": len(seen), "duplicated": sum(n - 1 for n in seen.values() if n > 1)}
        ).encode()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method = lines[0].split(" ", 1)[0]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                reply = b""
                if method == "POST":
                    handle(headers, body)
                else:
                    reply = report()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(reply)).encode()
                    + b"\r\n\r\n"
                    + reply
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(client, "127.0.0.1", port, backlog=512)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url.replace("/hook", "/stats"), timeout=5) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


# --- the bench ----------------------------------------------------------------------------


def _start_workers(n: int, broker: str) -> list[tuple[subprocess.Popen, str]]:
    env = {**os.environ, "CELERY_BROKER_URL": broker, "CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
    workers = []
    for i in range(n):
        log = tempfile.NamedTemporaryFile(prefix=f"bench-webhooks-worker{i}-", suffix=".log", delete=False)
        cmd = [
            sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "--pool", "solo", "-l", "info",
            "-n", f"bench-webhooks-{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append((proc, log.name))
    deadline = time.monotonic() + 60
    for proc, log in workers:
        while "ready" not in Path(log).read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"a worker did not start:\n{Path(log).read_text()[-3000:]}")
            time.sleep(0.2)
    return workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    broker = f"redis://127.0.0.1:6379/{args.redis_db}"
    os.environ["CELERY_BROKER_URL"] = broker
    django_ready()
    logging.disable(logging.WARNING)
    import redis
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import User
    from integrations import services
    from integrations.models import Delivery, DeliveryStatus, Webhook
    from integrations.signing import new_secret
    from integrations.tasks import deliveries_send_due
    from leadcrm import events
    from leads.models import Lead

    redis.Redis.from_url(broker).flushdb()
    Delivery.objects.all().delete()
    Webhook.objects.all().delete()
    Lead.objects.all().delete()
    owner, _ = User.objects.get_or_create(username="bench-webhooks", defaults={"role": "admin"})

    port, secret = _free_port(), new_secret()
    ready = multiprocessing.get_context("fork").Event()
    receiver = multiprocessing.get_context("fork").Process(target=_receiver, args=(port, secret, ready), daemon=True)
    receiver.start()
    ready.wait(10)
    url = f"http://127.0.0.1:{port}/hook"
    hook = Webhook.objects.create(
        url=url, events=[events.LEAD_CREATED, events.LEAD_STAGE_CHANGED], secret=secret, owner=owner
    )

    leads = Lead.objects.bulk_create(
        [Lead(email=f"hook{n}@bench.example", first_name=f"L{n}") for n in range(args.leads)], batch_size=5000
    )
    ids = [lead.pk for lead in leads]
    t = timezone.now()
    written = services.deliveries_write(
        event=events.LEAD_CREATED, occurrences=[services.Occurrence("bench-created", t, ids)]
    )
    written += services.deliveries_write(
        event=events.LEAD_STAGE_CHANGED,
        occurrences=[services.Occurrence("bench-mql", t + dt.timedelta(seconds=1), ids)],
        details={"from_stage": "MCL", "to_stage": "MQL"},
    )
    print(f"{written:,} deliveries ({args.leads:,} leads × 2 events, in order per lead) → {url}")

    workers = _start_workers(args.workers, broker)
    try:
        start = time.perf_counter()
        for _ in range(args.workers):
            deliveries_send_due.delay(budget_seconds=60)
        done, last_print = 0, start
        while done < written and time.perf_counter() - start < args.timeout:
            time.sleep(0.25)
            done = Delivery.objects.filter(webhook=hook, status=DeliveryStatus.DELIVERED).count()
            if time.perf_counter() - last_print > 5:
                last_print = time.perf_counter()
                print(f"  {done:,} delivered after {last_print - start:.1f} s")
        elapsed = time.perf_counter() - start
    finally:
        for proc, _log in workers:
            proc.terminate()
        for proc, log in workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            os.unlink(log)
    stats = _stats(url)
    receiver.terminate()
    states = dict(Delivery.objects.filter(webhook=hook).values_list("status").annotate(n=Count("id")))
    retried = Delivery.objects.filter(webhook=hook, attempts__gt=1).count()
    print(
        f"{done:,} of {written:,} delivered in {elapsed:.2f} s with {args.workers} worker processes: "
        f"{done / elapsed:,.0f} deliveries/s"
    )
    print(
        f"receiver: {stats['requests']:,} requests, {stats['unique']:,} distinct messages, "
        f"lost {written - stats['unique']:,}, duplicated {stats['duplicated']:,}, "
        f"out of order {stats['out_of_order']:,}, bad signatures {stats['bad_signature']:,}; "
        f"database: {states}, retried {retried:,}"
    )


if __name__ == "__main__":
    main()

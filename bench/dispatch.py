"""Sequence dispatch benchmark: every enrolled lead due at once, sent by real workers.

    python bench/dispatch.py [--leads 100000] [--workers 2] [--enrollments 1000000] [--due 10000]
                             [--skip-send] [--skip-tick]

Runs on PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/leadcrm_bench_dispatch;
created and migrated if needed; its leads and nurturing rows emptied first) and Redis
(CELERY_BROKER_URL, default redis://127.0.0.1:6379/11, flushed). Prints:
- dispatch: `--leads` opted-in leads enrolled in a one-e-mail sequence, all due; one beat
  tick (fanned out to the workers) sent to `--workers` Celery worker processes (solo pool)
  that walk the enrollments (batches of 500, each batch's e-mails queued by one
  `messages_queue`) and send every message (`messages_send`: chunks of 100 claimed at once,
  one SMTP connection per task) to a local SMTP sink (aiosmtpd on loopback, its own process,
  on the same cores): messages/s end to end, the engine's enrollments/s, duplicates at the
  sink (must be 0), messages that needed more than one attempt, the workers' peak memory
  (VmHWM);
- tick: `--enrollments` active enrollments (the leads x as many sequences as needed) of
  which `--due` are due: the time of the claim query, of a tick with nothing due, and of
  the tick that runs the due ones (walk + queue their e-mails), in this process.

Issue 16's targets (2 cores): >= 1,000 messages/s with 0 duplicates and flat memory; a tick
<= 1 s with 1,000,000 enrollments of which 10,000 are due. `--enrollments 1000000` builds in
about a minute; `--skip-send` measures the tick alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/leadcrm_bench_dispatch")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("LEADCRM_EMAIL_FREQUENCY_CAP", "1000/1")  # the cap is not what is measured
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadcrm.settings")

HEADER = re.compile(rb"X-LeadCRM-Message:\s*(\d+)")


# --- the SMTP sink (its own process: `--sink PORT OUT`) -------------------------------------


def sink(port: int, out: str, kind: str = "lean") -> None:
    """Accept everything on loopback; on SIGTERM write {message id: deliveries} to `out`.

    `lean`: a minimal SMTP server on asyncio (EHLO/HELO, MAIL, RCPT, DATA with the
    end-of-data line, RSET, NOOP, QUIT), about a tenth of aiosmtpd's CPU per message: the
    sink shares the two cores with the workers and the database, and a real mail server is
    elsewhere. `aiosmtpd`: the library's server, for comparison."""
    import asyncio
    import threading

    counts: Counter = Counter()
    lock = threading.Lock()

    def received(content: bytes) -> None:
        head = content.split(b"\r\n\r\n", 1)[0]
        found = HEADER.search(head)
        with lock:
            counts[int(found.group(1)) if found else 0] += 1

    if kind == "aiosmtpd":
        from aiosmtpd.controller import Controller

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                received(envelope.original_content or b"")
                return "250 OK"

        controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        controller.start()
        stop = controller.stop
    else:

        class Lean(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport, self.buffer, self.in_data = transport, bytearray(), False
                transport.write(b"220 sink ESMTP\r\n")

            def data_received(self, chunk):
                self.buffer += chunk
                while self.buffer:
                    if self.in_data:
                        if self.buffer.startswith(b".\r\n"):
                            end, size = 0, 3
                        else:
                            end = self.buffer.find(b"\r\n.\r\n")
                            if end < 0:
                                return
                            end, size = end + 2, 3
                        received(bytes(self.buffer[:end]))
                        del self.buffer[: end + size]
                        self.in_data = False
                        self.transport.write(b"250 OK\r\n")
                        continue
                    line_end = self.buffer.find(b"\r\n")
                    if line_end < 0:
                        return
                    verb = bytes(self.buffer[:4]).upper()
                    del self.buffer[: line_end + 2]
                    if verb == b"EHLO":
                        self.transport.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        self.in_data = True
                        self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    elif verb == b"QUIT":
                        self.transport.write(b"221 Bye\r\n")
                        self.transport.close()
                        return
                    elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        self.transport.write(b"250 OK\r\n")
                    else:
                        self.transport.write(b"500 Unknown command\r\n")

        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(loop.create_server(Lean, "127.0.0.1", port))
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()

        def stop():
            loop.call_soon_threadsafe(server.close)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("sink ready", flush=True)
    done.wait()
    stop()
    with lock:
        Path(out).write_text(json.dumps(counts))


def database_cpu_seconds() -> float | None:
    """CPU time used so far by the PostgreSQL server's processes, when it runs on this
    machine (None otherwise): the third user of the two cores."""
    total, found = 0.0, False
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += cpu_seconds(int(entry.name))
                    found = True
            except (OSError, ValueError, IndexError):
                continue
    return total if found else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- setup ----------------------------------------------------------------------------------


def build(n_leads: int) -> tuple[int, int]:
    """Empty the tables, then n opted-in leads, a template and a one-e-mail sequence."""
    from django.db import connection

    from leadcrm.actors import Actor
    from leads.models import ConsentStatus, Lead
    from nurturing import services

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE nurturing_steprun, nurturing_message, nurturing_enrollment, nurturing_sequenceversion,"
            " nurturing_sequence, nurturing_emailtemplate, leadcrm_outboxmessage CASCADE"
        )
        cur.execute("TRUNCATE leads_lead CASCADE")
    actor = Actor.automation()
    template = services.email_template_create(
        actor=actor,
        name="Bench",
        subject="Hello {{ lead.first_name|default:'there' }}",
        text="Hi {{ lead.first_name|default:'there' }}, read https://example.org/guide",
        html='<p>Hi {{ lead.first_name|default:"there" }}</p><a href="https://example.org/guide">Guide</a>',
    )
    for start in range(0, n_leads, 20_000):
        Lead.objects.bulk_create(
            [
                Lead(email=f"d{i}@bench.example", first_name=f"L{i}", consent_status=ConsentStatus.OPT_IN, country="FR")
                for i in range(start, min(n_leads, start + 20_000))
            ],
            batch_size=5_000,
        )
    sequence = services.sequence_create(
        actor=actor, name="Dispatch", steps=[{"type": "email", "template": template.pk}]
    )
    return sequence.pk, template.pk


def enroll_all(sequence_id: int, *, due_seconds_ago: int = 60, limit: int | None = None, future: bool = False) -> int:
    """Every lead enrolled in the sequence (one INSERT ... SELECT), due now (or tomorrow)."""
    from django.db import connection

    from nurturing.models import Sequence

    sequence = Sequence.objects.get(pk=sequence_id)
    when = "now() + interval '1 day'" if future else f"now() - interval '{int(due_seconds_ago)} seconds'"
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO nurturing_enrollment (sequence_id, version_id, lead_id, state, cursor, next_run_at,"
            " steps_run, enrolled_at, exit_reason, enrolled_by, last_error)"
            f" SELECT %s, %s, id, 'active', '[0]'::jsonb, {when}, 0, now(), '', 'bench', '' FROM leads_lead"
            + (" ORDER BY id LIMIT %s" if limit else ""),
            [sequence.pk, sequence.current_version_id, *([limit] if limit else [])],
        )
        return cur.rowcount


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_workers(n: int, smtp_port: int, workdir: str) -> list[tuple[subprocess.Popen, str]]:
    env = {
        **os.environ,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "LEADCRM_OUTBOX_CONFIRM_SECONDS": "900",
        "CONN_MAX_AGE": "600",
    }
    out = []
    for i in range(n):
        log = os.path.join(workdir, f"worker{i}.log")
        cmd = [sys.executable, "-m", "celery", "-A", "leadcrm", "worker", "--pool", "solo", "-l", "warning",
               "-n", f"bench{i}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
        with open(log, "ab") as fh:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        out.append((proc, log))
    return out


def peak_memory_mb(pid: int) -> float:
    """VmHWM (the resident set's high-water mark) of a process and its children."""
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


# --- the two measures -----------------------------------------------------------------------


def dispatch(n_leads: int, n_workers: int, sequence_id: int, sink_kind: str = "lean") -> None:
    import redis
    from django.conf import settings

    from nurturing import tasks
    from nurturing.models import Enrollment, EnrollmentState, Message, MessageStatus

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    enrolled = enroll_all(sequence_id)
    workdir = tempfile.mkdtemp(prefix="bench-dispatch-")
    port, result = free_port(), os.path.join(workdir, "sink.json")
    sink_proc = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port), result, sink_kind],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert sink_proc.stdout.readline().strip() == b"sink ready"
    workers = start_workers(n_workers, port, workdir)
    time.sleep(6)  # the workers connect to the broker (a message sent earlier would wait anyway)
    print(
        f"dispatch: {enrolled:,} enrollments due, {n_workers} workers (solo pool),"
        f" SMTP sink ({sink_kind}) on 127.0.0.1:{port}"
    )
    cpu_before = {proc.pid: cpu_seconds(proc.pid) for proc in [sink_proc, *(p for p, _ in workers)]}
    database_before = database_cpu_seconds()
    started = time.perf_counter()
    tasks.sequences_tick.apply_async(kwargs={"fanout": n_workers})
    engine_done = None
    deadline = started + max(600, n_leads / 50)
    sent = 0
    while time.perf_counter() < deadline:
        time.sleep(0.5)
        if engine_done is None and not Enrollment.objects.filter(state=EnrollmentState.ACTIVE).exists():
            engine_done = time.perf_counter() - started
        sent = Message.objects.filter(status=MessageStatus.SENT).count()
        if sent >= enrolled:
            break
        if any(proc.poll() is not None for proc, _ in workers):
            print("a worker died; see", workdir)
            break
    elapsed = time.perf_counter() - started
    memory = [peak_memory_mb(proc.pid) for proc, _ in workers]
    cpu = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
    database_after = database_cpu_seconds()
    for proc, _ in workers:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc, _ in workers:
        proc.wait(timeout=60)
    time.sleep(0.5)
    sink_proc.send_signal(signal.SIGTERM)
    sink_proc.wait(timeout=30)
    counts = {int(k): v for k, v in json.loads(Path(result).read_text()).items()}
    delivered = sum(counts.values())
    duplicates = sum(v - 1 for v in counts.values() if v > 1)
    not_sent = Counter(Message.objects.exclude(status=MessageStatus.SENT).values_list("status", flat=True))
    retried = Message.objects.filter(attempts__gt=1).count()
    print(
        f"  sent {sent:,} of {enrolled:,} in {elapsed:.1f} s: {sent / elapsed:,.0f} messages/s end to end"
        f" (engine: every enrollment walked and its e-mail queued after {engine_done or float('nan'):.1f} s,"
        f" {enrolled / (engine_done or elapsed):,.0f} enrollments/s)"
    )
    print(f"  at the sink: {delivered:,} deliveries, {len(counts):,} distinct messages, duplicates: {duplicates}")
    print(
        f"  not sent: {sum(not_sent.values())}{f' {dict(not_sent)}' if not_sent else ''};"
        f" sent after more than one attempt: {retried};"
        f" workers' peak memory (VmHWM): {', '.join(f'{m:.0f} MB' for m in memory)}"
    )
    per = max(sent, 1) / 1000
    workers_cpu = sum(cpu[proc.pid] for proc, _ in workers)
    print(
        f"  CPU per message: workers {workers_cpu / per:.2f} ms (all {n_workers} together),"
        f" sink {cpu[sink_proc.pid] / per:.2f} ms"
        + (
            f", PostgreSQL {(database_after - database_before) / per:.2f} ms"
            if database_before is not None and database_after is not None
            else ""
        )
    )


def tick(n_enrollments: int, n_due: int, template_id: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from leadcrm.actors import Actor
    from leads.models import Lead
    from nurturing import services
    from nurturing.models import Enrollment, EnrollmentState

    n_leads = Lead.objects.count()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE nurturing_steprun, nurturing_message, nurturing_enrollment, leadcrm_outboxmessage")
    per = max(1, -(-n_enrollments // n_leads))
    t = time.perf_counter()
    total = 0
    actor = Actor.automation()
    for i in range(per):
        seq = services.sequence_create(
            actor=actor, name=f"Tick {i} {time.time()}", steps=[{"type": "email", "template": template_id}]
        )
        total += enroll_all(seq.pk, future=True, limit=min(n_leads, n_enrollments - total))
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE nurturing_enrollment SET next_run_at = now() - interval '1 minute'"
            " WHERE id IN (SELECT id FROM nurturing_enrollment ORDER BY random() LIMIT %s)",
            [n_due],
        )
        cur.execute("ANALYZE nurturing_enrollment")
    print(f"tick: {total:,} active enrollments ({per} sequences x up to {n_leads:,} leads), {n_due:,} due;"
          f" built in {time.perf_counter() - t:.0f} s")  # fmt: skip
    now = timezone.now()
    timings = []
    for _ in range(5):
        with transaction.atomic():
            t = time.perf_counter()
            rows = list(
                Enrollment.objects.select_for_update(skip_locked=True)
                .filter(state=EnrollmentState.ACTIVE, next_run_at__lte=now)
                .order_by("next_run_at")[:500]
            )
            timings.append((time.perf_counter() - t) * 1000)
            transaction.set_rollback(True)
    print(f"  claim of one batch of {len(rows)} among {total:,}: median {sorted(timings)[2]:.1f} ms")
    t = time.perf_counter()
    ran = services.sequences_tick(now=now)
    took = time.perf_counter() - t
    print(f"  the tick that runs the due ones: {ran:,} enrollments walked, e-mails queued, in {took:.2f} s"
          f" ({ran / took:,.0f}/s, one process)")  # fmt: skip
    t = time.perf_counter()
    idle = services.sequences_tick(now=now)
    print(f"  a tick with nothing due among {total:,}: {(time.perf_counter() - t) * 1000:.1f} ms ({idle} ran)")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--sink":
        sink(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--skip-send", action="store_true")
    parser.add_argument("--sink", choices=("lean", "aiosmtpd"), default="lean", help="the SMTP sink's server")
    parser.add_argument("--skip-tick", action="store_true")
    args = parser.parse_args()
    from bench.common import django_ready

    django_ready()
    t = time.perf_counter()
    sequence_id, template_id = build(args.leads)
    print(f"setup: {args.leads:,} opted-in leads in {time.perf_counter() - t:.0f} s")
    if not args.skip_send:
        dispatch(args.leads, args.workers, sequence_id, args.sink)
    if not args.skip_tick:
        tick(args.enrollments, args.due, template_id)


if __name__ == "__main__":
    main()

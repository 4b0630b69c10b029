"""Every write on scoring: rule sets and their rules (validated), activation, rescoring
(one lead's events or every lead, streamed), backtests and the predictive model.

Scores land on the leads through `leads.services.lead_scores_set`, which owns the lead's
audit trail (ScoreChange), the `lead.score_changed` event and the promotion to MQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from leadcrm import audit, events, jobs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.userregex import compile_user_regex
from leads import services as lead_services
from leads.models import CLOSED_STAGES, Lead, Stage, TouchpointType
from leads.services import WRITABLE_FIELDS, ScoreUpdate
from scoring import engine, predictive, selectors
from scoring.models import DEFAULT_GROUP, EngagementRule, FitRule, LeadScore, Operator, PredictiveModel, RuleSet

# Lead fields a fit rule may test (besides `properties.<key>`).
FIT_FIELDS = ("email", *WRITABLE_FIELDS, "consent_status")
EVENT_TYPES = tuple(TouchpointType.values)
CHUNK = 20_000
RULESET_FIELDS = ("name", "description", "mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min")
FIT_RULE_FIELDS = ("name", "field", "operator", "value", "points")
ENGAGEMENT_RULE_FIELDS = (
    "name",
    "event_type",
    "url_pattern",
    "property_key",
    "property_value",
    "points",
    "cap",
    "cap_period_days",
    "half_life_days",
)


# --- validation ---------------------------------------------------------------------------


def _int_in(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _text_errors(data: dict, limits: dict[str, int | None], *, nullable: tuple[str, ...] = ()) -> dict:
    """Text fields given with another type or over their column's length: a 400, not a
    database error."""
    errors: dict[str, list[str]] = {}
    for name, limit in limits.items():
        if name not in data or (data[name] is None and name in nullable):
            continue
        if not isinstance(data[name], str):
            errors[name] = ["A string."]
        elif limit is not None and len(data[name]) > limit:
            errors[name] = [f"At most {limit} characters."]
    return errors


def validate_fit_rule(data: dict) -> dict[str, list[str]]:
    """Field errors of one fit rule (empty when valid)."""
    errors: dict[str, list[str]] = _text_errors(data, {"name": 200, "field": 150})
    name = data.get("field") or ""
    if "field" in errors:
        pass
    elif not name:
        errors["field"] = ["This field is required."]
    elif name.startswith("properties."):
        if not name[len("properties.") :].strip():
            errors["field"] = ["Name the custom field: properties.<key>."]
    elif name not in FIT_FIELDS:
        errors["field"] = [f"Unknown field {name!r}. Use one of {', '.join(FIT_FIELDS)} or properties.<key>."]
    op, value = data.get("operator"), data.get("value")
    if op not in Operator.values:
        errors["operator"] = [f"Unknown operator {op!r}. Use one of {', '.join(Operator.values)}."]
    elif op == Operator.IN and not (isinstance(value, list) and value):
        errors["value"] = ["`in` needs a non-empty list of values."]
    elif op in (Operator.EQUALS, Operator.CONTAINS) and (value in (None, "") or isinstance(value, (list, dict))):
        errors["value"] = [f"`{op}` needs one value (a string, number or boolean)."]
    elif op == Operator.RANGE:
        if not isinstance(value, dict) or not ({"min", "max"} & set(value)) or set(value) - {"min", "max"}:
            errors["value"] = ['`range` needs {"min": number, "max": number} (either may be left out).']
        elif any(v is not None and engine._number(v) is None for v in value.values()):
            errors["value"] = ["`range` bounds must be numbers."]
        elif (
            value.get("min") is not None
            and value.get("max") is not None
            and engine._number(value["min"]) > engine._number(value["max"])
        ):
            errors["value"] = ["`range` min is above max."]
    if not _int_in(data.get("points"), -100, 100):
        errors["points"] = ["Points must be an integer between -100 and 100."]
    return errors


def validate_engagement_rule(data: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = _text_errors(
        data, {"name": 200, "url_pattern": 500, "property_key": 100}, nullable=("url_pattern", "property_key")
    )
    if data.get("event_type") not in EVENT_TYPES:
        errors["event_type"] = [f"Unknown event type {data.get('event_type')!r}. Use one of {', '.join(EVENT_TYPES)}."]
    pattern = data.get("url_pattern") or ""
    if pattern and "url_pattern" not in errors:
        try:
            compile_user_regex(pattern)
        except (ValueError, TypeError) as exc:
            errors["url_pattern"] = [f"Not a valid regular expression: {exc}."]
    if data.get("property_value") not in (None, "") and not data.get("property_key"):
        errors["property_key"] = ["A property condition needs the property's key."]
    if not _int_in(data.get("points"), -100, 100):
        errors["points"] = ["Points must be an integer between -100 and 100."]
    if data.get("cap") is not None and not _int_in(data.get("cap"), 1, 1000):
        errors["cap"] = ["The cap must be an integer between 1 and 1000 points."]
    if data.get("cap_period_days") is not None:
        if not _int_in(data.get("cap_period_days"), 1, 3650):
            errors["cap_period_days"] = ["The period must be between 1 and 3650 days."]
        elif data.get("cap") is None:
            errors["cap_period_days"] = ["A period needs a cap."]
    hl = data.get("half_life_days")
    if hl is not None and (isinstance(hl, bool) or not isinstance(hl, (int, float)) or not 0 < hl <= 3650):
        errors["half_life_days"] = ["The half-life must be a number of days between 0 and 3650."]
    return errors


def validate_ruleset(data: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = _text_errors(data, {"name": 200, "description": None})
    for name in ("mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min"):
        if name in data and not _int_in(data[name], 0, 100):
            errors[name] = ["An integer between 0 and 100."]
    if not errors and {"grade_a_min", "grade_b_min", "grade_c_min"} & set(data):
        a, b, c = (data.get(k, d) for k, d in (("grade_a_min", 75), ("grade_b_min", 50), ("grade_c_min", 25)))
        if not a >= b >= c:
            errors["grade_a_min"] = ["Grade bands must be ordered: A ≥ B ≥ C."]
    group = data.get("group", DEFAULT_GROUP)
    if not isinstance(group, str) or not re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", group):
        errors["group"] = ["A short slug (letters, digits, - and _)."]
    for kind, check in (("fit_rules", validate_fit_rule), ("engagement_rules", validate_engagement_rule)):
        rules = data.get(kind) or []
        if not isinstance(rules, list):
            errors[kind] = ["A list of rules."]
            continue
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                errors[f"{kind}[{i}]"] = ["A rule object."]
                continue
            for name, messages in check(rule).items():
                errors[f"{kind}[{i}].{name}"] = messages
    return errors


def _pick(data: dict, names: tuple[str, ...]) -> dict:
    return {k: data[k] for k in names if k in data}


def _engagement_defaults(data: dict) -> dict:
    out = _pick(data, ENGAGEMENT_RULE_FIELDS)
    out.setdefault("url_pattern", "")
    out.setdefault("property_key", "")
    out["url_pattern"] = out["url_pattern"] or ""
    out["property_key"] = out["property_key"] or ""
    return out


# --- rule sets ----------------------------------------------------------------------------


def ruleset_create(*, data: dict, actor: Actor) -> RuleSet:
    """A new (inactive) version in its score group, with its rules. Bad rules → 400."""
    return _ruleset_create(data, actor, "scoring.ruleset.create", {})


def _ruleset_create(data: dict, actor: Actor, action: str, details: dict) -> RuleSet:
    errors = validate_ruleset(data)
    if errors:
        raise ServiceError(errors)
    group = data.get("group") or DEFAULT_GROUP
    for attempt in range(3):
        try:
            return _ruleset_insert(group, data, actor, action, details)
        except IntegrityError:
            if attempt == 2:
                raise  # the unique (group, version) keeps numbering right; retry takes the next one
    raise AssertionError("unreachable")


def _ruleset_insert(group: str, data: dict, actor: Actor, action: str, details: dict) -> RuleSet:
    with transaction.atomic():
        # Serialise version numbering within a group (a first version races on the unique key).
        list(RuleSet.objects.select_for_update().filter(group=group).values_list("pk"))
        version = (RuleSet.objects.filter(group=group).aggregate(v=Max("version"))["v"] or 0) + 1
        ruleset = RuleSet.objects.create(
            group=group, version=version, created_by=actor.user, **_pick(data, RULESET_FIELDS)
        )
        FitRule.objects.bulk_create(
            [FitRule(ruleset=ruleset, **_pick(r, FIT_RULE_FIELDS)) for r in data.get("fit_rules") or []]
        )
        EngagementRule.objects.bulk_create(
            [EngagementRule(ruleset=ruleset, **_engagement_defaults(r)) for r in data.get("engagement_rules") or []]
        )
        audit.record(
            actor=actor,
            action=action,
            target=ruleset,
            changes={k: [None, v] for k, v in audit.snapshot(ruleset, ("group", "version", *RULESET_FIELDS)).items()},
            details={
                **details,
                "fit_rules": data.get("fit_rules") or [],
                "engagement_rules": data.get("engagement_rules") or [],
            },
        )
    return ruleset


def ruleset_copy(*, ruleset_id: int, actor: Actor, name: str = "") -> RuleSet:
    """A new draft version with the same thresholds and rules, to edit before activating."""
    src = selectors.rulesets().get(pk=ruleset_id)
    data = {
        "group": src.group,
        **{k: getattr(src, k) for k in RULESET_FIELDS},
        "fit_rules": [{k: getattr(r, k) for k in FIT_RULE_FIELDS} for r in src.fit_rules.all()],
        "engagement_rules": [{k: getattr(r, k) for k in ENGAGEMENT_RULE_FIELDS} for r in src.engagement_rules.all()],
    }
    # The default name must fit the column even when the source's name is already full.
    data["name"] = name or (f"Copy of v{src.version}" + (f" ({src.name})" if src.name else ""))[:200]
    return _ruleset_create(data, actor, "scoring.ruleset.copy", {"copied_from": {"id": src.pk, "version": src.version}})


def _rescore_if_active(ruleset: RuleSet, actor: Actor, reason: str) -> None:
    """The active set changed: its group's scores for every lead, as the resumable rescore
    job (written in this transaction, so kept while the broker is down)."""
    if ruleset.is_active:
        rescore_start(actor=actor, group=ruleset.group, reason=reason)


def ruleset_update(*, ruleset_id: int, data: dict, actor: Actor) -> RuleSet:
    """Thresholds, grade bands, name. Editing the active set rescores everyone."""
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        merged = {k: getattr(ruleset, k) for k in ("grade_a_min", "grade_b_min", "grade_c_min")}
        merged.update(_pick(data, RULESET_FIELDS))
        errors = validate_ruleset({**merged, "group": ruleset.group})
        if errors:
            raise ServiceError(errors)
        before = audit.snapshot(ruleset, RULESET_FIELDS)
        for k, v in _pick(data, RULESET_FIELDS).items():
            setattr(ruleset, k, v)
        ruleset.save()
        audit.record(
            actor=actor,
            action="scoring.ruleset.update",
            target=ruleset,
            changes=audit.diff(before, ruleset),
            skip_empty=True,
        )
        _rescore_if_active(ruleset, actor, "scoring.ruleset.update")
    return ruleset


def ruleset_activate(*, ruleset_id: int, actor: Actor) -> RuleSet:
    """Make this version the active one of its group (the previous one is kept, inactive)
    and rescore every lead in the background once committed."""
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        previous = list(
            RuleSet.objects.filter(group=ruleset.group, is_active=True)
            .exclude(pk=ruleset.pk)
            .values_list("pk", "version")
        )
        RuleSet.objects.filter(pk__in=[pk for pk, _ in previous]).update(is_active=False)
        was_active = ruleset.is_active
        ruleset.is_active, ruleset.activated_at = True, timezone.now()
        ruleset.save(update_fields=["is_active", "activated_at"])
        audit.record(
            actor=actor,
            action="scoring.ruleset.activate",
            target=ruleset,
            changes={"is_active": [was_active, True]} if not was_active else {},
            details={"deactivated": [{"id": pk, "version": v} for pk, v in previous]},
        )
        _rescore_if_active(ruleset, actor, "scoring.ruleset.activate")
    return ruleset


def rule_create(*, ruleset_id: int, kind: str, data: dict, actor: Actor) -> FitRule | EngagementRule:
    """Add a fit or engagement rule (`kind`: "fit" / "engagement") to a rule set."""
    model, check, pick = _rule_kind(kind)
    errors = check(data)
    if errors:
        raise ServiceError(errors)
    with transaction.atomic():
        ruleset = RuleSet.objects.select_for_update().get(pk=ruleset_id)
        rule = model.objects.create(ruleset=ruleset, **pick(data))
        audit.record(
            actor=actor,
            action="scoring.rule.create",
            target=rule,
            changes={k: [None, v] for k, v in audit.snapshot(rule, _rule_fields(model)).items()},
            details={"kind": kind, "ruleset": ruleset.pk},
        )
        _rescore_if_active(ruleset, actor, "scoring.rule.create")
    return rule


def rule_update(*, kind: str, rule_id: int, data: dict, actor: Actor) -> FitRule | EngagementRule:
    model, check, pick = _rule_kind(kind)
    with transaction.atomic():
        rule = model.objects.select_for_update().select_related("ruleset").get(pk=rule_id)
        names = _rule_fields(model)
        before = audit.snapshot(rule, names)
        merged = {**{k: getattr(rule, k) for k in names}, **_pick(data, names)}
        errors = check(merged)
        if errors:
            raise ServiceError(errors)
        for k, v in pick(merged).items():
            setattr(rule, k, v)
        rule.save()
        audit.record(
            actor=actor,
            action="scoring.rule.update",
            target=rule,
            changes=audit.diff(before, rule),
            details={"kind": kind, "ruleset": rule.ruleset_id},
            skip_empty=True,
        )
        _rescore_if_active(rule.ruleset, actor, "scoring.rule.update")
    return rule


def rule_delete(*, kind: str, rule_id: int, actor: Actor) -> None:
    model, _, _ = _rule_kind(kind)
    with transaction.atomic():
        rule = model.objects.select_related("ruleset").get(pk=rule_id)
        audit.record(
            actor=actor,
            action="scoring.rule.delete",
            target=rule,
            changes={k: [v, None] for k, v in audit.snapshot(rule, _rule_fields(model)).items()},
            details={"kind": kind, "ruleset": rule.ruleset_id},
        )
        rule.delete()
        _rescore_if_active(rule.ruleset, actor, "scoring.rule.delete")


def _rule_fields(model: type) -> tuple[str, ...]:
    return FIT_RULE_FIELDS if model is FitRule else ENGAGEMENT_RULE_FIELDS


def _rule_kind(kind: str) -> tuple[type, Callable, Callable]:
    if kind == "fit":
        return FitRule, validate_fit_rule, lambda d: _pick(d, FIT_RULE_FIELDS)
    if kind == "engagement":
        return EngagementRule, validate_engagement_rule, _engagement_defaults
    raise ServiceError({"kind": ["`fit` or `engagement`."]})


# --- streaming leads with their events ----------------------------------------------------

LEAD_COLS = ("id", "stage", "score", "fit_score", "engagement_score", "grade", "conversion_probability")


@dataclass(frozen=True)
class _Needs:
    fields: tuple[str, ...]
    properties: bool
    property_keys: tuple[str, ...] | None  # only these keys (None: the whole object)
    event_types: tuple[str, ...] | None  # None: every type
    url: bool
    event_properties: bool


def _needs_for(rules: list[engine.RuleSet], *, model: bool) -> _Needs:
    fit = [r for rs in rules for r in rs.fit_rules]
    eng = [r for rs in rules for r in rs.engagement_rules]
    fields = {r.field for r in fit if not r.field.startswith("properties.")}
    if model:
        fields |= set(predictive.CATEGORICAL_FIELDS) | {"company_size"}
    return _Needs(
        fields=tuple(sorted(fields)),
        properties=model or any(r.field.startswith("properties.") for r in fit),
        property_keys=None
        if model
        else tuple(sorted({r.field.removeprefix("properties.") for r in fit if r.field.startswith("properties.")})),
        event_types=None if model else tuple(sorted({r.event_type for r in eng})),
        url=any(r.url_pattern for r in eng),
        event_properties=model or any(r.property_key for r in eng),
    )


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"date_part('epoch', {column})"  # a float8 directly (EXTRACT goes through numeric)
    return f"CAST(strftime('%%s', {column}) AS REAL)"


def _sql_text(value: str) -> str:
    """A string literal's body: quotes doubled, and % doubled for the driver's parameters."""
    return value.replace("'", "''").replace("%", "%%")


class _JsonValues:
    """Decodes one custom field's JSON text per lead, remembering the scalars (a million
    leads share a few plans or sizes); lists and objects are decoded each time (mutable).
    Bounded, so memory stays flat."""

    def __init__(self):
        self.memo: dict[str, object] = {}

    def __call__(self, raw):
        if not isinstance(raw, str):
            return raw
        try:
            return self.memo[raw]
        except KeyError:
            value = json.loads(raw)
        if not isinstance(value, (list, dict)):
            if len(self.memo) >= engine.MEMO_SIZE:
                self.memo.clear()
            self.memo[raw] = value
        return value


def _json(value):
    return json.loads(value) if isinstance(value, str) else (value or {})


def _stream(
    needs: _Needs,
    *,
    where: str = "",
    params: tuple = (),
    lead_ids: list[int] | None = None,
    extra_cols: tuple[str, ...] = (),
    chunk_size: int = CHUNK,
) -> Iterator[list[tuple[tuple, engine.LeadFacts, list[tuple]]]]:
    """Leads in id order, `chunk_size` at a time, each with its events: two queries per
    chunk whatever its size, memory bounded by the chunk (a server never holds all leads).
    Yields [(lead row (LEAD_COLS + extra_cols), LeadFacts, events)]. An event is a tuple
    (type, occurred_at epoch, url, properties, lead_id)."""
    q = connection.ops.quote_name
    lead_cols = LEAD_COLS + extra_cols
    cols = [q(c) if c != "closed_at" else _epoch(q(c)) for c in lead_cols]
    cols += [q(f) for f in needs.fields]
    # On PostgreSQL, only the custom fields the rules read (decoding whole objects costs).
    keys = needs.property_keys if needs.properties and connection.vendor == "postgresql" else None
    if keys is not None:
        cols += [f"({q('properties')} -> '{_sql_text(k)}')::text" for k in keys]
    elif needs.properties:
        cols.append(q("properties"))
    n_fixed, n_fields = len(lead_cols), len(needs.fields)
    ev_cols = ", ".join(
        [
            q("type"),
            _epoch(q("occurred_at")),
            q("url") if needs.url else "''",
            q("properties") if needs.event_properties else "NULL",
            q("lead_id"),
        ]
    )
    type_filter, type_params = "", ()
    if needs.event_types is not None:
        if not needs.event_types:
            type_filter = " AND 1 = 0"
        else:
            type_filter = f" AND {q('type')} IN ({', '.join(['%s'] * len(needs.event_types))})"
            type_params = needs.event_types
    pending = sorted(set(lead_ids)) if lead_ids is not None else None
    loads = _JsonValues()
    last = 0
    with connection.cursor() as cur:
        while True:
            if pending is not None:
                batch, pending = pending[:chunk_size], pending[chunk_size:]
                if not batch:
                    return
                cond, cond_params = f"id IN ({', '.join(['%s'] * len(batch))})", tuple(batch)
            else:
                cond, cond_params = "id > %s", (last,)
            sql = f"SELECT {', '.join(cols)} FROM leads_lead WHERE {cond}"
            if where:
                sql += f" AND ({where})"
            sql += " ORDER BY id"
            if pending is None:
                sql += f" LIMIT {int(chunk_size)}"
            cur.execute(sql, cond_params + tuple(params))
            rows = cur.fetchall()
            if not rows:
                return
            first_id, last = rows[0][0], rows[-1][0]
            by_lead: dict[int, list[tuple]] = {}
            if needs.event_types is None or needs.event_types:
                if pending is None and not where:
                    ev_cond, ev_params = "lead_id >= %s AND lead_id <= %s", (first_id, last)
                else:
                    ids = [r[0] for r in rows]
                    ev_cond, ev_params = f"lead_id IN ({', '.join(['%s'] * len(ids))})", tuple(ids)
                cur.execute(
                    f"SELECT {ev_cols} FROM leads_touchpoint WHERE {ev_cond}{type_filter}", ev_params + type_params
                )
                for ev in cur.fetchall():
                    if needs.event_properties and isinstance(ev[3], str):
                        ev = (ev[0], ev[1], ev[2], _json(ev[3]), ev[4])
                    lst = by_lead.get(ev[4])
                    if lst is None:
                        by_lead[ev[4]] = [ev]
                    else:
                        lst.append(ev)
            out = []
            for row in rows:
                facts = engine.LeadFacts(
                    id=row[0],
                    fields=dict(zip(needs.fields, row[n_fixed : n_fixed + n_fields], strict=True)),
                    properties=(
                        {k: loads(v) for k, v in zip(keys, row[n_fixed + n_fields :], strict=True) if v is not None}
                        if keys is not None
                        else _json(row[-1])
                        if needs.properties
                        else {}
                    ),
                )
                out.append((row, facts, by_lead.get(row[0], [])))
            yield out
            if pending is None and len(rows) < chunk_size:
                return


# --- rescoring ----------------------------------------------------------------------------


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


def _model_or_none():
    record = selectors.predictive_model_active()
    return predictive.loads(record.blob) if record is not None else None


def _rescore(
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


def _prepared(ruleset: RuleSet, plan: dict, *, with_model: bool) -> tuple:
    """(spec, compiled rules, predictive model or None, what to read) of this rule set,
    computed once per `plan`."""
    key = ("ruleset", ruleset.pk)
    if key not in plan:
        spec = selectors.ruleset_spec(ruleset)
        model = _model_or_none() if with_model else None
        plan[key] = (spec, engine.compile_ruleset(spec), model, _needs_for([spec], model=model is not None))
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
    spec, compiled, _, needs = _prepared(ruleset, plan, with_model=False)
    now_ts = (now or timezone.now()).timestamp()
    for chunk in _stream(needs, where=where, params=params, lead_ids=lead_ids, chunk_size=chunk_size):
        ids = [row[0] for row, _, _ in chunk]
        current = {
            r[0]: r[1:]
            for r in LeadScore.objects.filter(group=ruleset.group, lead_id__in=ids).values_list(
                "lead_id", "score", "fit_score", "engagement_score", "grade", "ruleset_id"
            )
        }
        changed = []
        for row, facts, evs in chunk:
            s = engine.score_lead(compiled, facts, evs, now_ts)
            if current.get(row[0]) == (s.total, s.fit, s.engagement, s.grade, ruleset.pk):
                continue
            changed.append(
                LeadScore(
                    lead_id=row[0],
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
    spec, compiled, model, needs = _prepared(ruleset, plan, with_model=True)
    now_ts = (now or timezone.now()).timestamp()
    actor = Actor.automation()
    background = lead_ids is None and connection.vendor == "postgresql" and not connection.in_atomic_block
    writer = _Writer(stats, background=background)
    chunks = _stream(needs, where=where, params=params, lead_ids=lead_ids, chunk_size=chunk_size)
    for chunk in _prefetched(chunks) if background else chunks:
        probabilities: list[float | None] = [None] * len(chunk)
        if model is not None:
            open_at = [i for i, (row, _, _) in enumerate(chunk) if row[1] not in CLOSED_STAGES]
            preds = predictive.predict(model, [predictive.features(chunk[i][1], chunk[i][2], now_ts) for i in open_at])
            for i, p in zip(open_at, preds, strict=True):
                probabilities[i] = p
        updates = []
        for (row, facts, evs), probability in zip(chunk, probabilities, strict=True):
            s = engine.score_lead(compiled, facts, evs, now_ts)
            if model is not None and row[1] in CLOSED_STAGES:
                probability = row[6]  # closed: the outcome is known, keep the last estimate
            same = (s.total, s.fit, s.engagement, s.grade) == row[2:6]
            if same and (model is None or probability == row[6]):
                continue
            updates.append(
                ScoreUpdate(
                    lead_id=row[0],
                    score=s.total,
                    fit_score=s.fit,
                    engagement_score=s.engagement,
                    grade=s.grade,
                    reasons=engine.reasons_json(compiled, s),
                    conversion_probability=probability,
                    expected=row[1:7],
                )
            )
        writer.submit(
            lambda updates=updates: lead_services.lead_scores_set(
                updates=updates, actor=actor, mql_threshold=spec.mql_threshold, with_probability=model is not None
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
        stats = _rescore(lead_ids=ids, now=now)
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
    with _gc_paused():
        return _rescore(lead_ids=None, where=where, now=now, chunk_size=chunk_size, progress=progress, group=group)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
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


# --- the full rescore as a resumable job --------------------------------------------------

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
    if chunk_size is not None and not _int_in(chunk_size, 1, 100_000):
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
    from leadcrm.models import Job

    night = timezone.localdate(now or timezone.now()).isoformat()
    if Job.objects.filter(kind=RESCORE_KIND, params__night=night).exists():
        return None
    return rescore_start(actor=Actor.automation(), engaged_only=True, reason="nightly decay", night=night)


def rescore_job_chunks(ctx) -> None:
    """The job's chunk loop: the next JOB_CHUNK leads by id after the cursor, scored with the
    active rule sets (`_rescore`, as for a few leads) and written in one transaction with the
    cursor's advance and the counts: a chunk counts and writes once, a resumed run starts
    after the last committed one. Rescoring is idempotent anyway (an unchanged lead gets no
    write and no ScoreChange)."""
    params = ctx.params
    now = dt.datetime.fromisoformat(params["now"]) if params.get("now") else None
    size = int(params.get("chunk") or JOB_CHUNK)
    after = int(ctx.cursor.get("after", 0))
    leads = Lead.objects.order_by("pk")
    if params.get("engaged_only"):
        leads = leads.filter(engagement_score__gt=0)
    plan: dict = {}  # the active sets compiled once for this run (a change meanwhile asks for one more run)
    with _gc_paused():
        while True:
            with transaction.atomic():
                ids = list(leads.filter(pk__gt=after).values_list("pk", flat=True)[:size])
                if not ids:
                    return
                stats = _rescore(lead_ids=ids, now=now, chunk_size=size, group=params.get("group"), plan=plan)
                ctx.commit_chunk(
                    cursor={"after": ids[-1]},
                    counts={"leads": len(ids), "changed": stats.changed, "promoted": stats.promoted},
                )
            after = ids[-1]


# --- backtest -----------------------------------------------------------------------------


def ruleset_backtest(*, ruleset_id: int, chunk_size: int = CHUNK) -> dict:
    """Score the closed history with this version (each lead as of when it closed, with the
    events it had then) and compare with the outcomes: won (WO) vs lost / disqualified.
    Reads only; the leads keep their scores."""
    ruleset = selectors.rulesets().get(pk=ruleset_id)
    spec = selectors.ruleset_spec(ruleset)
    compiled = engine.compile_ruleset(spec)
    needs = _needs_for([spec], model=False)
    closed = tuple(CLOSED_STAGES)
    where = f"stage IN ({', '.join(['%s'] * len(closed))})"
    scores, labels = [], []
    for chunk in _stream(needs, where=where, params=closed, extra_cols=("closed_at",), chunk_size=chunk_size):
        for row, facts, evs in chunk:
            at = row[len(LEAD_COLS)] or time.time()
            scores.append(engine.score_lead(compiled, facts, evs, at).total)
            labels.append(1 if row[1] == Stage.WO else 0)
    value = engine.auc(scores, labels)
    return {
        "ruleset": ruleset.pk,
        "version": ruleset.version,
        "group": ruleset.group,
        "leads": len(scores),
        "won": sum(labels),
        "auc": None if value is None else round(value, 4),
        "bands": engine.conversion_by_band(scores, labels),
    }


# --- predictive ---------------------------------------------------------------------------


def predictive_train(*, actor: Actor, test_size: float = 0.25, seed: int = 0, fill: bool = True) -> PredictiveModel:
    """Train on the closed history (WO = 1, LOST / DISQUALIFIED = 0), store the model as a
    new version (the only active one) and fill `conversion_probability` of open leads."""
    needs = _needs_for([], model=True)
    closed = tuple(s.value for s in (Stage.WO, Stage.LOST, Stage.DISQUALIFIED))
    where = f"stage IN ({', '.join(['%s'] * len(closed))})"
    rows, labels = [], []
    for chunk in _stream(needs, where=where, params=closed, extra_cols=("closed_at",)):
        for row, facts, evs in chunk:
            at = row[len(LEAD_COLS)] or time.time()
            rows.append(predictive.features(facts, evs, at))
            labels.append(1 if row[1] == Stage.WO else 0)
    try:
        trained = predictive.train(rows, labels, test_size=test_size, seed=seed)
    except ValueError as exc:
        raise ServiceError({"history": [str(exc)]}) from exc
    with transaction.atomic():
        version = (PredictiveModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        PredictiveModel.objects.filter(is_active=True).update(is_active=False)
        record = PredictiveModel.objects.create(
            version=version,
            algorithm=predictive.ALGORITHM,
            is_active=True,
            auc=trained["auc"],
            n_train=trained["n_train"],
            n_test=trained["n_test"],
            positives=trained["positives"],
            calibration=trained["calibration"],
            top_features=trained["top_features"],
            blob=predictive.dumps(trained["model"]),
            trained_by=actor.user,
        )
    if fill:
        leads_predict_open(model=trained["model"])
    return record


def leads_predict_open(*, model=None, chunk_size: int = CHUNK) -> int:
    """Fill `conversion_probability` of every open lead with the active model (streamed)."""
    model = model if model is not None else _model_or_none()
    if model is None:
        return 0
    needs = _needs_for([], model=True)
    open_stages = tuple(s for s in Stage.values if s not in CLOSED_STAGES)
    where = f"stage IN ({', '.join(['%s'] * len(open_stages))})"
    now_ts, written = time.time(), 0
    for chunk in _stream(needs, where=where, params=open_stages, chunk_size=chunk_size):
        preds = predictive.predict(model, [predictive.features(f, evs, now_ts) for _, f, evs in chunk])
        updates = [
            ScoreUpdate(
                lead_id=row[0],
                score=row[2],
                fit_score=row[3],
                engagement_score=row[4],
                grade=row[5],
                conversion_probability=p,
                expected=row[1:7],
            )
            for (row, _, _), p in zip(chunk, preds, strict=True)
            if row[6] is None or abs(row[6] - p) > 1e-4
        ]
        lead_services.lead_scores_set(updates=updates, actor=Actor.automation(), with_probability=True)
        written += len(updates)
    return written

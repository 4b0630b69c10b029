"""The SQL reader of lead facts: leads in id order, a chunk at a time, each with what its
rules read (the standard fields, the custom fields, the events) and its current scores.
Two queries per chunk whatever its size, memory bounded by the chunk: a server never holds
every lead. Raw SQL because a full rescore reads a million leads; the ORM's objects would
cost more than the scoring."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from django.db import connection

from scoring import engine, predictive

CHUNK = 20_000


class LeadState(NamedTuple):
    """A lead's row as read before scoring: what a score write compares with (a lead changed
    meanwhile is compared again under its lock). A tuple: a full rescore reads a million."""

    id: int
    stage: str
    score: int
    fit_score: int
    engagement_score: int
    grade: str
    conversion_probability: float | None
    closed_at: float | None = None  # UNIX seconds; read only when asked (`with_closed_at`)

    @property
    def scores(self) -> tuple[int, int, int, str]:
        """(score, fit, engagement, grade), as the engine's result is compared with."""
        return (self.score, self.fit_score, self.engagement_score, self.grade)

    @property
    def expected(self) -> tuple:
        """What `leads.services.ScoreUpdate.expected` compares and sets on: (stage, score,
        fit, engagement, grade, probability)."""
        return (
            self.stage,
            self.score,
            self.fit_score,
            self.engagement_score,
            self.grade,
            self.conversion_probability,
        )


# The columns of LeadState, in its order.
STATE_COLS = ("id", "stage", "score", "fit_score", "engagement_score", "grade", "conversion_probability")


class LeadRead(NamedTuple):
    """One lead as the reader yields it: its state, its facts for fit rules, its events
    (engine.Event order: type, occurred_at epoch, url, properties; then the lead's id)."""

    state: LeadState
    facts: engine.LeadFacts
    events: list[tuple]


@dataclass(frozen=True)
class Needs:
    """What the rules (and the predictive model) read: only that is selected."""

    fields: tuple[str, ...]
    properties: bool
    property_keys: tuple[str, ...] | None  # only these keys (None: the whole object)
    event_types: tuple[str, ...] | None  # None: every type
    url: bool
    event_properties: bool


def needs_for(rules: list[engine.RuleSet], *, model: bool) -> Needs:
    """What these rule sets (and the predictive features, with `model`) read."""
    fit = [r for rs in rules for r in rs.fit_rules]
    eng = [r for rs in rules for r in rs.engagement_rules]
    fields = {r.field for r in fit if not r.field.startswith("properties.")}
    if model:
        fields |= set(predictive.CATEGORICAL_FIELDS) | {"company_size"}
    return Needs(
        fields=tuple(sorted(fields)),
        properties=model or any(r.field.startswith("properties.") for r in fit),
        property_keys=None
        if model
        else tuple(sorted({r.field.removeprefix("properties.") for r in fit if r.field.startswith("properties.")})),
        event_types=None if model else tuple(sorted({r.event_type for r in eng})),
        url=any(r.url_pattern for r in eng),
        event_properties=model or any(r.property_key for r in eng),
    )


def stage_in(stages) -> tuple[str, tuple[str, ...]]:
    """The (where, params) of the leads in these stages, for `read_leads`."""
    stages = tuple(stages)
    return f"stage IN ({', '.join(['%s'] * len(stages))})", stages


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


def read_leads(
    needs: Needs,
    *,
    where: str = "",
    params: tuple = (),
    lead_ids: list[int] | None = None,
    with_closed_at: bool = False,
    chunk_size: int = CHUNK,
) -> Iterator[list[LeadRead]]:
    """Leads in id order (these `lead_ids`, or every lead matching `where`), `chunk_size`
    at a time, each with its events."""
    q = connection.ops.quote_name
    state_cols = [q(c) for c in STATE_COLS] + ([_epoch(q("closed_at"))] if with_closed_at else [])
    cols = state_cols + [q(f) for f in needs.fields]
    # On PostgreSQL, only the custom fields the rules read (decoding whole objects costs).
    keys = needs.property_keys if needs.properties and connection.vendor == "postgresql" else None
    if keys is not None:
        cols += [f"({q('properties')} -> '{_sql_text(k)}')::text" for k in keys]
    elif needs.properties:
        cols.append(q("properties"))
    n_fixed, n_fields = len(state_cols), len(needs.fields)
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
                out.append(LeadRead(LeadState(*row[:n_fixed]), facts, by_lead.get(row[0], [])))
            yield out
            if pending is None and len(rows) < chunk_size:
                return

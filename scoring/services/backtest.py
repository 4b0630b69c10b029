"""Backtest: how well a rule-set version would have ranked the closed history. Reads only;
the leads keep their scores."""

from __future__ import annotations

import time

from leads.models import CLOSED_STAGES, Stage
from scoring import engine, selectors
from scoring.services.reader import CHUNK, needs_for, read_leads, stage_in


def ruleset_backtest(*, ruleset_id: int, chunk_size: int = CHUNK) -> dict:
    """Score the closed history with this version (each lead as of when it closed, with the
    events it had then) and compare with the outcomes: won (WO) vs lost / disqualified."""
    ruleset = selectors.rulesets().get(pk=ruleset_id)
    spec = selectors.ruleset_spec(ruleset)
    compiled = engine.compile_ruleset(spec)
    where, params = stage_in(CLOSED_STAGES)
    scores, labels = [], []
    chunks = read_leads(
        needs_for([spec], model=False), where=where, params=params, with_closed_at=True, chunk_size=chunk_size
    )
    for chunk in chunks:
        for state, facts, evs in chunk:
            scores.append(engine.score_lead(compiled, facts, evs, state.closed_at or time.time()).total)
            labels.append(1 if state.stage == Stage.WO else 0)
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

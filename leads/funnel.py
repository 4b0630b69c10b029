"""The funnel, computed one way everywhere (the API's funnel metrics, the dashboard's live
panels and its aggregate tables).

A lead "reached" a funnel stage when its history entered it or any later funnel stage: a
skip (MCL→SQL) still passed MQL. So each lead counts up to its furthest funnel stage, its
*rank* in FUNNEL_STAGES (-1 when its history entered none): one grouped pass per query
(furthest rank per lead, then leads per rank), much cheaper on a large base than a distinct
count per stage.
"""

from __future__ import annotations

from collections.abc import Iterable

from leads.models import FUNNEL_STAGES, Stage

# Stages whose leads sales qualified (SQL and beyond, still open or won): attribution credits them.
QUALIFIED_STAGES = (Stage.SQL, Stage.SAL, Stage.CO, Stage.WO)


def rank_sql(column: str) -> str:
    """SQL for the rank in FUNNEL_STAGES of the stage in `column` (-1 off the funnel)."""
    whens = " ".join(f"WHEN '{stage.value}' THEN {i}" for i, stage in enumerate(FUNNEL_STAGES))
    return f"CASE {column} {whens} ELSE -1 END"


def reached(ranks: Iterable[tuple[int, int]]) -> dict[str, int]:
    """Leads that reached each funnel stage from (furthest rank, number of leads) pairs."""
    out = {stage: 0 for stage in FUNNEL_STAGES}
    for top, n in ranks:
        for stage in FUNNEL_STAGES[: int(top) + 1]:
            out[stage] += int(n)
    return out


def reached_by_key(rows: Iterable[tuple[str | None, int, int]]) -> dict[str, dict[str, int]]:
    """`reached` per key (a campaign, a source) from (key, furthest rank, leads) rows."""
    grouped: dict[str, list[tuple[int, int]]] = {}
    for key, top, n in rows:
        grouped.setdefault(key or "", []).append((top, n))
    return {key: reached(ranks) for key, ranks in grouped.items()}


def funnel(counts: dict[str, int], ranks: Iterable[tuple[int, int]]) -> dict:
    """The funnel's figures: leads per current stage (`counts`, every stage), leads that
    reached each funnel stage, and the conversion rate between consecutive funnel stages."""
    reached_ = reached(ranks)
    rates = {
        f"{a}->{b}": round(reached_[b] / reached_[a], 4) if reached_[a] else None
        for a, b in zip(FUNNEL_STAGES, FUNNEL_STAGES[1:], strict=False)
    }
    return {"counts": counts, "reached": reached_, "conversion": rates}

"""Significance of A/B/n splits: plain functions over counts (no database).

A winner is never "the highest rate": the variants must differ significantly (chi-square
over all of them, no continuity correction, so that for two variants it is exactly the
two-proportion z-test), and the best must beat every other one pairwise with a
Bonferroni-corrected z-test. Below `MIN_SAMPLE` recipients per variant no winner is named,
whatever the p-value (a 3/4 vs 0/4 split is noise)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as _scipy

from nurturing import sequence_tree

ALPHA = 0.05  # 95 %
MIN_SAMPLE = 30
METRICS = ("clicked", "replied", "mql", "opened")


@dataclass(frozen=True)
class Arm:
    """One variant: `successes` out of `trials` (clicked recipients out of recipients...)."""

    key: str
    successes: int
    trials: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class Verdict:
    """Whether a winner can be picked on one metric, and why (not)."""

    metric: str
    p_value: float | None  # the chi-square over every variant; None without data
    winner: str | None
    reason: str  # "winner" | "not_significant" | "too_few" | "no_data" | "single_variant"
    pairwise: dict[str, float]  # the best variant against each other: p-values (uncorrected)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA


def rate(successes: int, trials: int) -> float | None:
    return successes / trials if trials else None


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (1.0 when undefined: no
    trials, or every outcome the same on both sides)."""
    if n1 <= 0 or n2 <= 0:
        return 1.0
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if variance <= 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return float(2 * _scipy.norm.sf(abs(z)))


def chi_square_p(arms: list[Arm]) -> float | None:
    """p-value of the chi-square test of independence over the variants' success/failure
    table (no Yates correction); None with fewer than two variants that have trials, 1.0
    when every outcome is the same (no variance to test)."""
    used = [a for a in arms if a.trials > 0]
    if len(used) < 2:
        return None
    successes = sum(a.successes for a in used)
    failures = sum(a.trials - a.successes for a in used)
    if successes == 0 or failures == 0:
        return 1.0
    table = [[a.successes, a.trials - a.successes] for a in used]
    _, p, _, _ = _scipy.chi2_contingency(table, correction=False)
    return float(p)


def pick_winner(arms: list[Arm], *, metric: str, alpha: float = ALPHA, min_sample: int = MIN_SAMPLE) -> Verdict:
    """Can a winner be named on `metric` at 1 - alpha? See the module's docstring."""
    used = [a for a in arms if a.trials > 0]
    if len(arms) < 2:
        return Verdict(metric, None, None, "single_variant", {})
    if len(used) < 2:
        return Verdict(metric, None, None, "no_data", {})
    p = chi_square_p(used)
    best = max(used, key=lambda a: (a.rate, a.trials))
    pairwise = {
        other.key: two_proportion_p(best.successes, best.trials, other.successes, other.trials)
        for other in used
        if other is not best
    }
    if any(a.trials < min_sample for a in arms):
        return Verdict(metric, p, None, "too_few", pairwise)
    corrected = alpha / len(pairwise)
    ahead = all(best.rate > (o.rate or 0.0) for o in used if o is not best)
    if p is not None and p < alpha and ahead and all(v < corrected for v in pairwise.values()):
        return Verdict(metric, p, best.key, "winner", pairwise)
    return Verdict(metric, p, None, "not_significant", pairwise)


# --- a sequence's report: the counts of nurturing.selectors.sequence_stats_rows over its tree ---

COUNTS = (
    "queued",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "unsubscribed",
    "bounced",
    "complained",
    "failed",
)
# Rates: delivered and bounced over sent, the rest over delivered (what reached an inbox).
OVER_SENT = ("delivered", "bounced")
OVER_DELIVERED = ("opened", "clicked", "replied", "unsubscribed", "complained")


def _rates(counts: dict[str, int]) -> dict[str, float | None]:
    out = {name: rate(counts.get(name, 0), counts.get("sent", 0)) for name in OVER_SENT}
    out |= {name: rate(counts.get(name, 0), counts.get("delivered", 0)) for name in OVER_DELIVERED}
    return out


def _add(into: dict[str, int], row: dict) -> None:
    for name in COUNTS:
        into[name] = into.get(name, 0) + int(row.get(name) or 0)


def sequence_report(steps: list, rows: dict, *, metric: str = "clicked") -> dict:
    """Per step (in reading order) and per split variant: counts and rates; per split, the
    p-value of each metric and whether a winner can be picked on `metric`."""
    metric = metric if metric in METRICS else "clicked"
    by_step: dict[str, dict[str, int]] = {}
    by_variant: dict[str, dict[str, int]] = {}
    for row in rows.get("steps", ()):
        _add(by_step.setdefault(row["step"], {}), row)
        if row.get("variant"):
            _add(by_variant.setdefault(row["variant"], {}), row)
    recipients = {row["variant"]: row for row in rows.get("variants", ())}
    taken = {(row["path"], row["outcome"]): row for row in rows.get("splits", ())}

    out_steps, out_splits = [], []
    for path, step, depth in sequence_tree.walk(steps):
        kind = step.get("type", "")
        counts = by_step.get(path)
        out_steps.append(
            {
                "path": path,
                "type": kind,
                "depth": depth,
                "counts": counts or dict.fromkeys(COUNTS, 0),
                "rates": _rates(counts or {}),
            }
        )
        if kind != "split":
            continue
        variants = []
        for index, variant in enumerate(step.get("variants") or []):
            key = sequence_tree.variant_key(path, index)
            reached = recipients.get(key, {})
            took = taken.get((path, f"variant:{index}"), {})
            messages = by_variant.get(key, dict.fromkeys(COUNTS, 0))
            variants.append(
                {
                    "key": key,
                    "index": index,
                    "weight": variant.get("weight") if isinstance(variant, dict) else None,
                    "enrolled": int(took.get("enrolled") or 0),
                    "mql": int(took.get("mql") or 0),
                    "recipients": int(reached.get("recipients") or 0),
                    "opened": int(reached.get("opened") or 0),
                    "clicked": int(reached.get("clicked") or 0),
                    "replied": int(reached.get("replied") or 0),
                    "messages": messages,
                    "message_rates": _rates(messages),
                }
            )
        for v in variants:
            v["rates"] = {
                "opened": rate(v["opened"], v["recipients"]),
                "clicked": rate(v["clicked"], v["recipients"]),
                "replied": rate(v["replied"], v["recipients"]),
                "mql": rate(v["mql"], v["enrolled"]),
            }
        arms = {m: [_arm(v, m) for v in variants] for m in METRICS}
        verdict = pick_winner(arms[metric], metric=metric)
        out_splits.append(
            {
                "path": path,
                "variants": variants,
                "p_values": {m: chi_square_p(arms[m]) for m in METRICS},
                "metric": metric,
                "winner": verdict.winner,
                "reason": verdict.reason,
                "p_value": verdict.p_value,
                "pairwise": verdict.pairwise,
            }
        )
    enrollments = rows.get("enrollments", {})
    enrolled = int(enrollments.get("enrolled") or 0)
    mql = int(enrollments.get("mql") or 0)
    return {
        "enrollments": {
            "enrolled": enrolled,
            "by_state": dict(enrollments.get("by_state") or {}),
            "mql": mql,
            "mql_rate": rate(mql, enrolled),
        },
        "steps": out_steps,
        "splits": out_splits,
    }


def _arm(variant: dict, metric: str) -> Arm:
    if metric == "mql":
        return Arm(variant["key"], variant["mql"], variant["enrolled"])
    return Arm(variant["key"], variant[metric], variant["recipients"])

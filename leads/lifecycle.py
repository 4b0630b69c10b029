"""The lifecycle's rules as plain data and pure functions: the one place that says which
moves exist and what each one needs. Services feed it facts read under a row lock."""

from __future__ import annotations

from dataclasses import dataclass, field

from leads.models import BANT_CRITERIA, FUNNEL_STAGES, Stage

S = Stage

# from-stage -> the stages it may move to. Anything absent is refused.
ALLOWED_MOVES: dict[str, frozenset[str]] = {
    S.MCL: frozenset({S.MQL, S.DISQUALIFIED}),
    S.MQL: frozenset({S.SQL, S.DISQUALIFIED}),
    S.SQL: frozenset({S.SAL, S.RECYCLED, S.DISQUALIFIED}),
    S.SAL: frozenset({S.CO, S.RECYCLED, S.DISQUALIFIED}),
    S.CO: frozenset({S.WO, S.LOST, S.DISQUALIFIED}),
    S.RECYCLED: frozenset({S.MQL, S.DISQUALIFIED}),
    S.WO: frozenset(),
    S.LOST: frozenset(),
    S.DISQUALIFIED: frozenset(),
}

# Forward skips that a named rule allows: (from, to) -> rule. A demo request is a buyer
# raising their hand, so it may jump MQL; the rule's name is recorded with the move.
SKIP_RULES: dict[tuple[str, str], str] = {
    (S.MCL, S.SQL): "demo_request",
    (S.RECYCLED, S.SQL): "demo_request",
}

# The next forward stage of each open stage (the funnel stage among its moves): what the
# queue's "next stage" button proposes.
NEXT_STAGE: dict[str, str] = {
    src: dst for src, targets in ALLOWED_MOVES.items() for dst in FUNNEL_STAGES if dst in targets
}

REASON_REQUIRED = frozenset({S.DISQUALIFIED, S.LOST})

# The offer (opportunity) is entered with the move to this stage, from the stages that may
# move to it.
OFFER_STAGE = S.CO


def offer_stages() -> list[str]:
    """The stages whose leads may get their offer now (the move to OFFER_STAGE is theirs)."""
    return [src for src in Stage.values if OFFER_STAGE in ALLOWED_MOVES.get(src, frozenset())]


@dataclass(frozen=True)
class MoveFacts:
    """What the guards need to know about one lead at the moment of the move."""

    from_stage: str
    to_stage: str
    score: int = 0
    mql_threshold: int = 50
    override: bool = False
    reason: str = ""
    bant_missing: tuple[str, ...] = BANT_CRITERIA
    has_owner: bool = False
    actor_is_owner: bool = False
    opportunity_complete: bool = False
    has_demo_request: bool = False


@dataclass(frozen=True)
class GuardFailure:
    guard: str
    message: str
    details: dict = field(default_factory=dict)


def skip_rule(from_stage: str, to_stage: str, facts: MoveFacts) -> str | None:
    rule = SKIP_RULES.get((from_stage, to_stage))
    if rule == "demo_request" and facts.has_demo_request:
        return rule
    return None


def check_move(facts: MoveFacts) -> GuardFailure | None:
    """None when the move may happen, else the first guard that refuses it."""
    src, dst = facts.from_stage, facts.to_stage
    if dst not in ALLOWED_MOVES.get(src, frozenset()) and not skip_rule(src, dst, facts):
        allowed = sorted(ALLOWED_MOVES.get(src, frozenset()))
        return GuardFailure(
            "allowed_move",
            f"A lead in {src} cannot move to {dst}."
            + (f" Allowed: {', '.join(allowed)}." if allowed else " It is closed."),
            {"allowed": allowed},
        )
    if dst in REASON_REQUIRED and not facts.reason.strip():
        return GuardFailure("reason_required", f"Moving to {dst} needs a reason.")
    if dst == S.MQL and facts.score < facts.mql_threshold:
        if not facts.override:
            return GuardFailure(
                "mql_threshold",
                f"Score {facts.score} is below the MQL threshold {facts.mql_threshold}; "
                "use a manual override with a reason.",
                {"score": facts.score, "threshold": facts.mql_threshold},
            )
        if not facts.reason.strip():
            return GuardFailure("reason_required", "A manual MQL override needs a reason.")
    if dst == S.SQL and facts.bant_missing:
        return GuardFailure(
            "bant_complete",
            "SQL needs all four BANT fields; missing: " + ", ".join(facts.bant_missing) + ".",
            {"missing": list(facts.bant_missing)},
        )
    if dst == S.SAL:
        if not facts.has_owner:
            return GuardFailure("owner_accepts", "SAL needs an owner; assign the lead first.")
        if not facts.actor_is_owner:
            return GuardFailure("owner_accepts", "Only the lead's owner can accept it (SAL).")
    if dst == S.CO and not facts.opportunity_complete:
        return GuardFailure(
            "opportunity_complete",
            "CO needs an opportunity with amount, currency and expected close date.",
        )
    return None


def allowed_targets(facts_for: callable, from_stage: str) -> list[tuple[str, GuardFailure | None]]:
    """Every stage reachable from `from_stage` with the guard that would refuse it, for the
    lead page's stage buttons. `facts_for(to)` builds the facts for one target."""
    targets = set(ALLOWED_MOVES.get(from_stage, frozenset()))
    targets |= {dst for (src, dst) in SKIP_RULES if src == from_stage}
    out = []
    for dst in [s for s in Stage.values if s in targets]:
        failure = check_move(facts_for(dst))
        out.append((dst, failure))
    return out

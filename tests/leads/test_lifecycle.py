"""The lifecycle's rules (leads.lifecycle), as pure functions: every (from, to) pair of stages
and every guard, without a database."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from leads.lifecycle import ALLOWED_MOVES, SKIP_RULES, MoveFacts, allowed_targets, check_move
from leads.models import Stage

S = Stage
OPEN = (S.MCL, S.MQL, S.SQL, S.SAL, S.CO, S.RECYCLED)

# The state machine as SPEC.md "The lifecycle" words it, written out independently of the
# code's table: forward MCL→MQL→SQL→SAL→CO→WO; SQL/SAL rejected → RECYCLED; RECYCLED → MQL;
# any open stage → DISQUALIFIED; CO → LOST.
SPEC_MOVES = {
    (S.MCL, S.MQL),
    (S.MQL, S.SQL),
    (S.SQL, S.SAL),
    (S.SAL, S.CO),
    (S.CO, S.WO),
    (S.SQL, S.RECYCLED),
    (S.SAL, S.RECYCLED),
    (S.RECYCLED, S.MQL),
    (S.CO, S.LOST),
    *((stage, S.DISQUALIFIED) for stage in OPEN),
}
# Forward skips a rule allows: a demo request goes straight to SQL (from a captured or a
# recycled lead).
SPEC_SKIPS = {(S.MCL, S.SQL), (S.RECYCLED, S.SQL)}

PAIRS = list(itertools.product(Stage.values, Stage.values))


def facts(src: str, dst: str, **changes) -> MoveFacts:
    """Facts under which every guard is satisfied, so only the move itself is judged."""
    base = MoveFacts(
        from_stage=src,
        to_stage=dst,
        score=100,
        mql_threshold=50,
        override=False,
        reason="documented reason",
        bant_missing=(),
        has_owner=True,
        actor_is_owner=True,
        opportunity_complete=True,
        has_demo_request=False,
    )
    return replace(base, **changes)


def test_code_table_matches_the_spec():
    in_code = {(src, dst) for src, targets in ALLOWED_MOVES.items() for dst in targets}
    assert in_code == SPEC_MOVES
    assert set(ALLOWED_MOVES) == set(Stage.values), "every stage has an entry, closed ones an empty one"
    assert set(SKIP_RULES) == SPEC_SKIPS
    assert set(SKIP_RULES.values()) == {"demo_request"}


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_without_a_demo_request(src, dst):
    failure = check_move(facts(src, dst))
    if (src, dst) in SPEC_MOVES:
        assert failure is None
    else:
        assert failure is not None
        assert failure.guard == "allowed_move"
        assert src in failure.message and dst in failure.message
        assert failure.details["allowed"] == sorted(ALLOWED_MOVES[src])


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_with_a_demo_request(src, dst):
    failure = check_move(facts(src, dst, has_demo_request=True))
    if (src, dst) in SPEC_MOVES | SPEC_SKIPS:
        assert failure is None
    else:
        assert failure is not None and failure.guard == "allowed_move"


@pytest.mark.parametrize("closed", [S.WO, S.LOST, S.DISQUALIFIED])
def test_closed_stages_say_so(closed):
    failure = check_move(facts(closed, S.MQL))
    assert failure.guard == "allowed_move"
    assert "closed" in failure.message
    assert failure.details["allowed"] == []


# --- mql_threshold -------------------------------------------------------------------------


@pytest.mark.parametrize("src", [S.MCL, S.RECYCLED])
def test_mql_below_threshold_is_refused(src):
    failure = check_move(facts(src, S.MQL, score=49, mql_threshold=50, reason=""))
    assert failure.guard == "mql_threshold"
    assert failure.details == {"score": 49, "threshold": 50}


@pytest.mark.parametrize("score", [50, 51, 100])
def test_mql_at_or_above_threshold_passes(score):
    assert check_move(facts(S.MCL, S.MQL, score=score, mql_threshold=50, reason="")) is None


def test_mql_override_needs_a_reason():
    failure = check_move(facts(S.MCL, S.MQL, score=10, override=True, reason="   "))
    assert failure.guard == "reason_required"


def test_mql_override_with_a_reason_passes():
    assert check_move(facts(S.MCL, S.MQL, score=10, override=True, reason="Met at the trade fair")) is None


def test_override_is_not_needed_above_threshold():
    assert check_move(facts(S.RECYCLED, S.MQL, score=80, override=True, reason="")) is None


# --- bant_complete -------------------------------------------------------------------------


def test_sql_lists_the_missing_bant_fields():
    failure = check_move(facts(S.MQL, S.SQL, bant_missing=("budget", "timeline")))
    assert failure.guard == "bant_complete"
    assert failure.details == {"missing": ["budget", "timeline"]}
    assert "budget" in failure.message and "timeline" in failure.message


def test_sql_with_no_bant_at_all_lists_all_four():
    failure = check_move(facts(S.MQL, S.SQL, bant_missing=("budget", "authority", "need", "timeline")))
    assert failure.details["missing"] == ["budget", "authority", "need", "timeline"]


# --- owner_accepts -------------------------------------------------------------------------


def test_sal_needs_an_owner():
    failure = check_move(facts(S.SQL, S.SAL, has_owner=False, actor_is_owner=False))
    assert failure.guard == "owner_accepts"
    assert "owner" in failure.message


def test_sal_must_be_accepted_by_the_owner_not_someone_else():
    failure = check_move(facts(S.SQL, S.SAL, has_owner=True, actor_is_owner=False))
    assert failure.guard == "owner_accepts"


# --- opportunity_complete ------------------------------------------------------------------


def test_co_needs_a_complete_opportunity():
    failure = check_move(facts(S.SAL, S.CO, opportunity_complete=False))
    assert failure.guard == "opportunity_complete"


# --- reason_required -----------------------------------------------------------------------


@pytest.mark.parametrize("src", OPEN)
@pytest.mark.parametrize("reason", ["", "   "])
def test_disqualifying_needs_a_reason(src, reason):
    failure = check_move(facts(src, S.DISQUALIFIED, reason=reason))
    assert failure.guard == "reason_required"


@pytest.mark.parametrize("reason", ["", "\n"])
def test_losing_needs_a_reason(reason):
    assert check_move(facts(S.CO, S.LOST, reason=reason)).guard == "reason_required"


def test_winning_needs_no_reason():
    assert check_move(facts(S.CO, S.WO, reason="")) is None


# --- demo_request skip ---------------------------------------------------------------------


def test_demo_request_skips_mql_but_still_needs_bant():
    failure = check_move(facts(S.MCL, S.SQL, has_demo_request=True, bant_missing=("need",)))
    assert failure.guard == "bant_complete"
    assert failure.details == {"missing": ["need"]}


def test_without_a_demo_request_mcl_cannot_jump_to_sql():
    failure = check_move(facts(S.MCL, S.SQL, has_demo_request=False))
    assert failure.guard == "allowed_move"
    assert failure.details["allowed"] == [S.DISQUALIFIED, S.MQL]


def test_the_move_itself_is_judged_before_its_guards():
    # A refused move reports "allowed_move", not a guard of the target stage.
    failure = check_move(facts(S.MCL, S.SAL, has_owner=False))
    assert failure.guard == "allowed_move"


# --- allowed_targets (the lead page's stage buttons) ---------------------------------------


def test_allowed_targets_offers_moves_and_skips_in_stage_order():
    options = allowed_targets(lambda to: facts(S.MCL, to, score=10, reason=""), S.MCL)
    assert [to for to, _ in options] == [S.MQL, S.SQL, S.DISQUALIFIED]
    guards = {to: failure.guard if failure else None for to, failure in options}
    assert guards == {S.MQL: "mql_threshold", S.SQL: "allowed_move", S.DISQUALIFIED: "reason_required"}


def test_allowed_targets_of_a_closed_stage_is_empty():
    assert allowed_targets(lambda to: facts(S.WO, to), S.WO) == []

"""A/B significance (nurturing.stats), against figures worked by hand: no database."""

from __future__ import annotations

import math

import pytest

from nurturing.stats import Arm, chi_square_p, pick_winner, rate, two_proportion_p


def test_two_proportion_z_test_known_figures():
    # 20 % vs 25 % of 1,000: pooled p = 0.225, se = sqrt(0.225 * 0.775 * 2/1000) = 0.018675,
    # z = 0.05 / 0.018675 = 2.6774, two-sided p = 0.00742.
    assert two_proportion_p(200, 1000, 250, 1000) == pytest.approx(0.00742, abs=5e-5)
    # 10 % vs 12 % of 500: pooled 0.11, se = 0.019789, z = 1.0107, p = 0.3122
    assert two_proportion_p(50, 500, 60, 500) == pytest.approx(0.3122, abs=5e-4)
    # symmetric
    assert two_proportion_p(250, 1000, 200, 1000) == pytest.approx(two_proportion_p(200, 1000, 250, 1000))


def test_degenerate_tables_answer_one_not_an_error():
    assert two_proportion_p(0, 0, 5, 10) == 1.0
    assert two_proportion_p(0, 100, 0, 100) == 1.0
    assert two_proportion_p(100, 100, 50, 50) == 1.0
    assert chi_square_p([Arm("a", 0, 10), Arm("b", 0, 10)]) == 1.0
    assert chi_square_p([Arm("a", 3, 10)]) is None
    assert chi_square_p([Arm("a", 3, 10), Arm("b", 0, 0)]) is None


def test_chi_square_equals_the_z_test_for_two_variants_and_handles_three():
    two = chi_square_p([Arm("a", 200, 1000), Arm("b", 250, 1000)])
    assert two == pytest.approx(two_proportion_p(200, 1000, 250, 1000))
    # 10/30, 20/30, 15/30: chi2 = 6.667 on 2 degrees of freedom, p = exp(-6.667 / 2) = 0.0357
    three = chi_square_p([Arm("a", 10, 30), Arm("b", 20, 30), Arm("c", 15, 30)])
    assert three == pytest.approx(math.exp(-20 / 6), rel=1e-6)


def test_a_significant_difference_names_the_winner():
    verdict = pick_winner([Arm("3:0", 200, 1000), Arm("3:1", 250, 1000)], metric="clicked")
    assert verdict.winner == "3:1" and verdict.reason == "winner" and verdict.significant
    assert verdict.pairwise == {"3:0": pytest.approx(0.00742, abs=5e-5)}


def test_the_highest_rate_alone_is_not_a_winner():
    verdict = pick_winner([Arm("a", 48, 1000), Arm("b", 52, 1000)], metric="replied")
    assert verdict.winner is None and verdict.reason == "not_significant"
    assert verdict.p_value == pytest.approx(0.6815, abs=5e-4)


def test_too_few_recipients_name_no_winner_even_when_the_test_says_so():
    verdict = pick_winner([Arm("a", 0, 12), Arm("b", 12, 12)], metric="clicked")
    assert verdict.p_value < 0.001 and verdict.winner is None and verdict.reason == "too_few"


def test_three_variants_need_the_best_to_beat_each_other_after_bonferroni():
    # c beats a clearly but b only barely: the overall test is significant, c vs b is not.
    arms = [Arm("a", 100, 1000), Arm("b", 140, 1000), Arm("c", 150, 1000)]
    verdict = pick_winner(arms, metric="mql")
    assert verdict.significant and verdict.winner is None and verdict.reason == "not_significant"
    clear = pick_winner([Arm("a", 100, 1000), Arm("b", 100, 1000), Arm("c", 200, 1000)], metric="mql")
    assert clear.winner == "c"


def test_no_data_and_single_variant():
    assert pick_winner([Arm("a", 0, 0), Arm("b", 0, 0)], metric="opened").reason == "no_data"
    assert pick_winner([Arm("a", 5, 50)], metric="opened").reason == "single_variant"
    assert rate(1, 4) == 0.25 and rate(0, 0) is None

"""User regexes run on RE2 (no catastrophic backtracking); CSV exports escape formulas."""

from __future__ import annotations

import time

import pytest

from leadcrm.csvsafe import safe_cell
from leadcrm.userregex import compile_user_regex
from leads.csv_import import error_report
from leads.exports import cell
from scoring.services import validate_engagement_rule


def test_catastrophic_pattern_runs_in_linear_time():
    pattern = compile_user_regex("(a+)+$")
    started = time.perf_counter()
    assert pattern.search("a" * 30 + "!") is None
    assert time.perf_counter() - started < 0.5


def test_pattern_re2_cannot_compile_is_refused_at_save():
    errors = validate_engagement_rule({"event_type": "page_view", "url_pattern": r"(a)\1", "points": 5})
    assert "url_pattern" in errors


def test_plain_pattern_is_accepted():
    errors = validate_engagement_rule({"event_type": "page_view", "url_pattern": "/(pricing|tarifs)", "points": 5})
    assert "url_pattern" not in errors


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "a;=cmd", "x|=1", "\uff1d1", " =1"])
def test_exports_escape_formula_starts(text):
    assert cell(text) == "'" + text
    assert safe_cell(text) == "'" + text


def test_numbers_and_plain_text_stay():
    assert cell(-5) == -5 and cell("Paris") == "Paris"


def test_import_error_report_escapes_cells():
    report = error_report([{"line": 2, "column": "=HYPERLINK(x)", "message": "bad"}])
    assert "'=HYPERLINK(x)" in report

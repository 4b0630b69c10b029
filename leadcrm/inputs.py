"""Input every app refuses the same way: text PostgreSQL cannot store (a NUL byte, a lone
UTF-16 surrogate), JSON a parser chokes on (nesting thousands deep, `1e400`, `NaN`), and
numbers, ids and dates that Python accepts but the database or the calendar does not
(`²`, `99999999999999999999`, `9999-12-31` plus a day, a `+22:24` offset).

The JSON parser and the middleware below apply the text rule to every request; the parse
helpers are what filters, forms and serializers call for numbers and dates.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from django.utils.dateparse import parse_datetime

# PostgreSQL refuses U+0000 in text and jsonb; a lone surrogate cannot be encoded to UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 32
# PostgreSQL's bigint; ids and counts beyond it can only be a mistake.
MAX_BIGINT = 2**63 - 1
# A date or datetime filter must leave room for "+ 1 day" and any time zone.
MIN_YEAR, MAX_YEAR = 1000, 9998


class BadText(ValueError):
    """A string (or a key) the database cannot store; `path` names where it was."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "Text may not contain a NUL character (U+0000)."
    return "Text may not contain a lone UTF-16 surrogate."


def _join(path: str, part: object) -> str:
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else str(part)


def check_json(value: Any, path: str = "", depth: int = 0) -> None:
    """Raise BadText for the first unstorable string or key in a parsed JSON document, or
    ValueError when it nests deeper than MAX_JSON_DEPTH (iterative callers bound recursion)."""
    if depth > MAX_JSON_DEPTH:
        raise BadText(path or "non_field_errors", f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise BadText(path or "non_field_errors", problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                raise BadText(path or "non_field_errors", f"A key: {problem}")
            check_json(item, _join(path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, _join(path, index), depth + 1)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON.")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"The number {text[:40]} is out of range.")
    return number


_ESCAPES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity, numbers out of float range, nesting beyond
    MAX_JSON_DEPTH and unstorable text, with ValueError (BadText names the field)."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:  # the C decoder stops cleanly at the interpreter's limit
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    # Only an escape can bring a NUL or a surrogate into a JSON string (raw ones are refused
    # by the decoder or the UTF-8 decoding): walk the document only when one is there.
    if _ESCAPES.search(text):
        check_json(data)
    return data


# --- numbers, ids and dates from query strings and forms --------------------------------


def parse_int(value: object, *, minimum: int = 0, maximum: int = MAX_BIGINT) -> int:
    """An integer written in ASCII digits within [minimum, maximum]; ValueError otherwise.
    int() takes '²'-free Unicode digits and any size; PostgreSQL takes neither."""
    if isinstance(value, bool):
        raise ValueError("A whole number is required.")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        sign = text[:1] if text[:1] in "+-" else ""
        digits = text[len(sign) :]
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
            raise ValueError("A whole number is required.")
        number = int(text)
    if not minimum <= number <= maximum:
        raise ValueError(f"Must be between {minimum} and {maximum}.")
    return number


def parse_date(value: str) -> dt.date:
    """An ISO date (YYYY-MM-DD) whose year leaves room for date arithmetic."""
    text = str(value).strip()
    if not (text.isascii() and len(text) == 10):
        raise ValueError("Enter a date as YYYY-MM-DD.")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError("Enter a date as YYYY-MM-DD.") from exc
    check_year(day)
    return day


def check_year(value: dt.date) -> dt.date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"The year must be between {MIN_YEAR} and {MAX_YEAR}.")
    return value


def parse_aware_datetime(value: str) -> dt.datetime:
    """An ISO 8601 datetime, aware (UTC when no offset), with a real offset (under 24 h,
    which Python allows but PostgreSQL refuses beyond ±15:59) and a year in range."""
    text = str(value).strip()
    try:
        parsed = parse_datetime(text) if text.isascii() else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("Enter a datetime in ISO 8601, e.g. 2024-05-01T10:00:00Z.")
    return check_datetime(parsed)


def check_datetime(value: dt.datetime) -> dt.datetime:
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=dt.UTC)
    elif abs(offset) > dt.timedelta(hours=15, minutes=59):
        raise ValueError("The UTC offset must be within ±15:59.")
    check_year(value)
    return value


def is_id(value: object) -> bool:
    """A JSON id: an integer (not a boolean) that a bigint primary key can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_BIGINT


def int_or_none(value: object, *, minimum: int = 0, maximum: int = MAX_BIGINT) -> int | None:
    """For page filters that ignore what they cannot read: parse_int, or None."""
    try:
        return parse_int(value, minimum=minimum, maximum=maximum)
    except (TypeError, ValueError):
        return None

"""CSV cells that a spreadsheet will not run: every export writes through `safe_cell`."""

from __future__ import annotations

# A cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets;
# so is one whose first field, after a separator a spreadsheet may split on, starts so.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_SEPARATORS = (";", "|", ",")


def _risky(text: str) -> bool:
    stripped = text.lstrip(" ")
    if stripped.startswith(_FORMULA_STARTS):
        return True
    return any(part.lstrip(" ").startswith(_FORMULA_STARTS) for sep in _SEPARATORS for part in text.split(sep)[1:])


def safe_cell(value: object) -> object:
    """`value`, or its text behind a leading apostrophe when a spreadsheet would evaluate it.
    Numbers stay numbers: a negative amount is data, not a formula."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = str(value)
    return "'" + text if text and _risky(text) else text


def safe_row(values) -> list:
    return [safe_cell(v) for v in values]

"""Reading a CSV file someone exported from a spreadsheet or another tool: decode it
whatever its encoding, find its separator, split it strictly, refuse a binary file. Used by
the leads import and by static lists (a CSV of e-mails)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from leadcrm import inputs

__all__ = ["MAX_CELL", "BadFile", "ParsedFile", "decode", "parse", "sniff_delimiter"]


class BadFile(ValueError):
    """A file that cannot be read as CSV: the message says why, and on which line."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(f"Line {line}: {message}" if line else message)
        self.line = line


# csv's own default (131,072 characters): no lead field comes near it, so a longer cell is
# a broken quote or not a CSV at all.
MAX_CELL = 131_072
# Control characters (other than tab, CR, LF) in a text file: a few are stray bytes (a NUL
# in a cell fails that line), more than this share of the first SAMPLE characters means a
# binary file (a spreadsheet, a zip).
SAMPLE = 64 * 1024
MAX_CONTROL_SHARE = 0.01
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-16 when it starts with its BOM, UTF-8 (with or without BOM)
    when it decodes, else Windows-1252, else Latin-1 (which never fails)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any byte")


def sniff_delimiter(text: str) -> str:
    sample = "\n".join(text[:SAMPLE].splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        return max(",;\t|", key=first.count) if first else ","


@dataclass
class ParsedFile:
    encoding: str
    delimiter: str
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (line number in the file, cells)


def _check_text(text: str) -> None:
    sample = text[:SAMPLE]
    if len(_CONTROL.findall(sample)) > max(16, MAX_CONTROL_SHARE * len(sample)):
        raise BadFile("This is not a CSV text file (it holds binary data). Export the sheet as CSV.")


def parse(data: bytes, *, encoding: str = "", delimiter: str = "") -> ParsedFile:
    """Decode and split a CSV file. Line numbers count the header as line 1, as a
    spreadsheet shows them; blank lines are skipped. Raises BadFile for what cannot be read
    (binary data, an unterminated quote, a cell over MAX_CELL characters, a NUL in the
    header): the whole file is refused, with the line where that is known."""
    if encoding:
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise BadFile(f"The file is not valid {encoding}.") from exc
    else:
        text, encoding = decode(data)
    text = text.lstrip("\ufeff")
    _check_text(text)
    delimiter = delimiter or sniff_delimiter(text)
    # strict: an unterminated quote is an error, not a cell swallowing the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    headers: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    line = 1
    try:
        for cells in reader:
            if not headers:
                if any(c.strip() for c in cells):
                    headers = [c.strip() for c in cells]
                    problem = next(filter(None, map(inputs.text_problem, headers)), None)
                    if problem:
                        raise BadFile(f"the header holds text that cannot be stored. {problem}", reader.line_num)
                line = reader.line_num + 1
                continue
            if any(c.strip() for c in cells):
                rows.append((reader.line_num, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise BadFile(_csv_message(exc), line) from exc
    return ParsedFile(encoding=encoding, delimiter=delimiter, headers=headers, rows=rows)


def _csv_message(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a cell is longer than {MAX_CELL:,} characters (a quote left open?)."
    if "unexpected end of data" in text:
        return 'a quoted cell is never closed (a " is missing).'
    if "expected after" in text:
        return f"a closing quote must be followed by the separator ({text})."
    return f"the line cannot be read as CSV ({text})."

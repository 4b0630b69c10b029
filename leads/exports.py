"""CSV downloads of the lists and tables the pages show, streamed row by row."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable

from django.http import StreamingHttpResponse

from leadcrm.csvsafe import safe_cell


class _Echo:
    def write(self, value: str) -> str:
        return value


def cell(value: object) -> object:
    """Dates as ISO 8601; text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return safe_cell(value)


def csv_response(filename: str, header: list[str], rows: Iterable[Iterable[object]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream():
        yield "\ufeff"  # spreadsheets then read UTF-8
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([cell(v) for v in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response

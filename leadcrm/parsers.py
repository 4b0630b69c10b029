"""The API's JSON parser: refuses what would otherwise end in a 500 (see leadcrm.inputs),
and a body over the view's limit before reading it (413)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser

from leadcrm import inputs, uploads


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "too_large"


def body_limit(view) -> int:
    """A view's `max_body_bytes` (one lead's body), else DATA_UPLOAD_MAX_MEMORY_SIZE."""
    return getattr(view, "max_body_bytes", None) or settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = body_limit(parser_context.get("view"))
        request = parser_context.get("request")
        declared = inputs.int_or_none(request.META.get("CONTENT_LENGTH")) if request is not None else None
        if declared is not None and declared > limit:  # refused before reading a byte
            raise PayloadTooLarge(uploads.body_too_big_message(limit))
        raw = stream.read(limit + 1)  # and never more than the limit, whatever was declared
        if len(raw) > limit:
            raise PayloadTooLarge(uploads.body_too_big_message(limit))
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}.") from exc
        try:
            return inputs.loads(text)
        except inputs.BadText as exc:
            # Keyed by the top-level field, as serializer errors are; the message names the
            # exact place (`leads[3].city`) when it is deeper.
            field = exc.path.split(".", 1)[0].split("[", 1)[0]
            message = str(exc) if field == exc.path else f"{exc.path}: {exc}"
            raise ValidationError({field: [message]}) from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc

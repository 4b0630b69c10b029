"""The API's JSON parser: refuses what would otherwise end in a 500 (see leadcrm.inputs)."""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from leadcrm import inputs


class SafeJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
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

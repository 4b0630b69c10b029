"""Regular expressions written by users (engagement rules' URL patterns) run on RE2: linear
time, so `(a+)+$` cannot stall a worker. A pattern RE2 cannot compile is refused at save."""

from __future__ import annotations

from functools import lru_cache

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


@lru_cache(maxsize=1024)
def compile_user_regex(pattern: str):
    """The compiled pattern; ValueError (with RE2's reason) when RE2 refuses it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(reason) from exc

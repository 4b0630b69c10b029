"""PostgreSQL unreachable → 503 (JSON under /api/, a styled page elsewhere), never a 500.

Django converts an exception into a response at every middleware layer, so one raised by an
inner middleware (a session saved after the view, a user looked up by auth) never reaches
an outer one. Views' exceptions come to `process_exception`; the others are noted on the
request by the `got_request_exception` receiver and their 500 replaced on the way out.
Recovery needs no restart: a connection that failed is closed at the end of the request
(Django's close_old_connections) and CONN_HEALTH_CHECKS re-checks a reused one."""

from __future__ import annotations

import logging
import sys

from django.contrib.auth.models import AnonymousUser
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from leadcrm.errorpages import is_api

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10
_MARK = "_leadcrm_db_unavailable"
# SQLSTATE classes meaning "the server is not there or not taking work": connection
# exceptions, insufficient resources, operator intervention (shutdown, cannot connect now),
# system errors. Bad SQL (42...) or bad data (22...) stays a bug.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "58")


def is_database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be reached now, not that a query is wrong."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    pgcode = getattr(cause, "pgcode", None)
    if pgcode is not None:
        return pgcode.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)
    if type(cause).__module__.startswith("sqlite3"):
        return "locked" in str(cause) or "unable to open" in str(cause)
    # psycopg's errors without a SQLSTATE: connection refused, server closed the connection.
    return True


def unavailable_response(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        response: HttpResponse = JsonResponse({"detail": "The database is unavailable; try again shortly."}, status=503)
    else:
        # No request in the context: no context processor may look the user up.
        html = render_to_string("503.html", {"user": AnonymousUser(), "retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


@receiver(got_request_exception)
def _note_unavailable(sender, request=None, **kwargs) -> None:
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and is_database_unavailable(exc):
        setattr(request, _MARK, True)


class DatabaseUnavailableMiddleware:
    """Keep it outside the session, auth and axes middleware (they read the database)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 500 and getattr(request, _MARK, False):
            return unavailable_response(request)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_database_unavailable(exception):
            logger.warning("database unavailable on %s: %s", request.path, exception)
            return unavailable_response(request)
        return None

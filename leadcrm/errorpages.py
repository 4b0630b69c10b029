"""Error answers: JSON under /api/ (clients parse them), a styled page elsewhere. Django's
own refusals (unknown path, DisallowedHost, a body too big, an unreadable POST, a crash)
come through the handlers below, so none answers with Django's bare HTML."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

API_PREFIX = "/api/"

TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    500: "Server error",
}
MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to do this.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Request body too large.",
    500: "Something went wrong on our side; it has been logged.",
}


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_response(request: HttpRequest, status: int, message: str = "", errors: dict | None = None) -> HttpResponse:
    message = message or MESSAGES.get(status, "Error.")
    if is_api(request):
        return JsonResponse({"detail": message, **(errors or {})}, status=status)
    try:
        body = loader.render_to_string(
            "error.html",
            {"status": status, "title": TITLES.get(status, "Error"), "message": message},
            request=request,
        )
    except Exception:  # a broken template (or database) must not hide the error itself
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{message}</p>"
    return HttpResponse(body, status=status)


def bad_request(request, exception=None):
    if isinstance(exception, RequestDataTooBig):
        return error_response(request, 413)
    return error_response(request, 400)


def permission_denied(request, exception=None):
    return error_response(request, 403)


def page_not_found(request, exception=None):
    return error_response(request, 404)


def server_error(request):
    return error_response(request, 500)


def jsonify_api_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """An error under /api/ that is not JSON yet (Django's 405 for a function view, a 413 from
    a server) becomes a JSON answer with the same status and headers."""
    if response.status_code < 400 or not is_api(request) or getattr(response, "streaming", False):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    out = JsonResponse({"detail": MESSAGES.get(response.status_code, "Error.")}, status=response.status_code)
    for header in ("Allow", "Retry-After", "WWW-Authenticate"):
        if header in response:
            out[header] = response[header]
    return out

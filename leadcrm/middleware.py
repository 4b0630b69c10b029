"""Refuse, before any view runs, request text the database cannot store (leadcrm.inputs):
a NUL in the path, the query string or a form field. JSON bodies are checked by the API's
parser; CSV cells by the import."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from leadcrm import inputs
from leadcrm.errorpages import error_response, jsonify_api_error

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _first_problem(request: HttpRequest) -> tuple[str, str] | None:
    problem = inputs.text_problem(request.path_info)
    if problem:
        return "path", problem
    sources = [request.GET]
    if request.method == "POST" and request.content_type in FORM_TYPES:
        sources.append(request.POST)
    for data in sources:
        for key, values in data.lists():
            problem = inputs.text_problem(key)
            if problem:
                return "non_field_errors", f"A parameter name: {problem}"
            for value in values:
                problem = inputs.text_problem(value)
                if problem:
                    return key, problem
    return None


class BadInputMiddleware:
    """Also turns a non-JSON error under /api/ into JSON (see errorpages.jsonify_api_error)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        found = _first_problem(request)
        if found is not None:
            field, message = found
            return error_response(request, 400, message, errors={field: [message]})
        return jsonify_api_error(request, self.get_response(request))

"""Refuse, before any view runs, request text the database cannot store (leadcrm.inputs):
a NUL in the path, the query string or a form field. JSON bodies are checked by the API's
parser; CSV cells by the import. Reading the form first, it also answers 413 for a body or
an upload over its limit (leadcrm.uploads) before any view runs."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse

from leadcrm import inputs
from leadcrm.errorpages import error_response, jsonify_api_error
from leadcrm.uploads import UploadTooBig, body_too_big_message, refused_upload

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
        try:
            found = _first_problem(request)
        except RequestDataTooBig as exc:  # Content-Length over a limit: nothing was read
            message = str(exc) if isinstance(exc, UploadTooBig) else ""
            return error_response(request, 413, message)
        if refused_upload(request):  # a file stopped part-way (leadcrm.uploads)
            return error_response(request, 413, refused_upload(request))
        if found is not None:
            field, message = found
            return error_response(request, 400, message, errors={field: [message]})
        return jsonify_api_error(request, self.get_response(request))

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        """A view's own body limit (`max_body_bytes`, e.g. one lead), from the Content-Length
        before anything reads the body (DRF reads it whole up to DATA_UPLOAD_MAX_MEMORY_SIZE)."""
        limit = getattr(getattr(view_func, "view_class", None), "max_body_bytes", None)
        declared = inputs.int_or_none(request.META.get("CONTENT_LENGTH"))
        if limit and declared is not None and declared > limit:
            return error_response(request, 413, body_too_big_message(limit))
        return None

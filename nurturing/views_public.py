"""The pages a person reaches from an e-mail, with no login: unsubscribe (RFC 8058: a POST
takes effect at once, with no cookie and no CSRF token; a GET only shows the button, since
link scanners follow GETs), the open pixel and the click redirect (signed tokens)."""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from leadcrm.errors import ServiceError
from nurturing import services

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "GET":
        return render(request, "nurturing/unsubscribe.html", {"token": token, "done": False})
    try:
        services.unsubscribe(token=token)
    except ServiceError:
        return render(request, "nurturing/unsubscribe.html", {"invalid": True}, status=400)
    return render(request, "nurturing/unsubscribe.html", {"done": True})


@require_GET
def track_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        services.message_opened(token=token)
    except ServiceError:
        pass  # a tampered pixel records nothing, and still answers an image
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def track_click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        _, url = services.message_clicked(token=token)
    except ServiceError as exc:
        raise Http404 from exc
    return HttpResponseRedirect(url)

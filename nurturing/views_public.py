"""The pages a person reaches from an e-mail, with no login: unsubscribe (RFC 8058: a POST
takes effect at once, with no cookie and no CSRF token; a GET only shows the button, since
link scanners follow GETs) with the per-topic preferences, the double opt-in confirmation
(a GET shows the button, a POST confirms), the open pixel and the click redirect (signed
tokens); and the providers' webhooks (bounces, complaints, replies: anymail's views, basic
auth with ANYMAIL_WEBHOOK_SECRET, refused while it is not set)."""

from __future__ import annotations

import base64
import json

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.inbound import AnymailInboundMessage
from anymail.signals import AnymailInboundEvent, AnymailTrackingEvent, EventType, inbound, tracking
from anymail.webhooks import (
    amazon_ses,
    brevo,
    mailersend,
    mailgun,
    mailjet,
    postal,
    postmark,
    resend,
    sendgrid,
    sparkpost,
)
from anymail.webhooks.base import AnymailBaseWebhookView
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from leadcrm import inputs
from leadcrm.errors import ServiceError
from nurturing import services

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the confirm button and the topics (nothing changes). POST: the RFC 8058 one-click
    (`List-Unsubscribe=One-Click`) or the page's "unsubscribe from all" button unsubscribe at
    once; the page's "save my choices" keeps the ticked topics only."""
    try:
        _, topics = services.unsubscribe_page_facts(token=token)
    except ServiceError:  # an unknown link: the page says so (400 to a POST: nothing changed)
        status = 200 if request.method == "GET" else 400
        return render(request, "nurturing/unsubscribe.html", {"invalid": True}, status=status)
    context = {"token": token, "topics": topics, "done": False, "language": request.LANGUAGE_CODE}
    if request.method == "GET":
        return render(request, "nurturing/unsubscribe.html", context)
    if request.POST.get("action") == "preferences" and topics:
        wanted = {n for v in request.POST.getlist("topic") if (n := inputs.int_or_none(v, minimum=1)) is not None}
        services.preferences_save(token=token, subscribed=wanted)
        _, topics = services.unsubscribe_page_facts(token=token)
        return render(request, "nurturing/unsubscribe.html", {**context, "topics": topics, "saved": True})
    services.unsubscribe(token=token)
    return render(request, "nurturing/unsubscribe.html", {"done": True})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def consent_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The double opt-in link: GET shows the button (link scanners follow GETs), POST confirms."""
    try:
        message = services.confirmation_facts(token=token)
    except ServiceError as exc:
        status = 200 if request.method == "GET" else 400
        return render(request, "nurturing/confirm.html", {"error": exc.errors["token"][0]}, status=status)
    if request.method == "GET":
        return render(request, "nurturing/confirm.html", {"token": token, "email": message.lead.email})
    try:
        services.consent_confirm(token=token)
    except ServiceError as exc:
        return render(request, "nurturing/confirm.html", {"error": exc.errors["token"][0]}, status=400)
    return render(request, "nurturing/confirm.html", {"done": True})


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


# --- providers' webhooks (anymail) -----------------------------------------------------------


class GenericTrackingWebhookView(AnymailBaseWebhookView):
    """Our own JSON shape, for tests and for a relay of our own: an object or a list of
    {"event", "message_id", "recipient", "event_id", "timestamp", "description", "metadata"}."""

    esp_name = "Generic"
    signal = tracking

    def parse_events(self, request):
        try:
            data = json.loads(request.body or b"null")
        except ValueError as exc:
            raise AnymailWebhookValidationFailure("The body is not JSON.") from exc
        items = data if isinstance(data, list) else [data]
        if not items or not all(isinstance(i, dict) for i in items) or len(items) > 1000:
            raise AnymailWebhookValidationFailure("An event object or a list of them.")
        known = {v for k, v in vars(EventType).items() if k.isupper()}
        return [
            AnymailTrackingEvent(
                event_type=i.get("event") if i.get("event") in known else EventType.UNKNOWN,
                timestamp=_when(i.get("timestamp")),
                event_id=str(i.get("event_id") or "")[:200],
                message_id=str(i.get("message_id") or "")[:255],
                recipient=str(i.get("recipient") or "")[:254],
                description=str(i.get("description") or "")[:500],
                reject_reason=i.get("reject_reason") if isinstance(i.get("reject_reason"), str) else None,
                metadata=i.get("metadata") if isinstance(i.get("metadata"), dict) else {},
                esp_event=i,
            )
            for i in items
        ]


class GenericInboundWebhookView(AnymailBaseWebhookView):
    """An inbound e-mail as its raw RFC 822 bytes (the request's body)."""

    esp_name = "Generic"
    signal = inbound

    def parse_events(self, request):
        if not request.body or len(request.body) > 10 * 1024 * 1024:
            raise AnymailWebhookValidationFailure("The raw message is the body (at most 10 MB).")
        message = AnymailInboundMessage.parse_raw_mime_bytes(request.body)
        return [AnymailInboundEvent(event_type=EventType.INBOUND, message=message, esp_event=request)]


def _when(value: object):
    parsed = parse_datetime(value) if isinstance(value, str) and len(value) < 40 else None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def _anymail_views() -> dict[str, tuple[type, type | None]]:
    """Provider name in the URL → (tracking view, inbound view) of anymail."""
    return {
        "amazon_ses": (amazon_ses.AmazonSESTrackingWebhookView, amazon_ses.AmazonSESInboundWebhookView),
        "brevo": (brevo.BrevoTrackingWebhookView, brevo.BrevoInboundWebhookView),
        "mailersend": (mailersend.MailerSendTrackingWebhookView, mailersend.MailerSendInboundWebhookView),
        "mailgun": (mailgun.MailgunTrackingWebhookView, mailgun.MailgunInboundWebhookView),
        "mailjet": (mailjet.MailjetTrackingWebhookView, mailjet.MailjetInboundWebhookView),
        "postal": (postal.PostalTrackingWebhookView, postal.PostalInboundWebhookView),
        "postmark": (postmark.PostmarkTrackingWebhookView, postmark.PostmarkInboundWebhookView),
        "resend": (resend.ResendTrackingWebhookView, resend.ResendInboundWebhookView),
        "sendgrid": (sendgrid.SendGridTrackingWebhookView, sendgrid.SendGridInboundWebhookView),
        "sparkpost": (sparkpost.SparkPostTrackingWebhookView, sparkpost.SparkPostInboundWebhookView),
        "generic": (GenericTrackingWebhookView, GenericInboundWebhookView),
    }


def _webhook(request: HttpRequest, esp: str, which: int) -> HttpResponse:
    if not (getattr(settings, "ANYMAIL", {}) or {}).get("WEBHOOK_SECRET"):
        # Without a secret anybody could suppress addresses: refused, never open.
        return HttpResponse("E-mail webhooks are off: set ANYMAIL_WEBHOOK_SECRET.", status=403)
    view_class = _anymail_views().get(esp, (None, None))[which]
    if view_class is None:
        raise Http404
    try:
        view = view_class.as_view()
    except ImproperlyConfigured as exc:  # a provider that needs its signing key too
        return HttpResponse(f"This provider's webhook is not configured: {exc}", status=404)
    try:
        return view(request)
    except ImproperlyConfigured as exc:
        return HttpResponse(f"This provider's webhook is not configured: {exc}", status=404)


@csrf_exempt
@require_http_methods(["POST"])
def email_tracking_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    """Delivery events (bounces, complaints) of a provider, through anymail's tracking signal."""
    return _webhook(request, esp, 0)


@csrf_exempt
@require_http_methods(["POST"])
def email_inbound_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    """Inbound e-mail (replies) of a provider, through anymail's inbound signal."""
    return _webhook(request, esp, 1)

"""Admins' integration pages: API keys (create, shown once; revoke) and webhooks (subscribe,
switch on/off, rotate the secret, the delivery log with replay of one delivery or a time
range). Reads through selectors, writes through services: the API's rules and errors."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from integrations import selectors, services
from integrations.models import DeliveryStatus, Scope
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leadcrm.events import WEBHOOK_EVENTS
from leadcrm.permissions import page_actor

LOG_SHOWN = 100


class ApiKeyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )


class WebhookForm(forms.Form):
    url = forms.CharField(label=gettext_lazy("Target URL"), max_length=2000)
    description = forms.CharField(label=gettext_lazy("Description"), max_length=200, required=False)
    events = forms.MultipleChoiceField(
        label=gettext_lazy("Events"), choices=[(e, e) for e in WEBHOOK_EVENTS], widget=forms.CheckboxSelectMultiple
    )


class ReplayRangeForm(forms.Form):
    since = forms.DateTimeField(label=gettext_lazy("From"))
    until = forms.DateTimeField(label=gettext_lazy("Until"))
    failed_only = forms.BooleanField(label=gettext_lazy("Failed ones only"), required=False)


def _admin(request: HttpRequest) -> Actor:
    return page_actor(request, message=_("Integrations are managed by admins."))


def _errors_to_form(form: forms.Form, errors: dict[str, list[str]]) -> None:
    for key, problems in errors.items():
        for problem in problems:
            form.add_error(key if key in form.fields else None, problem)


@login_required
@require_http_methods(["GET", "POST"])
def api_keys_page(request: HttpRequest) -> HttpResponse:
    actor = _admin(request)
    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            key, raw = services.api_key_create(actor=actor, **form.cleaned_data)
        except ServiceError as exc:
            _errors_to_form(form, exc.errors)
        else:
            created = {"key": key, "raw": raw}
            form = ApiKeyForm()
    keys = selectors.api_keys_visible_to(request.user)
    return render(request, "integrations/api_keys.html", {"form": form, "keys": keys, "created": created})


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    key = get_object_or_404(selectors.api_keys_visible_to(request.user), pk=pk)
    services.api_keys_revoke(actor=actor, key_ids=[key.pk])
    messages.success(request, _("API key revoked."))
    return redirect("integrations-api-keys")


@login_required
@require_http_methods(["GET", "POST"])
def webhooks_page(request: HttpRequest) -> HttpResponse:
    actor = _admin(request)
    form = WebhookForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = services.webhook_create(actor=actor, **form.cleaned_data)
        except ServiceError as exc:
            _errors_to_form(form, exc.errors)
        else:
            form = WebhookForm()
    hooks = selectors.webhooks_visible_to(request.user)
    return render(request, "integrations/webhooks.html", {"form": form, "webhooks": hooks, "created": created})


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    webhook = get_object_or_404(selectors.webhooks_visible_to(request.user), pk=pk)
    replay_form = ReplayRangeForm()
    rotated = None
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "toggle":
                services.webhook_update(actor=actor, webhook_id=webhook.pk, active=not webhook.active)
                messages.success(request, _("Webhook switched off.") if webhook.active else _("Webhook switched on."))
                return redirect("integrations-webhook-detail", pk=webhook.pk)
            if action == "rotate":
                rotated = services.webhook_rotate_secret(actor=actor, webhook_id=webhook.pk)
                webhook = rotated
            elif action == "replay":
                replay_form = ReplayRangeForm(request.POST)
                if replay_form.is_valid():
                    count = services.deliveries_replay_range(
                        actor=actor, webhook_id=webhook.pk, **replay_form.cleaned_data
                    )
                    messages.success(request, _("%(count)d deliveries will be sent again.") % {"count": count})
                    return redirect("integrations-webhook-detail", pk=webhook.pk)
        except ServiceError as exc:
            _errors_to_form(replay_form, exc.errors)
        except Conflict as exc:
            messages.error(request, str(exc))
    wanted = request.GET.get("status")
    wanted = wanted if wanted in DeliveryStatus.values else None
    deliveries = list(selectors.deliveries_of(webhook_id=webhook.pk, status=wanted).select_related("lead")[:LOG_SHOWN])
    last = selectors.last_attempts([d.pk for d in deliveries])
    return render(
        request,
        "integrations/webhook_detail.html",
        {
            "webhook": webhook,
            "rows": [(d, last.get(d.pk)) for d in deliveries],
            "replay_form": replay_form,
            "rotated": rotated,
            "statuses": DeliveryStatus.choices,
            "wanted": wanted,
        },
    )


@login_required
@require_POST
def delivery_replay(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _admin(request)
    delivery = get_object_or_404(selectors.deliveries_visible_to(request.user), pk=pk)
    try:
        services.deliveries_replay(actor=actor, delivery_ids=[delivery.pk])
    except Conflict as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The delivery will be sent again."))
    return redirect("integrations-webhook-detail", pk=delivery.webhook_id)

"""Signing in and out, and the answer to a locked-out login (django-axes calls
`locked_out`, settings AXES_LOCKOUT_CALLABLE): the login page again, its error saying why
and for how long, 429."""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from accounts import selectors, services

LOGIN_TEMPLATE = "registration/login.html"

login = auth_views.LoginView.as_view(template_name=LOGIN_TEMPLATE, redirect_authenticated_user=True)
logout = auth_views.LogoutView.as_view()


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None, credentials=None) -> HttpResponse:
    """Same page for the app and the admin login: both share one lockout, one message."""
    cool_off = settings.AXES_COOLOFF_TIME
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
    message = ngettext(
        "Too many failed logins for this account from your address. Try again in %(minutes)d minute.",
        "Too many failed logins for this account from your address. Try again in %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username[:150]})
    response = render(
        request,
        LOGIN_TEMPLATE,
        {"form": form, "lockout_message": message, "next": request.POST.get("next", "")},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    """One's notifications, unread first; POST marks them read (all, or the ids sent)."""
    if request.method == "POST":
        ids = [int(x) for x in request.POST.getlist("id") if x.isdigit()] or None
        services.notifications_mark_read(user=request.user, ids=ids)
        messages.success(request, _("Marked as read."))
        return redirect("notifications")
    return render(request, "accounts/notifications.html", {"items": selectors.notifications_of(request.user)})

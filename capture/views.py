"""Capture pages. Public (no login, each form found by its random site key): the hosted form
`/f/<site_key>/` (plain HTML, works without JavaScript), its no-JavaScript post, its thank-you
page, the embed script and the form's definition the script renders. Marketing's: the form
list, the builder and the review of held submissions."""

from __future__ import annotations

import json
import secrets
from functools import cache
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.signing import BadSignature
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from capture import rules, selectors, services, tokens
from capture.forms import FieldRows, FormCreateForm, FormSettingsForm, rows_initial, rows_to_fields
from capture.models import Form, SubmissionStatus
from capture.throttling import plain_post_throttled
from leadcrm import inputs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.permissions import page_actor

VISITOR_COOKIE = "lc_vid"
FIRST_TOUCH_COOKIE = "lc_ft"
COOKIE_AGE = 365 * 24 * 3600
EMBED_JS = Path(__file__).resolve().parent / "static" / "capture" / "embed.js"
REVIEW_SHOWN = 200


def _form_or_404(site_key: str) -> Form:
    form = selectors.form_by_site_key(site_key)
    if form is None:
        raise Http404("No such form.")
    return form


def _utm(source) -> dict:
    return {k: v[: rules.UTM_MAX] for k in rules.UTM_KEYS if isinstance(v := source.get(k), str) and v}


def _first_touch(request: HttpRequest) -> dict | None:
    try:
        raw = request.get_signed_cookie(FIRST_TOUCH_COOKIE, salt="capture.ft")
    except (KeyError, BadSignature):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return rules.clean_touch(value) or None


def _hosted(request: HttpRequest, form: Form, *, errors: dict | None = None, values: dict | None = None, status=200):
    visitor_id = request.COOKIES.get(VISITOR_COOKIE) or ""
    if not (0 < len(visitor_id) <= 100) or inputs.text_problem(visitor_id):
        visitor_id = secrets.token_urlsafe(16)
    lead = selectors.known_lead(visitor_id=visitor_id, link_token=request.GET.get("lt"))
    rendering = selectors.rendering(form, lead=lead, language=get_language())
    values = values or {}
    hidden = {
        "utm": _utm(values or request.GET),
        "referrer": values.get("_referrer") or request.headers.get("Referer", "")[:2000],
        "page_url": values.get("_page_url") or request.build_absolute_uri()[:2000],
    }
    fields = [
        {**f, "value": values.get(f["name"], ""), "errors": (errors or {}).get(f["name"], [])}
        for f in rendering["fields"]
    ]
    other_errors = {k: v for k, v in (errors or {}).items() if k not in {f["name"] for f in fields}}
    response = render(
        request,
        "capture/hosted.html",
        {
            "form": form,
            "r": rendering,
            "fields": fields,
            "hidden": hidden,
            "visitor_id": visitor_id,
            "other_errors": other_errors,
            "consent_checked": bool(values.get("_consent")),
        },
        status=status,
    )
    response.set_cookie(VISITOR_COOKIE, visitor_id, max_age=COOKIE_AGE, httponly=True, samesite="Lax")
    if _first_touch(request) is None:
        touch = {**hidden["utm"], "referrer": hidden["referrer"], "page_url": hidden["page_url"]}
        response.set_signed_cookie(
            FIRST_TOUCH_COOKIE, json.dumps(touch), salt="capture.ft", max_age=COOKIE_AGE, httponly=True, samesite="Lax"
        )
    return response


@require_GET
def hosted_form(request: HttpRequest, site_key: str) -> HttpResponse:
    """The form on a page of its own: fast plain HTML, no framework, no script needed."""
    return _hosted(request, _form_or_404(site_key))


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


@csrf_exempt  # posted from other sites by design (the copy-paste HTML form): site key, Origin, throttles
@require_POST
def hosted_submit(request: HttpRequest, site_key: str) -> HttpResponse:
    """The no-JavaScript post (the hosted page and the HTML snippet): recorded as the API
    does, then on to the redirect or the thank-you page."""
    form = _form_or_404(site_key)
    origin = request.headers.get("Origin")
    if origin and origin.lower() != _own_origin(request) and not rules.origin_allowed(origin, form.allowed_origins):
        return render(
            request, "capture/refused.html", {"message": _("This site may not post to this form.")}, status=403
        )
    wait = plain_post_throttled(request, form.site_key)
    if wait is not None:
        response = render(
            request, "capture/refused.html", {"message": _("Too many submissions; try again shortly.")}, status=429
        )
        response["Retry-After"] = str(int(wait) + 1)
        return response
    post = request.POST
    names = [f["name"] for f in (*form.fields, *form.progressive)] + [rules.HONEYPOT]
    received = services.Received(
        fields={n: post.get(n) for n in names if n in post},
        consent=post.get("_consent") in ("on", "1", "true"),
        token=post.get("_token", ""),
        visitor_id=(post.get("_visitor") or request.COOKIES.get(VISITOR_COOKIE) or "")[:100],
        utm=_utm(post),
        referrer=post.get("_referrer", "")[:2000],
        page_url=(post.get("_page_url") or request.headers.get("Referer", ""))[:2000],
        first_touch=_first_touch(request),
    )
    try:
        services.submission_receive(
            form=form,
            received=received,
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ServiceError as exc:
        return _hosted(request, form, errors=exc.errors, values=post.dict(), status=400)
    if form.redirect_url:
        return redirect(form.redirect_url)
    return redirect("capture-thanks", site_key=form.site_key)


@require_GET
def hosted_thanks(request: HttpRequest, site_key: str) -> HttpResponse:
    return render(request, "capture/thanks.html", {"form": _form_or_404(site_key)})


@cache
def _embed_source() -> str:
    return EMBED_JS.read_text()


@require_GET
def embed_js(request: HttpRequest, site_key: str) -> HttpResponse:
    """The embed script: renders the form into the host page and posts to the capture API."""
    form = _form_or_404(site_key)
    config = {"base": request.build_absolute_uri("/"), "site_key": form.site_key}
    source = _embed_source().replace('"__CONFIG__"', json.dumps(config), 1)
    response = HttpResponse(source, content_type="application/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def form_definition(request: HttpRequest, site_key: str) -> HttpResponse:
    """What the embed script renders for this visitor (progressive profiling), with a fresh
    render token; readable from the form's allowed origins (CORS)."""
    form = _form_or_404(site_key)
    lead = selectors.known_lead(visitor_id=request.GET.get("visitor_id"), link_token=request.GET.get("lt"))
    response = JsonResponse(selectors.rendering(form, lead=lead, language=request.GET.get("lang") or get_language()))
    origin = request.headers.get("Origin")
    if origin and rules.origin_allowed(origin, form.allowed_origins):
        response["Access-Control-Allow-Origin"] = rules.clean_origin(origin)
    response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


# --- marketing's pages ------------------------------------------------------------------------


def _require_marketing(request: HttpRequest) -> Actor:
    return page_actor(request, Role.MARKETING, message=_("Forms are managed by marketing."))


def _errors(request: HttpRequest, exc: ServiceError) -> None:
    for field, errors in exc.errors.items():
        messages.error(request, f"{field}: {' '.join(errors)}")


DEFAULT_FIELDS = [{"name": "email", "maps_to": "email", "required": True, "label": {"en": "E-mail", "fr": "E-mail"}}]


@login_required
@require_http_methods(["GET", "POST"])
def forms_page(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)
    create = FormCreateForm(request.POST or None)
    if request.method == "POST" and create.is_valid():
        try:
            form = services.form_create(
                actor=actor, data={"name": create.cleaned_data["name"], "fields": DEFAULT_FIELDS}
            )
        except ServiceError as exc:
            _errors(request, exc)
        else:
            messages.success(request, _("Form created: add its fields."))
            return redirect("capture-form-detail", pk=form.pk)
    return render(
        request,
        "capture/forms.html",
        {
            "forms": selectors.forms_visible_to(request.user),
            "create": create,
            "held": selectors.held_count(request.user),
        },
    )


def _snippets(request: HttpRequest, form: Form) -> dict:
    base = request.build_absolute_uri("/").rstrip("/")
    embed = (
        f'<div data-leadcrm-form="{form.site_key}"></div>\n'
        f'<script src="{base}{reverse("capture-embed", kwargs={"site_key": form.site_key})}" async></script>'
    )
    html = render_to_string(
        "capture/_snippet_form.html",
        {
            "form": form,
            "action": base + reverse("capture-submit", kwargs={"site_key": form.site_key}),
            "fields": selectors.rendering(form, lead=None, language="en")["fields"],
            "token": tokens.render_token(form_id=form.pk, asked=[f["name"] for f in form.fields], static=True),
            "honeypot": rules.HONEYPOT,
        },
    )
    return {
        "embed": embed,
        "html": html.strip(),
        "hosted": base + reverse("capture-hosted", kwargs={"site_key": form.site_key}),
    }


@login_required
@require_http_methods(["GET", "POST"])
def form_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The builder: settings, the fields (add, edit, reorder by their order number, remove;
    labels in English and French), the progressive queue, and the snippets to embed it."""
    actor = _require_marketing(request)
    form = get_object_or_404(selectors.forms_visible_to(request.user), pk=pk)
    status = 200
    if request.method == "POST":
        settings_form = FormSettingsForm(request.POST)
        fields = FieldRows(request.POST, prefix="fields")
        progressive = FieldRows(request.POST, prefix="progressive")
        if settings_form.is_valid() and fields.is_valid() and progressive.is_valid():
            data = {
                **settings_form.settings(),
                "fields": rows_to_fields(fields),
                "progressive": rows_to_fields(progressive),
            }
            try:
                services.form_update(actor=actor, form_id=form.pk, data=data)
            except ServiceError as exc:
                _errors(request, exc)
                status = 400
            else:
                messages.success(request, _("Form saved."))
                return redirect("capture-form-detail", pk=form.pk)
        else:
            status = 400
    else:
        settings_form = FormSettingsForm(initial=FormSettingsForm.initial_of(form))
        fields = FieldRows(initial=rows_initial(form.fields), prefix="fields")
        progressive = FieldRows(initial=rows_initial(form.progressive), prefix="progressive")
    return render(
        request,
        "capture/form_detail.html",
        {
            "form": form,
            "settings_form": settings_form,
            "fields": fields,
            "progressive": progressive,
            "snippets": _snippets(request, form),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def submissions_page(request: HttpRequest) -> HttpResponse:
    """Submissions set aside as bot-like (or any status): release them or discard them."""
    actor = _require_marketing(request)
    if request.method == "POST":
        ids = [i for raw in request.POST.getlist("ids") if (i := inputs.int_or_none(raw, minimum=1)) is not None]
        visible = list(selectors.submissions_visible_to(request.user).filter(pk__in=ids).values_list("pk", flat=True))
        try:
            n = services.submissions_review(submission_ids=visible, action=request.POST.get("action", ""), actor=actor)
        except ServiceError as exc:
            _errors(request, exc)
        else:
            messages.success(request, _("%(n)d submissions updated.") % {"n": n})
        return redirect(f"{reverse('capture-submissions')}?status={SubmissionStatus.HELD}")
    wanted = request.GET.get("status") or SubmissionStatus.HELD
    if wanted not in SubmissionStatus.values:
        wanted = SubmissionStatus.HELD
    rows = selectors.submissions_filtered(selectors.submissions_visible_to(request.user), status=wanted)
    return render(
        request,
        "capture/submissions.html",
        {"rows": rows[:REVIEW_SHOWN], "status": wanted, "statuses": SubmissionStatus.choices},
    )

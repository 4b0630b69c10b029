"""Marketing's e-mail pages: templates (list, editor with a live preview on a chosen lead
and a test send) and the dashboard's e-mail performance panel. Reads through selectors,
writes through services."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from leadcrm import inputs
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.permissions import page_actor
from leads import selectors as lead_selectors
from leads.models import Lead
from nurturing import mail_render, selectors, services
from nurturing.forms_mail import EmailTemplateForm, SenderIdentityForm, TopicForm
from nurturing.models import EmailTemplate

PERIOD_DAYS = 30


def _require_marketing(request: HttpRequest) -> Actor:
    return page_actor(request, Role.MARKETING, message=_("E-mail templates are managed by marketing."))


def _form(request: HttpRequest, data=None, initial=None) -> EmailTemplateForm:
    return EmailTemplateForm(
        data, initial=initial, senders=list(selectors.sender_identities()), topics=list(selectors.topics())
    )


def _add_errors(form: EmailTemplateForm, exc: ServiceError) -> None:
    for field, errors in exc.errors.items():
        form.add_error(field if field in form.fields else None, " ".join(errors))


@login_required
@require_http_methods(["GET", "POST"])
def email_templates_page(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)
    form = _form(request, request.POST or None, initial={"kind": "marketing"})
    if request.method == "POST" and form.is_valid():
        try:
            template = services.email_template_create(actor=actor, **form.cleaned_data)
        except ServiceError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Template created."))
            return redirect("email-template-edit", pk=template.pk)
    templates = selectors.email_templates().select_related("sender", "topic").order_by("name")
    return render(
        request,
        "nurturing/email_templates.html",
        {
            "templates": templates,
            "form": form,
            "senders": selectors.sender_identities(),
            "topics": selectors.topics(),
            "sender_form": SenderIdentityForm(),
            "topic_form": TopicForm(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def email_template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(selectors.email_templates(), pk=pk)
    actor = _require_marketing(request)
    initial = {
        "name": template.name,
        "kind": template.kind,
        "subject": template.subject,
        "html": template.html,
        "text": template.text,
        "sender": template.sender_id,
        "topic": template.topic_id,
    }
    form = _form(request, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changed = {k: v for k, v in form.cleaned_data.items() if v != initial[k]}
        try:
            services.email_template_update(actor=actor, template_id=template.pk, **changed)
        except ServiceError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Template saved."))
            return redirect("email-template-edit", pk=template.pk)
    return render(
        request,
        "nurturing/email_template_edit.html",
        {"template": template, "form": form, "fields": mail_render.MERGE_FIELDS},
    )


def _lead_of(request: HttpRequest) -> Lead | None:
    """The lead a preview or a test send is for: an id or an e-mail the caller may see."""
    wanted = (request.POST.get("lead") or "").strip()[:254]
    visible = lead_selectors.leads_visible_to(request.user).select_related("owner", "company")
    if (pk := inputs.int_or_none(wanted, minimum=1)) is not None:
        return visible.filter(pk=pk).first()
    if "@" in wanted and "\x00" not in wanted:
        return visible.filter(email=wanted.lower()).first()
    return None


@login_required
@require_POST
def email_template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor's live preview (htmx): the form's unsaved parts rendered for a real lead."""
    saved = get_object_or_404(selectors.email_templates(), pk=pk)
    _require_marketing(request)
    lead = _lead_of(request)
    context: dict = {"error": ""}
    if lead is None:
        context["error"] = _("Choose a lead you may see (its id or e-mail).")
    else:
        parts = {k: request.POST.get(k, getattr(saved, k)) for k in ("subject", "html", "text")}
        errors = mail_render.template_errors(**parts)
        if errors:
            context["error"] = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
        else:
            draft = EmailTemplate(kind=request.POST.get("kind", saved.kind), **parts)
            subject, html, text = services.message_render(template=draft, lead=lead)
            context.update(lead=lead, subject=subject, html=html, text=text)
    return render(request, "nurturing/_email_preview.html", context)


@login_required
@require_POST
def email_template_test(request: HttpRequest, pk: int) -> HttpResponse:
    """The editor's test send (htmx): the saved template, for a real lead, to the caller."""
    template = get_object_or_404(selectors.email_templates(), pk=pk)
    actor = _require_marketing(request)
    lead = _lead_of(request)
    if lead is None:
        return render(
            request, "nurturing/_email_test.html", {"error": _("Choose a lead you may see (its id or e-mail).")}
        )
    try:
        sent_to = services.template_test_send(
            actor=actor, template_id=template.pk, lead=lead, to=(request.POST.get("to") or "").strip()[:254]
        )
    except ServiceError as exc:
        return render(
            request, "nurturing/_email_test.html", {"error": "; ".join(" ".join(v) for v in exc.errors.values())}
        )
    return render(request, "nurturing/_email_test.html", {"sent_to": sent_to})


def _date(request: HttpRequest, name: str) -> dt.date | None:
    try:
        return inputs.parse_date(request.GET.get(name, ""))
    except ValueError:
        return None


def _period(request: HttpRequest) -> tuple[dt.datetime, dt.datetime]:
    """The dashboard's period ([start, end] dates, end included), the last 30 days by default."""
    end = _date(request, "end") or timezone.localdate()
    start = _date(request, "start") or end - dt.timedelta(days=PERIOD_DAYS - 1)
    if start > end:
        start, end = end, start
    tz = timezone.get_current_timezone()
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
    )


@login_required
@require_GET
def email_performance(request: HttpRequest) -> HttpResponse:
    """The dashboard's e-mail panel (loaded by htmx): the messages of the leads the caller
    sees, sent in the period."""
    start, end = _period(request)
    stats = selectors.email_performance(user=request.user, start=start, end=end)
    return render(
        request,
        "nurturing/_email_performance.html",
        {"stats": stats, "start": start.date(), "end": (end - dt.timedelta(days=1)).date()},
    )


def _settings_saved(request: HttpRequest, form, create, done: str) -> HttpResponse:
    """Senders and topics are created from the templates page, which shows them."""
    if form.is_valid():
        try:
            create(**form.cleaned_data)
        except ServiceError as exc:
            messages.error(request, " ".join(m for msgs in exc.errors.values() for m in msgs))
        else:
            messages.success(request, done)
    else:
        messages.error(request, " ".join(f"{f}: {' '.join(e)}" for f, e in form.errors.items()))
    return redirect("email-templates")


@login_required
@require_POST
def sender_identity_add(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)

    def create(**fields):
        return services.sender_identity_create(actor=actor, **fields)

    return _settings_saved(request, SenderIdentityForm(request.POST), create, _("Sender identity added."))


@login_required
@require_POST
def topic_add(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)

    def create(**fields):
        return services.topic_create(actor=actor, **fields)

    return _settings_saved(request, TopicForm(request.POST), create, _("Topic added."))

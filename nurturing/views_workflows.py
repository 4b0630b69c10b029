"""Marketing's workflow pages: the list (trigger, run counts, errors) with a form to create
one, and one workflow's page (edit its trigger, conditions and actions as JSON, switch it
on or off, delete it, read the trace of its recent runs). Reads through selectors, writes
through services: the same rules and errors as the API."""

from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leadcrm.permissions import page_actor
from nurturing import selectors, services
from nurturing.models import Workflow

RUNS_SHOWN = 50
MAX_JSON = 100_000

EXAMPLE_TRIGGER = '{"event": "lead.stage_changed", "to": "MQL"}'
EXAMPLE_ACTIONS = '[{"type": "task", "kind": "call", "due_in_hours": 24, "title": "Call the new MQL"}]'


class JSONText(forms.JSONField):
    """JSON edited as indented text (what was typed comes back as typed when invalid)."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        if value is None:
            return ""
        return json.dumps(value, ensure_ascii=False, indent=2)


class WorkflowForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    active = forms.BooleanField(label=pgettext_lazy("workflow", "Active"), required=False, initial=True)
    trigger = JSONText(
        label=pgettext_lazy("workflow", "Trigger"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 90, "spellcheck": "false", "placeholder": EXAMPLE_TRIGGER}),
        help_text=gettext_lazy(
            'An event ({"event": "lead.stage_changed", "to": "MQL"}, {"event": "lead.score_changed", "crosses": 70}, '
            '{"event": "lead.activity_recorded", "type": "form_submit"}), {"segment_entered": id}, '
            '{"inactive_days": 30} or {"date_property": "renewal_date", "offset_days": -30}.'
        ),
    )
    conditions = JSONText(
        label=pgettext_lazy("workflow", "Conditions"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 90, "spellcheck": "false", "placeholder": "{}"}),
        help_text=gettext_lazy('Empty or {} always holds; e.g. {"field": "grade", "op": "in", "value": ["A", "B"]}.'),
    )
    actions = JSONText(
        label=gettext_lazy("Actions"),
        widget=forms.Textarea(attrs={"rows": 8, "cols": 90, "spellcheck": "false", "placeholder": EXAMPLE_ACTIONS}),
        help_text=gettext_lazy(
            "A list, run in order: email, task, update, notify_owner, move_stage, enroll, assign, route."
        ),
    )

    def clean(self):
        data = super().clean()
        for name in ("trigger", "conditions", "actions"):
            if name in data and len(json.dumps(data[name])) > MAX_JSON:
                self.add_error(name, _("Too long."))
        return data

    def apply_errors(self, errors: dict[str, list[str]]) -> None:
        """A service's field errors onto the form ("actions[2]" onto the actions field)."""
        for key, problems in errors.items():
            field = key.split("[", 1)[0]
            prefix = f"{key}: " if field != key else ""
            target = field if field in self.fields else None
            for problem in problems:
                self.add_error(target, f"{prefix}{problem}")

    @classmethod
    def of(cls, workflow: Workflow) -> WorkflowForm:
        return cls(
            initial={
                "name": workflow.name,
                "active": workflow.active,
                "trigger": workflow.trigger,
                "conditions": workflow.conditions,
                "actions": workflow.actions,
            }
        )


def _require_marketing(request: HttpRequest) -> Actor:
    return page_actor(request, Role.MARKETING, message=_("Workflows are managed by marketing."))


def _fields(form: WorkflowForm) -> dict:
    data = dict(form.cleaned_data)
    if data.get("conditions") is None:
        data["conditions"] = {}
    return data


@login_required
@require_http_methods(["GET", "POST"])
def workflows_page(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)
    form = WorkflowForm(request.POST or None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        try:
            workflow = services.workflow_create(actor=actor, **_fields(form))
        except ServiceError as exc:
            form.apply_errors(exc.errors)
        else:
            messages.success(request, _("Workflow created."))
            return redirect("workflow-detail", pk=workflow.pk)
    workflows = list(selectors.workflows_visible_to(request.user))
    counts = selectors.workflow_run_counts(workflow_ids=[w.pk for w in workflows], user=request.user)
    return render(
        request,
        "nurturing/workflows.html",
        {"rows": [(w, counts[w.pk]) for w in workflows], "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def workflow_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _require_marketing(request)
    workflow = get_object_or_404(selectors.workflows_visible_to(request.user), pk=pk)
    form = WorkflowForm.of(workflow)
    if request.method == "POST":
        action = request.POST.get("action", "save")
        try:
            if action == "delete":
                services.workflow_delete(actor=actor, workflow_id=workflow.pk)
                messages.success(request, _("Workflow deleted."))
                return redirect("workflows")
            if action == "toggle":
                services.workflow_update(actor=actor, workflow_id=workflow.pk, active=not workflow.active)
                messages.success(request, _("Workflow switched on.") if not workflow.active else _("Workflow paused."))
                return redirect("workflow-detail", pk=workflow.pk)
            form = WorkflowForm(request.POST)
            if form.is_valid():
                services.workflow_update(actor=actor, workflow_id=workflow.pk, **_fields(form))
                messages.success(request, _("Workflow saved."))
                return redirect("workflow-detail", pk=workflow.pk)
        except ServiceError as exc:
            if action in ("delete", "toggle"):
                for key, problems in exc.errors.items():
                    messages.error(request, f"{key}: {' '.join(problems)}")
                return redirect("workflow-detail", pk=workflow.pk)
            form.apply_errors(exc.errors)
    runs = selectors.workflow_runs(workflow_id=workflow.pk, user=request.user).select_related("lead")[:RUNS_SHOWN]
    counts = selectors.workflow_run_counts(workflow_ids=[workflow.pk], user=request.user)[workflow.pk]
    return render(
        request,
        "nurturing/workflow_detail.html",
        {"workflow": workflow, "form": form, "runs": runs, "counts": counts},
    )

"""Sequence pages: the list, the builder (steps in order, added, edited, moved and deleted
on a draft; saving makes a version), per-step and per-variant stats with significance,
enrolling a segment; enrolling a lead from its page, the queue or the leads list.

The draft lives in the session (per sequence), so that an edit is never lost between two
requests and a reload shows it; it is checked by the sequence rules on every edit (errors
beside each step) and saved through `sequence_update`, which makes the new version. Reads
through selectors, writes through services."""

from __future__ import annotations

import json
from collections import Counter

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from leadcrm import inputs
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leadcrm.permissions import has_role, page_actor
from leads import selectors as lead_selectors
from nurturing import selectors, sequence_rules, sequence_tree, services, stats
from nurturing.forms_sequences import (
    STEP_LABELS,
    STEP_TYPES,
    NewSequenceForm,
    SequenceSettingsForm,
    default_step,
    step_form,
)
from nurturing.models import EmailTemplate, Segment, Sequence
from nurturing.serializers_sequences import EnrollmentSerializer

# Who may enroll leads by hand (the leads they may see): marketing, admins and sellers.
ENROLLERS = (Role.MARKETING, Role.MANAGER, Role.SDR)
RECENT_ENROLLMENTS = 20
MAX_BULK = 500


def may_enroll(user) -> bool:
    return has_role(user, ENROLLERS)


def _require_marketing(request: HttpRequest) -> Actor:
    return page_actor(request, Role.MARKETING, message=_("Sequences are managed by marketing."))


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _error_text(exc: ServiceError) -> str:
    return "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in exc.errors.items())


# --- words ----------------------------------------------------------------------------------


def outcome_label(outcome: str) -> str:
    return {
        "enrolled": _("Enrolled"),
        "no_consent": _("No marketing consent"),
        "already_enrolled": _("Already enrolled"),
        "reentry": _("Refused by the re-entry rule"),
        "not_found": _("Not found"),
        "inactive": _("The sequence is inactive"),
    }.get(outcome, outcome)


def _outcomes_text(results: dict) -> str:
    counts = Counter(results.values())
    return ", ".join(f"{outcome_label(k)}: {n}" for k, n in sorted(counts.items()))


def step_summary(step: dict, names: dict) -> str:
    """One line saying what a step does (the builder's and the report's rows)."""
    kind = step.get("type")
    if kind == "wait":
        if step.get("until"):
            text = _("until %(date)s") % {"date": step["until"]}
        else:
            parts = []
            days, hours = step.get("days"), step.get("hours")
            if days and step.get("business_days"):
                parts.append(ngettext("%(n)s business day", "%(n)s business days", int(days)) % {"n": days})
            elif days:
                parts.append(ngettext("%(n)s day", "%(n)s days", int(days)) % {"n": days})
            if hours:
                parts.append(ngettext("%(n)s hour", "%(n)s hours", int(hours)) % {"n": hours})
            text = " ".join(parts) or _("no delay")
        window = step.get("window")
        if isinstance(window, dict) and window.get("start"):
            text += " · " + _("sent between %(start)s and %(end)s") % window
        return text
    if kind == "email":
        return names["templates"].get(step.get("template"), _("choose a template"))
    if kind == "split":
        weights = [str(v.get("weight", "?")) for v in step.get("variants") or [] if isinstance(v, dict)]
        return _("%(n)d variants, weights %(weights)s") % {"n": len(weights), "weights": " / ".join(weights)}
    if kind == "branch":
        cond = step.get("if") or {}
        return _("if %(condition)s") % {"condition": json.dumps(cond, ensure_ascii=False) if cond else _("always")}
    if kind == "task":
        title = step.get("title") or ""
        return f"{step.get('kind', 'call')} · {step.get('due_in_hours', 0)} h{' · ' + title if title else ''}"
    if kind == "update":
        return f"{step.get('field', '')} = {step.get('value', '')}"
    if kind == "notify_owner":
        return step.get("text") or _("a notification to the owner")
    if kind == "move_stage":
        return f"→ {step.get('to', '')}"
    if kind == "enroll":
        return names["sequences"].get(step.get("sequence"), _("choose a sequence"))
    return ""


def variant_label(index: int, variant: dict | None = None) -> str:
    letter = chr(ord("A") + index) if index < 26 else str(index + 1)
    name = (variant or {}).get("name") if isinstance(variant, dict) else ""
    return f"{letter} · {name}" if name else letter


# --- the builder's draft --------------------------------------------------------------------


def _draft_key(sequence: Sequence) -> str:
    return f"sequence-draft:{sequence.pk}"


def _saved_steps(sequence: Sequence) -> list:
    return sequence.current_version.steps if sequence.current_version_id else []


def _draft(request: HttpRequest, sequence: Sequence) -> tuple[list, dict]:
    """(the draft's steps, its record {"base": version number}); the saved steps if none."""
    record = request.session.get(_draft_key(sequence))
    version = sequence.current_version.number if sequence.current_version_id else 0
    if not isinstance(record, dict) or not isinstance(record.get("steps"), list):
        return _saved_steps(sequence), {"base": version}
    return record["steps"], record


def _draft_store(request: HttpRequest, sequence: Sequence, steps: list, base: int) -> None:
    request.session[_draft_key(sequence)] = {"steps": steps, "base": base}


def _draft_clear(request: HttpRequest, sequence: Sequence) -> None:
    request.session.pop(_draft_key(sequence), None)


def _choices() -> dict:
    """The ids and names the step forms offer (three queries)."""
    templates = list(EmailTemplate.objects.order_by("name").values_list("pk", "name"))
    sequences = list(Sequence.objects.order_by("name").values_list("pk", "name"))
    segments = list(Segment.objects.order_by("name").values_list("pk", "name"))
    return {"templates": templates, "sequences": sequences, "segments": segments}


def _names(choices: dict) -> dict:
    return {key: dict(values) for key, values in choices.items()}


def _steps_errors(steps: list, choices: dict) -> dict[str, list[str]]:
    return sequence_rules.steps_errors(
        steps,
        template_ids={pk for pk, _ in choices["templates"]},
        sequence_ids={pk for pk, _ in choices["sequences"]},
        segment_ids={pk for pk, _ in choices["segments"]},
    )


def _errors_by_path(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, values in errors.items():
        path = sequence_tree.error_path(key)
        field = key.rsplit(".", 1)[-1] if "." in key else ""
        out.setdefault(path, []).extend(f"{field}: {v}" if field and not field.endswith("]") else v for v in values)
    return out


def _prefix(path: str) -> str:
    return "s" + path.replace(".", "-")


def _nodes(steps: list, *, prefix: str, ctx: dict) -> list[dict]:
    """The draft as nested rows for the template: each step with its summary, its errors,
    its edit form, and its nested lists (a split's variants, a branch's then/else)."""
    nodes = []
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path = f"{prefix}{index}"
        kind = step.get("type", "")
        form = ctx["bound"].get(path) if kind in STEP_LABELS else None
        if form is None and kind in STEP_LABELS:
            form = step_form(step, prefix=_prefix(path), choices=ctx["choices"])
        children = []
        if kind == "split":
            for v, variant in enumerate(step.get("variants") or []):
                variant = variant if isinstance(variant, dict) else {}
                container = f"{path}.variants.{v}.steps"
                children.append(
                    {
                        "label": _("Variant %(label)s · weight %(weight)s")
                        % {"label": variant_label(v, variant), "weight": variant.get("weight", "?")},
                        "container": container,
                        "variant": v,
                        "nodes": _nodes(variant.get("steps") or [], prefix=f"{container}.", ctx=ctx),
                    }
                )
        elif kind == "branch":
            for arm, label in (("then", _("Then")), ("else", _("Else"))):
                container = f"{path}.{arm}"
                children.append(
                    {
                        "label": label,
                        "container": container,
                        "variant": None,
                        "nodes": _nodes(step.get(arm) or [], prefix=f"{container}.", ctx=ctx),
                    }
                )
        nodes.append(
            {
                "path": path,
                "type": kind,
                "label": STEP_LABELS.get(kind, kind),
                "summary": step_summary(step, ctx["names"]),
                "errors": ctx["errors"].get(path, []),
                "form": form,
                "open": path == ctx["open"] or path in ctx["bound"],
                "first": index == 0,
                "last": index == len(steps) - 1,
                "children": children,
                "can_remove_variant": kind == "split" and len(step.get("variants") or []) > 2,
            }
        )
    return nodes


def _builder_context(request, sequence, *, steps=None, record=None, open_path="", bound=None, choices=None) -> dict:
    if steps is None:
        steps, record = _draft(request, sequence)
    choices = choices or _choices()
    errors = _steps_errors(steps, choices)
    by_path = _errors_by_path(errors)
    ctx = {"choices": choices, "names": _names(choices), "errors": by_path, "open": open_path, "bound": bound or {}}
    version = sequence.current_version.number if sequence.current_version_id else 0
    return {
        "sequence": sequence,
        "nodes": _nodes(steps, prefix="", ctx=ctx),
        "general_errors": by_path.get("", []),
        "valid": not errors,
        "changed": steps != _saved_steps(sequence),
        "stale": bool(record) and record.get("base", version) != version,
        "base": (record or {}).get("base", version),
        "step_types": STEP_TYPES,
    }


def _builder_response(request, sequence, **kwargs) -> HttpResponse:
    if _is_htmx(request):
        return render(request, "nurturing/_sequence_builder.html", _builder_context(request, sequence, **kwargs))
    return redirect(reverse("sequence-detail", args=[sequence.pk]) + "#builder")


# --- pages ----------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def sequences_page(request: HttpRequest) -> HttpResponse:
    actor = _require_marketing(request)
    form = NewSequenceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sequence = services.sequence_create(actor=actor, name=form.cleaned_data["name"], steps=[], active=False)
        except ServiceError as exc:
            for field, errors in exc.errors.items():
                form.add_error(field if field in form.fields else None, " ".join(errors))
        else:
            messages.success(request, _("Sequence created: add its steps, then save."))
            return redirect("sequence-detail", pk=sequence.pk)
    sequences = list(selectors.sequences_visible_to(request.user))
    counts = selectors.sequence_enrollment_counts(sequence_ids=[s.pk for s in sequences], user=request.user)
    rows = [
        {
            "sequence": s,
            "version": s.current_version.number if s.current_version_id else None,
            "steps": len(s.current_version.steps) if s.current_version_id else 0,
            "active": counts.get(s.pk, {}).get("active", 0),
            "total": sum(counts.get(s.pk, {}).values()),
        }
        for s in sequences
    ]
    return render(request, "nurturing/sequences.html", {"rows": rows, "form": form})


def _percent(rates: dict) -> dict:
    return {k: (None if v is None else 100.0 * v) for k, v in rates.items()}


def _report(sequence: Sequence, user, metric: str, names: dict) -> dict | None:
    """The current version's report, with the words and percentages the page shows."""
    version = sequence.current_version
    if version is None:
        return None
    rows = selectors.sequence_stats_rows(sequence=sequence, version=version, user=user)
    report = stats.sequence_report(version.steps, rows, metric=metric)
    for row in report["steps"]:
        step = sequence_tree.step_at(version.steps, row["path"]) or {}
        row.update(label=STEP_LABELS.get(row["type"], row["type"]), summary=step_summary(step, names))
        row["pct"] = _percent(row["rates"])
        row["indent"] = "—" * row["depth"]
    for split in report["splits"]:
        step = sequence_tree.step_at(version.steps, split["path"]) or {}
        variants = step.get("variants") or []
        for v in split["variants"]:
            v["label"] = variant_label(v["index"], variants[v["index"]] if v["index"] < len(variants) else None)
            v["pct"] = _percent(v["rates"])
            v["winner"] = v["key"] == split["winner"]
        split["p_rows"] = [(METRIC_LABELS[m], split["p_values"].get(m)) for m in stats.METRICS]
        winner = next((v for v in split["variants"] if v["winner"]), None)
        split["winner_label"] = winner["label"] if winner else ""
    report["enrollments"]["mql_pct"] = (
        None if report["enrollments"]["mql_rate"] is None else 100.0 * report["enrollments"]["mql_rate"]
    )
    report["version"] = version.number
    return report


METRIC_LABELS = {
    "clicked": gettext_lazy("clicks"),
    "replied": gettext_lazy("replies"),
    "mql": gettext_lazy("MQL conversion"),
    "opened": gettext_lazy("opens"),
}


@login_required
@require_http_methods(["GET", "POST"])
def sequence_detail(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _require_marketing(request)
    sequence = get_object_or_404(selectors.sequences_visible_to(request.user), pk=pk)
    settings_form = SequenceSettingsForm(
        request.POST if request.POST.get("action") == "save" else None,
        initial=SequenceSettingsForm.initial_for(sequence),
    )
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "save":
            if settings_form.is_valid():
                steps, _record = _draft(request, sequence)
                fields = settings_form.fields_for_service()
                if steps != _saved_steps(sequence):
                    fields["steps"] = steps
                try:
                    services.sequence_update(
                        actor=actor,
                        sequence_id=sequence.pk,
                        move_running=settings_form.cleaned_data["move_running"],
                        **fields,
                    )
                except ServiceError as exc:
                    messages.error(request, _("Not saved: %(errors)s") % {"errors": _error_text(exc)})
                else:
                    _draft_clear(request, sequence)
                    fresh = Sequence.objects.select_related("current_version").get(pk=sequence.pk)
                    number = fresh.current_version.number if fresh.current_version_id else 0
                    messages.success(request, _("Sequence saved (version %(n)d).") % {"n": number})
                    return redirect("sequence-detail", pk=sequence.pk)
        elif action == "discard":
            _draft_clear(request, sequence)
            messages.success(request, _("Draft discarded."))
            return redirect("sequence-detail", pk=sequence.pk)
        elif action == "enroll_segment":
            segment_id = request.POST.get("segment", "")
            segment = Segment.objects.filter(pk=int(segment_id)).first() if segment_id.isdigit() else None
            if segment is None:
                messages.error(request, _("Choose a segment."))
            else:
                try:
                    results = services.sequence_enroll(actor=actor, sequence_id=sequence.pk, segment_id=segment.pk)
                except (ServiceError, Conflict) as exc:
                    text = _error_text(exc) if isinstance(exc, ServiceError) else str(exc)
                    messages.error(request, text)
                else:
                    messages.success(
                        request,
                        _("Segment %(segment)s: %(outcomes)s.")
                        % {"segment": segment.name, "outcomes": _outcomes_text(results) or _("no member")},
                    )
            return redirect("sequence-detail", pk=sequence.pk)
        else:
            messages.error(request, _("Unknown action."))
            return redirect("sequence-detail", pk=sequence.pk)
    metric = request.GET.get("metric", "clicked")
    metric = metric if metric in stats.METRICS else "clicked"
    choices = _choices()
    context = _builder_context(request, sequence, choices=choices)
    names = _names(choices)
    enrollments = list(
        selectors.enrollments_with_runs(
            selectors.enrollments_visible_to(request.user).filter(sequence=sequence)
        ).select_related("lead")[:RECENT_ENROLLMENTS]
    )
    context.update(
        settings_form=settings_form,
        report=_report(sequence, request.user, metric, names),
        metric=metric,
        metrics=[(m, METRIC_LABELS[m]) for m in stats.METRICS],
        segments=list(selectors.segments_visible_to(request.user).only("id", "name")),
        enrollments=[enrollment_row(e) for e in enrollments],
        versions=selectors.sequence_versions(sequence),
    )
    return render(request, "nurturing/sequence_detail.html", context)


def enrollment_row(enrollment) -> dict:
    """An enrollment as the pages show it: state, next step, its path (the step runs)."""
    current = EnrollmentSerializer.current_step_of(enrollment)
    step = sequence_tree.step_at(enrollment.version.steps, current["path"]) if current else None
    return {
        "enrollment": enrollment,
        "current": current,
        "current_label": STEP_LABELS.get((step or {}).get("type", ""), ""),
        "runs": list(enrollment.step_runs.all()),
    }


@login_required
@require_POST
def sequence_steps(request: HttpRequest, pk: int) -> HttpResponse:
    """One edit of the builder's draft: add, edit, up, down, delete a step; add or remove a
    split's variant. Answers the builder (htmx) or goes back to the page."""
    _require_marketing(request)
    sequence = get_object_or_404(selectors.sequences_visible_to(request.user), pk=pk)
    steps, record = _draft(request, sequence)
    op, path = request.POST.get("op", ""), request.POST.get("path", "")
    choices = _choices()
    open_path, bound = "", {}
    try:
        if op == "add":
            kind = request.POST.get("type", "")
            if kind not in STEP_LABELS:
                raise sequence_tree.PathError(kind)
            container = request.POST.get("container", "")
            new = default_step(
                kind,
                template_ids=[pk for pk, _ in choices["templates"]],
                sequence_ids=[pk for pk, _ in choices["sequences"] if pk != sequence.pk],
            )
            steps = sequence_tree.insert(steps, container, new)
            size = len(sequence_tree.container(steps, container))
            open_path = f"{sequence_tree.to_str(container)}.{size - 1}".lstrip(".")
        elif op == "edit":
            step = sequence_tree.step_at(steps, path)
            if step is None:
                raise sequence_tree.PathError(path)
            form = step_form(step, prefix=_prefix(sequence_tree.to_str(path)), choices=choices, data=request.POST)
            if form.is_valid():
                steps = sequence_tree.replace(steps, path, form.step())
            else:
                bound = {sequence_tree.to_str(path): form}
        elif op in ("up", "down"):
            steps = sequence_tree.move(steps, path, -1 if op == "up" else 1)
        elif op == "delete":
            steps = sequence_tree.remove(steps, path)
        elif op == "variant_add":
            steps = sequence_tree.variant_add(steps, path)
            open_path = sequence_tree.to_str(path)
        elif op == "variant_remove":
            index = request.POST.get("variant", "")
            steps = sequence_tree.variant_remove(steps, path, int(index) if index.isdigit() else -1)
        else:
            raise sequence_tree.PathError(op)
    except sequence_tree.PathError:
        messages.error(request, _("That step is no longer there: the builder was reloaded."))
    else:
        _draft_store(request, sequence, steps, record.get("base", 0))
    return _builder_response(request, sequence, open_path=open_path, bound=bound, choices=choices)


# --- enrolling by hand ----------------------------------------------------------------------


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


def _enroll_actor(request: HttpRequest) -> Actor:
    return page_actor(request, *ENROLLERS, message=_("Your role does not enroll leads."))


def _chosen_sequence(request: HttpRequest) -> Sequence | None:
    pk = inputs.int_or_none(request.POST.get("sequence", ""), minimum=1)
    if pk is None:
        return None
    return selectors.sequences_visible_to(request.user).filter(pk=pk).first()


@login_required
@require_http_methods(["GET", "POST"])
def sequence_enroll_lead(request: HttpRequest, pk: int) -> HttpResponse:
    """Enroll one lead (its page's Sequences panel, the queue's quick action). GET answers
    the small form (the queue loads it into the row)."""
    actor = _enroll_actor(request)
    lead = lead_selectors.visible_lead_or_404(request.user, pk)
    if request.method == "GET":
        context = {"lead": lead, "sequences": selectors.enrollable_sequences(), "htmx": _is_htmx(request)}
        template = "nurturing/_enroll_lead_form.html" if _is_htmx(request) else "nurturing/enroll_lead.html"
        return render(request, template, context)
    sequence = _chosen_sequence(request)
    if sequence is None:
        ok, text = False, _("Choose a sequence.")
    else:
        try:
            results = services.sequence_enroll(actor=actor, sequence_id=sequence.pk, lead_ids=[lead.pk])
        except ServiceError as exc:
            ok, text = False, _error_text(exc)
        else:
            outcome = results.get(lead.pk, "not_found")
            ok = outcome == "enrolled"
            text = (
                _("Enrolled in %(sequence)s.") % {"sequence": sequence.name}
                if ok
                else _("Not enrolled in %(sequence)s: %(reason)s.")
                % {"sequence": sequence.name, "reason": outcome_label(outcome)}
            )
    if _is_htmx(request):
        return render(request, "nurturing/_enroll_result.html", {"ok": ok, "text": text})
    (messages.success if ok else messages.error)(request, text)
    return _back(request, reverse("lead-detail", args=[lead.pk]))


@login_required
@require_POST
def sequence_enroll_leads(request: HttpRequest) -> HttpResponse:
    """The leads list's bulk action: the ticked leads into one sequence (the leads the
    caller may not see answer "not found", as in the API)."""
    actor = _enroll_actor(request)
    ids = sorted({int(x) for x in request.POST.getlist("leads") if x.isdigit() and len(x) <= 18})
    sequence = _chosen_sequence(request)
    if not ids:
        messages.error(request, _("Tick the leads to enroll first."))
    elif len(ids) > MAX_BULK:
        messages.error(request, _("At most %(n)d leads at once.") % {"n": MAX_BULK})
    elif sequence is None:
        messages.error(request, _("Choose a sequence."))
    else:
        try:
            results = services.sequence_enroll(actor=actor, sequence_id=sequence.pk, lead_ids=ids)
        except ServiceError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(
                request,
                _("%(sequence)s: %(outcomes)s.") % {"sequence": sequence.name, "outcomes": _outcomes_text(results)},
            )
    return _back(request, reverse("leads-list"))


@login_required
@require_POST
def sequence_enrollment_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop one enrollment from the lead's Sequences panel (an enrollment of a lead the
    caller may see, else 404)."""
    actor = _enroll_actor(request)
    enrollment = get_object_or_404(selectors.enrollments_visible_to(request.user), pk=pk)
    if services.enrollments_stop(actor=actor, enrollment_ids=[enrollment.pk]):
        messages.success(request, _("Enrollment in %(sequence)s stopped.") % {"sequence": enrollment.sequence.name})
    else:
        messages.error(request, _("This enrollment had already ended."))
    return _back(request, reverse("lead-detail", args=[enrollment.lead_id]))

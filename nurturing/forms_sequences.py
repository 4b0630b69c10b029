"""The sequence builder's forms: one per step type, each read into the step object the API
takes (and filled from one). Only shapes are read here; what a step may say is
nurturing.sequence_rules, applied on every draft edit (to show the errors) and on save."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from leads.models import Stage, TaskKind
from nurturing import conditions

STEP_TYPES = (
    ("wait", _("Wait")),
    ("email", _("Send e-mail")),
    ("split", _("A/B split")),
    ("branch", _("Branch on a condition")),
    ("task", _("Task for the owner")),
    ("update", _("Update a field")),
    ("notify_owner", _("Notify the owner")),
    ("move_stage", _("Move the stage")),
    ("enroll", _("Enroll in another sequence")),
)
STEP_LABELS = dict(STEP_TYPES)
WEEKDAYS = [
    (0, _("Mon")),
    (1, _("Tue")),
    (2, _("Wed")),
    (3, _("Thu")),
    (4, _("Fri")),
    (5, _("Sat")),
    (6, _("Sun")),
]
EXIT_CHOICES = [
    ("reply", _("Replies")),
    ("opt_out", _("Opts out")),
    ("bounce", _("Bounces")),
    ("stage_change", _("Changes stage")),
    ("converted", _("Converts")),
]
REENTRY_CHOICES = [("never", _("Never")), ("after_days", _("After N days")), ("always", _("Always"))]
CONDITION_KINDS = [
    ("always", _("Always (no condition)")),
    ("field", _("A field of the lead")),
    ("segment", _("Member of a segment")),
    ("opened_last", _("Opened the last e-mail")),
    ("clicked_last", _("Clicked the last e-mail")),
    ("json", _("Advanced (JSON)")),
]
NUMERIC_FIELDS = {"score", "fit_score", "engagement_score", "company_size", "owner", "team"}
BLANK = [("", "—")]


def default_step(kind: str, *, template_ids: list[int] = (), sequence_ids: list[int] = ()) -> dict:
    """A new step of this type, as the builder adds it (then edited in place)."""
    return {
        "wait": {"type": "wait", "days": 1},
        "email": {"type": "email", "template": template_ids[0] if template_ids else None},
        "split": {"type": "split", "variants": [{"weight": 50, "steps": []}, {"weight": 50, "steps": []}]},
        "branch": {"type": "branch", "if": {}, "then": [], "else": []},
        "task": {"type": "task", "kind": "call", "due_in_hours": 24},
        "update": {"type": "update", "field": "industry", "value": ""},
        "notify_owner": {"type": "notify_owner"},
        "move_stage": {"type": "move_stage", "to": Stage.MQL.value},
        "enroll": {"type": "enroll", "sequence": sequence_ids[0] if sequence_ids else None},
    }[kind]


class NewSequenceForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))


class SequenceSettingsForm(forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    active = forms.BooleanField(required=False, label=_("Active (new enrollments allowed)"))
    exit_on = forms.MultipleChoiceField(
        choices=EXIT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple, label=_("Exit when the lead")
    )
    reentry = forms.ChoiceField(choices=REENTRY_CHOICES, label=_("Re-entry"))
    reentry_days = forms.IntegerField(required=False, min_value=1, max_value=3650, label=_("N days"))
    move_running = forms.BooleanField(
        required=False, label=_("Move running enrollments to the new version (else they finish on theirs)")
    )

    def clean(self):
        data = super().clean()
        if data.get("reentry") == "after_days" and not data.get("reentry_days"):
            self.add_error("reentry_days", _("How many days before a lead may enter again?"))
        return data

    def fields_for_service(self) -> dict:
        data = self.cleaned_data
        reentry = f"after_days:{data['reentry_days']}" if data["reentry"] == "after_days" else data["reentry"]
        return {"name": data["name"], "active": data["active"], "exit_on": list(data["exit_on"]), "reentry": reentry}

    @staticmethod
    def initial_for(sequence) -> dict:
        return {
            "name": sequence.name,
            "active": sequence.active,
            "exit_on": list(sequence.exit_on or []),
            "reentry": sequence.reentry,
            "reentry_days": sequence.reentry_days,
        }


# --- one form per step type ------------------------------------------------------------------


class StepForm(forms.Form):
    """Reads its fields into a step (`step()`) and fills them from one (`initial_from`)."""

    kind = ""

    def __init__(self, *args, choices: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.choices = choices or {}

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        return {k: v for k, v in step.items() if k != "type"}

    def step(self) -> dict:
        return {"type": self.kind, **{k: v for k, v in self.cleaned_data.items() if v not in (None, "")}}


class WaitForm(StepForm):
    kind = "wait"
    days = forms.IntegerField(required=False, min_value=0, max_value=3650, label=_("Days"))
    hours = forms.IntegerField(required=False, min_value=0, max_value=87600, label=_("Hours"))
    business_days = forms.BooleanField(required=False, label=_("Business days only"))
    until = forms.DateField(required=False, label=_("Or until"), widget=forms.DateInput(attrs={"type": "date"}))
    window_start = forms.TimeField(
        required=False, label=_("Send between"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    window_end = forms.TimeField(
        required=False, label=_("and"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    window_days = forms.TypedMultipleChoiceField(
        coerce=int, choices=WEEKDAYS, required=False, widget=forms.CheckboxSelectMultiple, label=_("on")
    )

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        window = step.get("window") or {}
        return {
            "days": step.get("days"),
            "hours": step.get("hours"),
            "business_days": bool(step.get("business_days")),
            "until": (step.get("until") or "")[:10] or None,
            "window_start": window.get("start"),
            "window_end": window.get("end"),
            "window_days": window.get("days", []),
        }

    def step(self) -> dict:
        data = self.cleaned_data
        out: dict = {"type": "wait"}
        if data.get("until"):
            out["until"] = data["until"].isoformat()
        else:
            for key in ("days", "hours"):
                if data.get(key):
                    out[key] = data[key]
            if data.get("business_days"):
                out["business_days"] = True
        if data.get("window_start") and data.get("window_end"):
            out["window"] = {
                "start": data["window_start"].strftime("%H:%M"),
                "end": data["window_end"].strftime("%H:%M"),
                "days": sorted(data.get("window_days") or range(7)),
            }
        if len(out) == 1:
            out["days"] = 0
        return out


class EmailForm(StepForm):
    kind = "email"
    template = forms.TypedChoiceField(coerce=int, label=_("Template"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = self.choices.get("templates", [])


class SplitForm(StepForm):
    """The variants' names and weights (their steps are edited in the tree)."""

    kind = "split"

    def __init__(self, *args, variants: int = 2, **kwargs):
        super().__init__(*args, **kwargs)
        for n in range(variants):
            letter = chr(ord("A") + n) if n < 26 else str(n + 1)
            self.fields[f"name_{n}"] = forms.CharField(
                required=False, max_length=100, label=_("Variant %(letter)s name") % {"letter": letter}
            )
            self.fields[f"weight_{n}"] = forms.IntegerField(
                min_value=0, max_value=1000, label=_("Variant %(letter)s weight") % {"letter": letter}
            )
        self.variants = variants

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        out = {}
        for n, variant in enumerate(step.get("variants") or []):
            if isinstance(variant, dict):
                out[f"weight_{n}"] = variant.get("weight", 1)
                out[f"name_{n}"] = variant.get("name", "")
        return out

    def step(self) -> dict:
        variants = []
        for n in range(self.variants):
            variant = {"weight": self.cleaned_data[f"weight_{n}"]}
            if self.cleaned_data.get(f"name_{n}"):
                variant["name"] = self.cleaned_data[f"name_{n}"]
            variants.append(variant)
        return {"type": "split", "variants": variants}  # the tree keeps each variant's steps


class BranchForm(StepForm):
    kind = "branch"
    condition = forms.ChoiceField(choices=CONDITION_KINDS, label=_("If"))
    field = forms.ChoiceField(required=False, label=_("Field"))
    property_key = forms.CharField(required=False, max_length=100, label=_("or custom field"))
    op = forms.ChoiceField(required=False, choices=[(op, op) for op in conditions.OPS], label=_("Operator"))
    value = forms.CharField(required=False, max_length=500, label=_("Value (a list: comma-separated)"))
    segment = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label=_("Segment"))
    raw = forms.CharField(required=False, max_length=20_000, widget=forms.Textarea(attrs={"rows": 3}), label=_("JSON"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["field"].choices = BLANK + [(name, name) for name in sorted(conditions.FIELDS)]
        self.fields["segment"].choices = BLANK + list(self.choices.get("segments", []))

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        cond = step.get("if") or {}
        if not cond:
            return {"condition": "always"}
        if set(cond) == {"segment"}:
            return {"condition": "segment", "segment": cond["segment"]}
        for flag in ("opened_last", "clicked_last"):
            if cond == {flag: True}:
                return {"condition": flag}
        if set(cond) <= {"field", "op", "value"} and isinstance(cond.get("field"), str):
            name = cond["field"]
            value = cond.get("value")
            text = ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else value)
            if name.startswith(conditions.PROPERTIES):
                return {"condition": "field", "property_key": name[len(conditions.PROPERTIES) :], "op": cond.get("op"),
                        "value": text}  # fmt: skip
            return {"condition": "field", "field": name, "op": cond.get("op"), "value": text}
        return {"condition": "json", "raw": json.dumps(cond)}

    def clean(self):
        data = super().clean()
        kind = data.get("condition")
        if kind == "field" and not (data.get("field") or data.get("property_key")):
            self.add_error("field", _("Choose a field."))
        if kind == "segment" and not data.get("segment"):
            self.add_error("segment", _("Choose a segment."))
        if kind == "json":
            try:
                data["parsed"] = json.loads(data.get("raw") or "{}")
            except ValueError:
                self.add_error("raw", _("Not valid JSON."))
        return data

    def _value(self, name: str, op: str):
        text = (self.cleaned_data.get("value") or "").strip()
        if op in ("set", "unset"):
            return None

        def one(item: str):
            if name in NUMERIC_FIELDS:
                try:
                    return int(item)
                except ValueError:
                    return item
            return item

        if op in ("in", "not_in"):
            return [one(item.strip()) for item in text.split(",") if item.strip()]
        return one(text)

    def step(self) -> dict:
        data = self.cleaned_data
        kind = data["condition"]
        if kind == "always":
            cond: object = {}
        elif kind == "segment":
            cond = {"segment": data["segment"]}
        elif kind in ("opened_last", "clicked_last"):
            cond = {kind: True}
        elif kind == "json":
            cond = data.get("parsed", {})
        else:
            name = f"{conditions.PROPERTIES}{data['property_key']}" if data.get("property_key") else data["field"]
            op = data.get("op") or "eq"
            cond = {"field": name, "op": op}
            if op not in ("set", "unset"):
                cond["value"] = self._value(name, op)
        return {"type": "branch", "if": cond}


class TaskForm(StepForm):
    kind = "task"
    task_kind = forms.ChoiceField(choices=TaskKind.choices, label=_("Kind"))
    due_in_hours = forms.IntegerField(min_value=0, max_value=24 * 365, label=_("Due in (hours)"))
    title = forms.CharField(required=False, max_length=200, label=_("Title"))
    notes = forms.CharField(required=False, max_length=500, label=_("Notes"))

    @classmethod
    def initial_from(cls, step: dict) -> dict:
        return {"task_kind": step.get("kind", "call"), "due_in_hours": step.get("due_in_hours", 24),
                "title": step.get("title", ""), "notes": step.get("notes", "")}  # fmt: skip

    def step(self) -> dict:
        data = self.cleaned_data
        out = {"type": "task", "kind": data["task_kind"], "due_in_hours": data["due_in_hours"]}
        for key in ("title", "notes"):
            if data.get(key):
                out[key] = data[key]
        return out


class UpdateForm(StepForm):
    kind = "update"
    field = forms.CharField(max_length=120, label=_("Field (or properties.<key>)"))
    value = forms.CharField(required=False, max_length=500, label=_("Value"))

    def step(self) -> dict:
        return {"type": "update", "field": self.cleaned_data["field"], "value": self.cleaned_data.get("value", "")}


class NotifyOwnerForm(StepForm):
    kind = "notify_owner"
    text = forms.CharField(required=False, max_length=500, label=_("Message"))


class MoveStageForm(StepForm):
    kind = "move_stage"
    to = forms.ChoiceField(choices=Stage.choices, label=_("To"))


class EnrollForm(StepForm):
    kind = "enroll"
    sequence = forms.TypedChoiceField(coerce=int, label=_("Sequence"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sequence"].choices = self.choices.get("sequences", [])


STEP_FORMS: dict[str, type[StepForm]] = {
    form.kind: form
    for form in (
        WaitForm,
        EmailForm,
        SplitForm,
        BranchForm,
        TaskForm,
        UpdateForm,
        NotifyOwnerForm,
        MoveStageForm,
        EnrollForm,
    )  # fmt: skip
}


def step_form(step: dict, *, prefix: str, choices: dict, data=None) -> StepForm:
    """The edit form of a step (bound to `data` when given, else filled from the step)."""
    cls = STEP_FORMS[step.get("type", "notify_owner")]
    kwargs: dict = {"prefix": prefix, "choices": choices}
    if cls is SplitForm:
        kwargs["variants"] = len(step.get("variants") or [])
    if data is not None:
        return cls(data, **kwargs)
    return cls(initial=cls.initial_from(step), **kwargs)

"""The marketing page for scoring: rule sets and their rules, thresholds, backtest, the
predictive model. Reads through selectors, writes through services."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts.models import Role
from leadcrm import inputs
from leadcrm.actors import Actor, ActorType
from leadcrm.errors import ServiceError
from leadcrm.permissions import has_role
from scoring import selectors, services
from scoring.models import Operator


def _require_marketing(request: HttpRequest) -> None:
    if not has_role(request.user, (Role.MARKETING,)):
        raise PermissionDenied("Scoring is managed by marketing.")


def _int(value: str | None):
    value = (value or "").strip()
    if not value:
        return None
    try:
        return inputs.parse_int(value, minimum=-inputs.MAX_BIGINT)
    except ValueError:
        return value  # the service refuses it with a clear message


def _float(value: str | None):
    value = (value or "").strip()
    try:
        return float(value) if value else None
    except ValueError:
        return value


def _json_or_text(value: str | None):
    value = (value or "").strip()
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _rule_data(kind: str, post) -> dict:
    if kind == "fit":
        return {
            "name": post.get("name", ""),
            "field": post.get("field", "").strip(),
            "operator": post.get("operator", ""),
            "value": _json_or_text(post.get("value")),
            "points": _int(post.get("points")),
        }
    return {
        "name": post.get("name", ""),
        "event_type": post.get("event_type", ""),
        "url_pattern": post.get("url_pattern", ""),
        "property_key": post.get("property_key", "").strip(),
        "property_value": _json_or_text(post.get("property_value")),
        "points": _int(post.get("points")),
        "cap": _int(post.get("cap")),
        "cap_period_days": _int(post.get("cap_period_days")),
        "half_life_days": _float(post.get("half_life_days")),
    }


@login_required
@require_http_methods(["GET", "POST"])
def scoring_page(request: HttpRequest) -> HttpResponse:
    _require_marketing(request)
    actor = Actor(user=request.user, kind=ActorType.USER)
    if request.method == "POST":
        action = request.POST.get("action", "")
        ruleset_id = _int(request.POST.get("ruleset"))
        try:
            if action == "activate":
                services.ruleset_activate(ruleset_id=ruleset_id, actor=actor)
                messages.success(request, "Rule set activated; every lead is being rescored.")
            elif action == "copy":
                copy = services.ruleset_copy(ruleset_id=ruleset_id, actor=actor)
                messages.success(request, f"Draft v{copy.version} created.")
                ruleset_id = copy.pk
            elif action == "thresholds":
                data = {
                    k: _int(request.POST.get(k)) for k in ("mql_threshold", "grade_a_min", "grade_b_min", "grade_c_min")
                }
                services.ruleset_update(ruleset_id=ruleset_id, data=data, actor=actor)
                messages.success(request, "Thresholds saved.")
            elif action in ("add_fit", "add_engagement"):
                kind = action.removeprefix("add_")
                services.rule_create(ruleset_id=ruleset_id, kind=kind, data=_rule_data(kind, request.POST), actor=actor)
                messages.success(request, "Rule added.")
            elif action in ("delete_fit", "delete_engagement"):
                services.rule_delete(
                    kind=action.removeprefix("delete_"), rule_id=_int(request.POST.get("rule")), actor=actor
                )
                messages.success(request, "Rule deleted.")
            elif action == "train":
                model = services.predictive_train(actor=actor)
                messages.success(request, f"Predictive model v{model.version} trained (hold-out AUC {model.auc:.3f}).")
        except ServiceError as exc:
            for field, errors in exc.errors.items():
                messages.error(request, f"{field}: {' '.join(errors)}")
        except (ObjectDoesNotExist, ValueError, TypeError):
            messages.error(request, "Unknown rule set or rule.")
            ruleset_id = None
        return redirect(f"{request.path}?ruleset={ruleset_id}" if isinstance(ruleset_id, int) else request.path)

    rulesets = list(selectors.rulesets())
    chosen = _int(request.GET.get("ruleset"))
    current = next((r for r in rulesets if r.pk == chosen), None) or next(
        (r for r in rulesets if r.is_active), rulesets[0] if rulesets else None
    )
    backtest = None
    if current is not None and request.GET.get("backtest"):
        backtest = services.ruleset_backtest(ruleset_id=current.pk)
        for band in backtest["bands"]:
            band["pct"] = None if band["conversion"] is None else round(100 * band["conversion"], 1)
            band["width"] = f"{100 * (band['conversion'] or 0):.1f}%"
    model = selectors.predictive_model_active()
    return render(
        request,
        "scoring/page.html",
        {
            "rulesets": rulesets,
            "current": current,
            "backtest": backtest,
            "model": model,
            "operators": Operator.choices,
            "fit_fields": services.FIT_FIELDS,
            "event_types": services.EVENT_TYPES,
        },
    )

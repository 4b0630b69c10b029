"""The lead page's privacy panel actions: download the person's export, erase the person.
Same rules as the API: a lead the user cannot see is a 404, a role other than admin or
marketing a 403."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from compliance import selectors, services
from leadcrm.errors import ServiceError
from leadcrm.permissions import page_actor
from leads import selectors as lead_selectors

DENIED = "Only admins and marketing may export or erase a person."


def _privacy_actor(request: HttpRequest, pk: int):
    lead = lead_selectors.visible_lead_or_404(request.user, pk)
    return lead, page_actor(request, *selectors.PRIVACY_ROLES, message=DENIED)


@login_required
@require_GET
def lead_export(request: HttpRequest, pk: int) -> HttpResponse:
    lead, actor = _privacy_actor(request, pk)
    data = services.person_export(lead_id=lead.pk, actor=actor)
    response = HttpResponse(
        json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="lead-{lead.pk}-export.json"'
    return response


@login_required
@require_POST
def lead_erase(request: HttpRequest, pk: int) -> HttpResponse:
    lead, actor = _privacy_actor(request, pk)
    if request.POST.get("confirm") != "erase":
        messages.error(request, _("Tick the box to confirm the erasure: it cannot be undone."))
        return redirect("lead-detail", pk=lead.pk)
    try:
        (result,) = services.leads_erase(lead_ids=[lead.pk], reason=request.POST.get("reason", ""), actor=actor)
    except ServiceError as exc:
        messages.error(request, " ".join(str(m) for msgs in exc.errors.values() for m in msgs))
        return redirect("lead-detail", pk=lead.pk)
    if result.status == "already_erased":
        messages.info(request, _("This person was already erased."))
    else:
        messages.success(request, _("Person erased: their personal data was anonymised."))
    return redirect("lead-detail", pk=lead.pk)

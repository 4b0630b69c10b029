"""The GDPR API: a person's export and erasure. Visible leads only (404 otherwise, as the
lead API); admins and marketing only (`compliance.selectors.PRIVACY_ROLES`, 403 otherwise)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import selectors, services
from compliance.serializers import EraseInputSerializer, ErasureOutputSerializer, PersonExportSerializer
from leadcrm.actors import actor_of
from leads import selectors as lead_selectors

DENIED = "Only admins and marketing may export or erase a person."


def _privacy_lead(request, pk: int):
    """The lead if the caller sees it (else 404) and may handle GDPR requests (else 403)."""
    lead = lead_selectors.visible_lead_or_404(request.user, pk)
    if not selectors.may_handle_privacy(request.user):
        raise PermissionDenied(DENIED)
    return lead


class LeadExport(APIView):
    @extend_schema(responses=PersonExportSerializer, operation_id="lead_gdpr_export")
    def get(self, request, pk: int):
        lead = _privacy_lead(request, pk)
        return Response(services.person_export(lead_id=lead.pk, actor=actor_of(request)))


class LeadErase(APIView):
    @extend_schema(request=EraseInputSerializer, responses=ErasureOutputSerializer, operation_id="lead_gdpr_erase")
    def post(self, request, pk: int):
        lead = _privacy_lead(request, pk)
        data = EraseInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        (result,) = services.leads_erase(
            lead_ids=[lead.pk], reason=data.validated_data["reason"], actor=actor_of(request)
        )
        return Response(ErasureOutputSerializer(result).data)


urlpatterns: list = [
    path("leads/<int:pk>/export/", LeadExport.as_view(), name="lead-export"),
    path("leads/<int:pk>/erase/", LeadErase.as_view(), name="lead-erase"),
]

"""The app's REST API views; `urlpatterns` is included under /api/v1/ by leadcrm/api_urls.py.

`GET /api/v1/leads/{id}/enrichment/`: what providers set on a lead the caller may see;
`POST` the same path runs the enrichment again (admins and marketing), blank fields only."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from enrichment import selectors, services
from leadcrm.actors import actor_of
from leadcrm.permissions import require_role
from leads import selectors as leads_selectors


class EnrichmentChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField(help_text="builtin, http, ...")
    field = serializers.CharField(help_text='A lead field (SPEC.md names), or "properties.<key>".')
    old = serializers.CharField(help_text="The value before: blank, as enrichment only fills blanks.")
    new = serializers.CharField()
    confidence = serializers.FloatField(help_text="The provider's confidence, 0 to 1.")
    created_at = serializers.DateTimeField()


class EnrichmentRunSerializer(serializers.Serializer):
    changes = EnrichmentChangeSerializer(many=True, help_text="The fields this run filled.")
    failed = serializers.ListField(child=serializers.CharField(), help_text="Providers that could not answer.")


class LeadEnrichment(APIView):
    @extend_schema(responses=EnrichmentChangeSerializer(many=True))
    def get(self, request, pk: int):
        lead = leads_selectors.visible_lead_or_404(request.user, pk)
        changes = selectors.lead_enrichment_changes(lead_id=lead.pk)
        return Response(EnrichmentChangeSerializer(changes, many=True).data)

    @extend_schema(request=None, responses=EnrichmentRunSerializer)
    def post(self, request, pk: int):
        lead = leads_selectors.visible_lead_or_404(request.user, pk)
        require_role(request, Role.MARKETING, message="Only admins and marketing run enrichment.")
        result = services.lead_enrich_request(lead_id=lead.pk, actor=actor_of(request))
        body = {"changes": result.changes, "failed": sorted({name for name, _, _ in result.failures})}
        return Response(EnrichmentRunSerializer(body).data)


urlpatterns = [
    path("leads/<int:pk>/enrichment/", LeadEnrichment.as_view(), name="lead-enrichment"),
]

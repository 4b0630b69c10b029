"""The integrations API (SPEC.md `/api/v1/webhooks/`, `/api/v1/api-keys/`): thin views,
input serializer → service/selector → output serializer. Admins only, reads included
(integrations.selectors says why)."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import selectors, services
from integrations.models import DeliveryStatus, Webhook
from integrations.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyInputSerializer,
    ApiKeyOutputSerializer,
    DeliveryDetailSerializer,
    DeliverySerializer,
    ReplayRangeSerializer,
    WebhookInputSerializer,
    WebhookOutputSerializer,
    WebhookWithSecretSerializer,
)
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination, checked_object
from leadcrm.permissions import roles

ADMINS = [IsAuthenticated, roles()]
ADMINS_DETAIL = [IsAuthenticated, roles(detail=True)]
KEYS, HOOKS = ["api keys"], ["webhooks"]


class ApiKeyList(APIView):
    permission_classes = ADMINS

    @extend_schema(tags=KEYS, summary="List API keys", responses=ApiKeyOutputSerializer(many=True))
    def get(self, request):
        return Response(ApiKeyOutputSerializer(selectors.api_keys_visible_to(request.user), many=True).data)

    @extend_schema(
        tags=KEYS,
        summary="Create an API key (shown once)",
        description="Scopes: capture (send leads and events in), read (read leads), write (read and write leads), "
        "admin (the whole API but keys). The key acts as its creator, narrowed to its scopes; "
        "send it as `Authorization: Api-Key <key>`.",
        request=ApiKeyInputSerializer,
        responses={201: ApiKeyCreatedSerializer},
    )
    def post(self, request):
        data = ApiKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key, raw = services.api_key_create(actor=actor_of(request), **data.validated_data)
        key.key = raw
        return Response(ApiKeyCreatedSerializer(key).data, status=status.HTTP_201_CREATED)


class ApiKeyRevoke(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(tags=KEYS, summary="Revoke an API key", request=None, responses=ApiKeyOutputSerializer)
    def post(self, request, pk: int):
        key = checked_object(self, request, selectors.api_keys_visible_to(request.user), pk)
        services.api_keys_revoke(actor=actor_of(request), key_ids=[key.pk])
        key.refresh_from_db()
        return Response(ApiKeyOutputSerializer(key).data)


class WebhookList(APIView):
    permission_classes = ADMINS

    @extend_schema(tags=HOOKS, summary="List webhook subscriptions", responses=WebhookOutputSerializer(many=True))
    def get(self, request):
        return Response(WebhookOutputSerializer(selectors.webhooks_visible_to(request.user), many=True).data)

    @extend_schema(
        tags=HOOKS,
        summary="Subscribe a URL to events",
        description="The answer carries the signing secret (`whsec_...`, Standard Webhooks). Targets on "
        "loopback, private or link-local addresses answer 400 unless LEADCRM_WEBHOOK_ALLOW_PRIVATE.",
        request=WebhookInputSerializer,
        responses={201: WebhookWithSecretSerializer},
    )
    def post(self, request):
        data = WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = services.webhook_create(actor=actor_of(request), **data.validated_data)
        return Response(WebhookWithSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)


def _webhook(view, request, pk: int) -> Webhook:
    return checked_object(view, request, selectors.webhooks_visible_to(request.user), pk)


class WebhookDetail(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(tags=HOOKS, summary="Read a webhook subscription", responses=WebhookOutputSerializer)
    def get(self, request, pk: int):
        return Response(WebhookOutputSerializer(_webhook(self, request, pk)).data)

    @extend_schema(
        tags=HOOKS,
        summary="Edit a webhook subscription",
        description="`active: true` switches a disabled endpoint on again and clears its failure record.",
        request=WebhookInputSerializer,
        responses=WebhookOutputSerializer,
    )
    def patch(self, request, pk: int):
        webhook = _webhook(self, request, pk)
        data = WebhookInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        webhook = services.webhook_update(actor=actor_of(request), webhook_id=webhook.pk, **fields)
        return Response(WebhookOutputSerializer(webhook).data)

    @extend_schema(tags=HOOKS, summary="Delete a webhook subscription (and its log)", responses={204: None})
    def delete(self, request, pk: int):
        webhook = _webhook(self, request, pk)
        services.webhook_delete(actor=actor_of(request), webhook_id=webhook.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecret(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(
        tags=HOOKS,
        summary="Rotate the signing secret",
        description="A new secret; for 24 hours messages carry a second signature made with the previous one.",
        request=None,
        responses=WebhookWithSecretSerializer,
    )
    def post(self, request, pk: int):
        webhook = _webhook(self, request, pk)
        webhook = services.webhook_rotate_secret(actor=actor_of(request), webhook_id=webhook.pk)
        return Response(WebhookWithSecretSerializer(webhook).data)


class DeliveryPagination(StableCursorPagination):
    ordering = ("-created_at", "-id")


class WebhookDeliveries(GenericAPIView):
    """The delivery log of one subscription, newest first."""

    permission_classes = ADMINS
    pagination_class = DeliveryPagination
    serializer_class = DeliverySerializer
    queryset = Webhook.objects.none()

    @extend_schema(
        tags=HOOKS,
        operation_id="webhook_deliveries",
        summary="A webhook's deliveries",
        parameters=[OpenApiParameter("status", str, enum=DeliveryStatus.values)],
        responses=DeliverySerializer(many=True),
    )
    def get(self, request, pk: int):
        webhook = _webhook(self, request, pk)
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in DeliveryStatus.values:
            raise serializers.ValidationError({"status": [f"One of: {', '.join(DeliveryStatus.values)}."]})
        page = self.paginate_queryset(selectors.deliveries_of(webhook_id=webhook.pk, status=wanted))
        context = {"last_attempts": selectors.last_attempts([d.pk for d in page])}
        return self.get_paginated_response(DeliverySerializer(page, many=True, context=context).data)


class WebhookReplay(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(
        tags=HOOKS,
        summary="Replay a time range of deliveries",
        description="Every delivery created in [since, until) (only the failed ones with failed_only) is sent "
        "again, with its message id and body. 409 while the webhook is switched off.",
        request=ReplayRangeSerializer,
        responses={202: inline_serializer("WebhookReplayed", {"replayed": serializers.IntegerField()})},
    )
    def post(self, request, pk: int):
        webhook = _webhook(self, request, pk)
        data = ReplayRangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.deliveries_replay_range(actor=actor_of(request), webhook_id=webhook.pk, **data.validated_data)
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)


def _delivery(view, request, pk: int):
    return checked_object(view, request, selectors.deliveries_visible_to(request.user), pk)


class DeliveryDetail(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(tags=HOOKS, summary="One delivery and its attempts", responses=DeliveryDetailSerializer)
    def get(self, request, pk: int):
        delivery = _delivery(self, request, pk)
        context = {"last_attempts": selectors.last_attempts([delivery.pk])}
        return Response(DeliveryDetailSerializer(delivery, context=context).data)


class DeliveryReplay(APIView):
    permission_classes = ADMINS_DETAIL

    @extend_schema(
        tags=HOOKS,
        summary="Replay one delivery",
        description="Sent again with its message id and body (receivers drop duplicates by `webhook-id`). "
        "409 while the webhook is switched off.",
        request=None,
        responses={202: DeliverySerializer},
    )
    def post(self, request, pk: int):
        delivery = _delivery(self, request, pk)
        services.deliveries_replay(actor=actor_of(request), delivery_ids=[delivery.pk])
        delivery.refresh_from_db()
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("api-keys/", ApiKeyList.as_view(), name="api-key-list"),
    path("api-keys/<int:pk>/revoke/", ApiKeyRevoke.as_view(), name="api-key-revoke"),
    path("webhooks/", WebhookList.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", WebhookDetail.as_view(), name="webhook-detail"),
    path("webhooks/<int:pk>/rotate-secret/", WebhookRotateSecret.as_view(), name="webhook-rotate-secret"),
    path("webhooks/<int:pk>/deliveries/", WebhookDeliveries.as_view(), name="webhook-deliveries"),
    path("webhooks/<int:pk>/replay/", WebhookReplay.as_view(), name="webhook-replay"),
    path("webhook-deliveries/<int:pk>/", DeliveryDetail.as_view(), name="webhook-delivery-detail"),
    path("webhook-deliveries/<int:pk>/replay/", DeliveryReplay.as_view(), name="webhook-delivery-replay"),
]

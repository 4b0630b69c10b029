"""Thin REST views of the e-mail completions: sender identities, topics, a template's test
send. Marketing (and admins) read and write them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.api import checked_object
from leadcrm.permissions import roles
from leads.selectors import lead_ids_visible_to, visible_lead_or_404
from nurturing import selectors, services
from nurturing.serializers_mail import (
    ConsentConfirmationInputSerializer,
    ConsentConfirmationSerializer,
    SenderIdentityInputSerializer,
    SenderIdentityOutputSerializer,
    TestSendInputSerializer,
    TestSendSerializer,
    TopicInputSerializer,
    TopicOutputSerializer,
)

PERMISSIONS = [IsAuthenticated, roles(read=(Role.MARKETING,), write=(Role.MARKETING,))]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(read=(Role.MARKETING,), write=(Role.MARKETING,), detail=True)]


class SenderIdentityList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=SenderIdentityOutputSerializer(many=True))
    def get(self, request):
        return Response(SenderIdentityOutputSerializer(selectors.sender_identities(), many=True).data)

    @extend_schema(request=SenderIdentityInputSerializer, responses={201: SenderIdentityOutputSerializer})
    def post(self, request):
        data = SenderIdentityInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sender = services.sender_identity_create(actor=actor_of(request), **data.validated_data)
        return Response(SenderIdentityOutputSerializer(sender).data, status=status.HTTP_201_CREATED)


class SenderIdentityDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS

    @extend_schema(responses=SenderIdentityOutputSerializer)
    def get(self, request, pk: int):
        return Response(
            SenderIdentityOutputSerializer(checked_object(self, request, selectors.sender_identities(), pk)).data
        )

    @extend_schema(request=SenderIdentityInputSerializer, responses=SenderIdentityOutputSerializer)
    def patch(self, request, pk: int):
        sender = checked_object(self, request, selectors.sender_identities(), pk)
        data = SenderIdentityInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        sender = services.sender_identity_update(actor=actor_of(request), sender_id=sender.pk, **fields)
        return Response(SenderIdentityOutputSerializer(sender).data)


class TopicList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=TopicOutputSerializer(many=True))
    def get(self, request):
        return Response(TopicOutputSerializer(selectors.topics(), many=True).data)

    @extend_schema(request=TopicInputSerializer, responses={201: TopicOutputSerializer})
    def post(self, request):
        data = TopicInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        topic = services.topic_create(actor=actor_of(request), **data.validated_data)
        return Response(TopicOutputSerializer(topic).data, status=status.HTTP_201_CREATED)


class EmailTemplateTestSend(APIView):
    """The template rendered for a real lead (one the caller may see) and sent to the caller,
    subject marked [TEST]: recorded nowhere as a message to the lead (audited)."""

    permission_classes = DETAIL_PERMISSIONS

    @extend_schema(request=TestSendInputSerializer, responses=TestSendSerializer)
    def post(self, request, pk: int):
        template = checked_object(self, request, selectors.email_templates(), pk)
        data = TestSendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = visible_lead_or_404(request.user, data.validated_data["lead"], "owner", "company")
        sent_to = services.template_test_send(
            actor=actor_of(request), template_id=template.pk, lead=lead, to=data.validated_data.get("to", "")
        )
        return Response({"sent_to": sent_to})


class ConsentConfirmationRequest(APIView):
    """Double opt-in for given leads (a form of another site, an imported list): each one
    not yet opted in becomes pending and gets a confirmation e-mail at once; its click opts
    it in. A lead the caller may not see is "not_found"."""

    permission_classes = [IsAuthenticated, roles(write=(Role.MARKETING,))]

    @extend_schema(request=ConsentConfirmationInputSerializer, responses=ConsentConfirmationSerializer)
    def post(self, request):
        data = ConsentConfirmationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = list(dict.fromkeys(data.validated_data["leads"]))
        visible = lead_ids_visible_to(request.user, wanted)
        outcomes = services.consent_confirmation_request(
            lead_ids=[pk for pk in wanted if pk in visible],
            source=data.validated_data.get("source") or "api",
            actor=actor_of(request),
        )
        return Response({"outcomes": {str(pk): outcomes.get(pk, "not_found") for pk in wanted}})

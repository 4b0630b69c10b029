"""Thin REST views for nurturing: input serializer → service/selector → output serializer."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination, checked_object, query_id
from leadcrm.permissions import roles
from leads.selectors import visible_lead_or_404
from nurturing import selectors, services
from nurturing.models import Message, Segment
from nurturing.serializers import (
    EmailTemplateInputSerializer,
    EmailTemplateOutputSerializer,
    MembersChangeSerializer,
    MemberSerializer,
    MessageSerializer,
    PreviewInputSerializer,
    PreviewSerializer,
    SegmentChangeSerializer,
    SegmentCountInputSerializer,
    SegmentCountSerializer,
    SegmentInputSerializer,
    SegmentOutputSerializer,
)

# Marketing (and admins) write segments; every signed-in user reads them (members: the
# leads they may see).
READ_ALL = (Role.MARKETING, Role.MANAGER, Role.SDR)
PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,))]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,), detail=True)]


def _out(request, segments: list[Segment], many: bool = False):
    counts = selectors.segment_counts(segments=segments, user=request.user)
    data = SegmentOutputSerializer(segments if many else segments[0], many=many, context={"counts": counts})
    return data.data


class SegmentList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=SegmentOutputSerializer(many=True))
    def get(self, request):
        return Response(_out(request, list(selectors.segments_visible_to(request.user)), many=True))

    @extend_schema(request=SegmentInputSerializer, responses={201: SegmentOutputSerializer})
    def post(self, request):
        data = SegmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_create(actor=actor_of(request), **data.validated_data)
        return Response(_out(request, [segment]), status=status.HTTP_201_CREATED)


class SegmentCount(APIView):
    """The filter builder's live count: how many leads a filter means now, unsaved."""

    permission_classes = [IsAuthenticated, roles(write=(Role.MARKETING,))]

    @extend_schema(request=SegmentCountInputSerializer, responses=SegmentCountSerializer)
    def post(self, request):
        data = SegmentCountInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"count": selectors.segment_filter_count(raw_filter=data.validated_data["filter"])})


class SegmentDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS

    def _segment(self, request, pk: int) -> Segment:
        return checked_object(self, request, selectors.segments_visible_to(request.user), pk)

    @extend_schema(responses=SegmentOutputSerializer)
    def get(self, request, pk: int):
        return Response(_out(request, [self._segment(request, pk)]))

    @extend_schema(request=SegmentInputSerializer, responses=SegmentOutputSerializer)
    def patch(self, request, pk: int):
        segment = self._segment(request, pk)
        data = SegmentInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        segment = services.segment_update(actor=actor_of(request), segment_id=segment.pk, **fields)
        return Response(_out(request, [segment]))

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        segment = self._segment(request, pk)
        services.segment_delete(actor=actor_of(request), segment_id=segment.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembersPagination(StableCursorPagination):
    ordering = ("-id",)


class SegmentMembers(GenericAPIView):
    permission_classes = DETAIL_PERMISSIONS
    pagination_class = MembersPagination
    serializer_class = MemberSerializer
    queryset = Segment.objects.none()  # the path's `pk` is a segment's (for the schema)

    def _segment(self, request, pk: int) -> Segment:
        return checked_object(self, request, selectors.segments_visible_to(request.user), pk)

    @extend_schema(operation_id="segment_members", responses=MemberSerializer(many=True))
    def get(self, request, pk: int):
        segment = self._segment(request, pk)
        page = self.paginate_queryset(selectors.segment_members(segment=segment, user=request.user))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(request=MembersChangeSerializer, responses=SegmentOutputSerializer)
    def post(self, request, pk: int):
        """Add or remove members of a static list."""
        segment = self._segment(request, pk)
        data = MembersChangeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_members_change(actor=actor_of(request), segment_id=segment.pk, **data.validated_data)
        return Response(_out(request, [segment]))


class SegmentChanges(GenericAPIView):
    """Who entered and left, newest first (what workflows trigger on)."""

    permission_classes = PERMISSIONS
    pagination_class = StableCursorPagination
    serializer_class = SegmentChangeSerializer
    queryset = Segment.objects.none()

    @extend_schema(operation_id="segment_changes", responses=SegmentChangeSerializer(many=True))
    def get(self, request, pk: int):
        segment = get_object_or_404(selectors.segments_visible_to(request.user), pk=pk)
        page = self.paginate_queryset(selectors.segment_changes(segment=segment, user=request.user))
        return self.get_paginated_response(SegmentChangeSerializer(page, many=True).data)


# --- e-mail ------------------------------------------------------------------------------

TEMPLATE_PERMISSIONS = [IsAuthenticated, roles(read=(Role.MARKETING,), write=(Role.MARKETING,))]
TEMPLATE_DETAIL_PERMISSIONS = [IsAuthenticated, roles(read=(Role.MARKETING,), write=(Role.MARKETING,), detail=True)]


class EmailTemplateList(APIView):
    permission_classes = TEMPLATE_PERMISSIONS

    @extend_schema(responses=EmailTemplateOutputSerializer(many=True))
    def get(self, request):
        return Response(EmailTemplateOutputSerializer(selectors.email_templates(), many=True).data)

    @extend_schema(request=EmailTemplateInputSerializer, responses={201: EmailTemplateOutputSerializer})
    def post(self, request):
        data = EmailTemplateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.email_template_create(actor=actor_of(request), **data.validated_data)
        return Response(EmailTemplateOutputSerializer(template).data, status=status.HTTP_201_CREATED)


class EmailTemplateDetail(APIView):
    permission_classes = TEMPLATE_DETAIL_PERMISSIONS

    @extend_schema(responses=EmailTemplateOutputSerializer)
    def get(self, request, pk: int):
        return Response(
            EmailTemplateOutputSerializer(checked_object(self, request, selectors.email_templates(), pk)).data
        )

    @extend_schema(request=EmailTemplateInputSerializer, responses=EmailTemplateOutputSerializer)
    def patch(self, request, pk: int):
        template = checked_object(self, request, selectors.email_templates(), pk)
        data = EmailTemplateInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        template = services.email_template_update(actor=actor_of(request), template_id=template.pk, **fields)
        return Response(EmailTemplateOutputSerializer(template).data)


class EmailTemplatePreview(APIView):
    """The template rendered for a real lead (one the caller may see), without tracking."""

    permission_classes = TEMPLATE_DETAIL_PERMISSIONS

    @extend_schema(request=PreviewInputSerializer, responses=PreviewSerializer)
    def post(self, request, pk: int):
        template = checked_object(self, request, selectors.email_templates(), pk)
        data = PreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = visible_lead_or_404(request.user, data.validated_data["lead"], "owner", "company")
        subject, html, text = services.message_render(template=template, lead=lead)
        return Response({"subject": subject, "html": html, "text": text})


class MessagePagination(StableCursorPagination):
    ordering = ("-queued_at", "-id")


class MessageList(GenericAPIView):
    """Every e-mail of the leads the caller may see; `?lead=`, `?sequence=`."""

    serializer_class = MessageSerializer
    pagination_class = MessagePagination
    queryset = Message.objects.none()

    @extend_schema(
        parameters=[
            OpenApiParameter("lead", OpenApiTypes.INT, description="Only this lead's."),
            OpenApiParameter("sequence", OpenApiTypes.INT, description="Only those a sequence sent."),
        ],
        responses=MessageSerializer(many=True),
    )
    def get(self, request):
        qs = selectors.messages_visible_to(request.user)
        if (lead := query_id(request, "lead")) is not None:
            qs = qs.filter(lead_id=lead)
        if (sequence := query_id(request, "sequence")) is not None:
            qs = qs.filter(enrollment__sequence_id=sequence)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(MessageSerializer(page, many=True).data)


# The e-mail completions' views (sender identities, topics, test sends) live in api_mail.py;
# named here, the one module of nurturing the API's URL conf imports.
from nurturing.api_mail import (  # noqa: E402, F401
    ConsentConfirmationRequest,
    EmailTemplateTestSend,
    SenderIdentityDetail,
    SenderIdentityList,
    TopicList,
)

# The sequence API's views live in api_sequences.py; named here for the same reason.
from nurturing.api_sequences import (  # noqa: E402, F401
    EnrollmentList,
    EnrollmentStop,
    SequenceDetail,
    SequenceEnroll,
    SequenceList,
    SequenceStats,
)

# The workflow API's views live in api_workflows.py; named here for the same reason.
from nurturing.api_workflows import (  # noqa: E402, F401
    WorkflowDetail,
    WorkflowList,
    WorkflowRuns,
)

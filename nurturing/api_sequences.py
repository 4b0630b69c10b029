"""The sequence API: thin views, input serializer → service/selector → output serializer.

Who may do what (SPEC: marketing and admins write nurturing; managers and SDRs read):
- sequences: every signed-in user reads them; marketing and admins create and edit them;
- enrolling leads by id: marketing, admins and the sellers (managers, SDRs), on the leads
  they may see; a lead the caller may not see answers "not_found", like an absent one, so
  its existence is not disclosed. Enrolling a whole segment is marketing's (and admins'):
  a segment spans every team;
- enrollments: each reader sees those of the leads it may see; stopping one is open to the
  roles that may enroll, on an enrollment of a lead they may see (else 404);
- stats: every signed-in user, counted over the leads it may see."""

from __future__ import annotations

from collections import Counter

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination, checked_object, query_id
from leadcrm.errors import ServiceError
from leadcrm.permissions import has_role, roles
from nurturing import selectors, services, stats
from nurturing.models import Enrollment, Sequence
from nurturing.serializers_sequences import (
    EnrollInputSerializer,
    EnrollmentSerializer,
    EnrollmentStopSerializer,
    EnrollResultSerializer,
    SequenceInputSerializer,
    SequenceOutputSerializer,
    SequenceStatsSerializer,
)

TAG = ["sequences"]
READ_ALL = (Role.MARKETING, Role.MANAGER, Role.SDR)
ENROLLERS = (Role.MARKETING, Role.MANAGER, Role.SDR)
PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,))]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=(Role.MARKETING,), detail=True)]
ENROLL_PERMISSIONS = [IsAuthenticated, roles(read=READ_ALL, write=ENROLLERS, detail=True)]


def _out(request, sequences: list[Sequence], many: bool = False):
    counts = selectors.sequence_enrollment_counts(sequence_ids=[s.pk for s in sequences], user=request.user)
    data = SequenceOutputSerializer(sequences if many else sequences[0], many=many, context={"counts": counts})
    return data.data


def _fresh(sequence_id: int) -> Sequence:
    return Sequence.objects.select_related("current_version").get(pk=sequence_id)


class SequenceList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(tags=TAG, summary="List sequences", responses=SequenceOutputSerializer(many=True))
    def get(self, request):
        return Response(_out(request, list(selectors.sequences_visible_to(request.user)), many=True))

    @extend_schema(
        tags=TAG,
        summary="Create a sequence",
        description="Its steps become version 1. Bad steps answer 400 with errors keyed by the step's path "
        '(e.g. "steps[2].variants[0].steps[1].template").',
        request=SequenceInputSerializer,
        responses={201: SequenceOutputSerializer},
    )
    def post(self, request):
        data = SequenceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        fields.pop("move_running", None)
        sequence = services.sequence_create(actor=actor_of(request), **fields)
        return Response(_out(request, [_fresh(sequence.pk)]), status=status.HTTP_201_CREATED)


class SequenceDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS

    def _sequence(self, request, pk: int) -> Sequence:
        return checked_object(self, request, selectors.sequences_visible_to(request.user), pk)

    @extend_schema(tags=TAG, summary="Read a sequence", responses=SequenceOutputSerializer)
    def get(self, request, pk: int):
        return Response(_out(request, [self._sequence(request, pk)]))

    @extend_schema(
        tags=TAG,
        summary="Edit a sequence",
        description="New `steps` make a new version: running enrollments stay on theirs unless `move_running` is true.",
        request=SequenceInputSerializer,
        responses=SequenceOutputSerializer,
    )
    def patch(self, request, pk: int):
        sequence = self._sequence(request, pk)
        data = SequenceInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        move_running = fields.pop("move_running", False)
        services.sequence_update(actor=actor_of(request), sequence_id=sequence.pk, move_running=move_running, **fields)
        return Response(_out(request, [_fresh(sequence.pk)]))


class SequenceEnroll(APIView):
    permission_classes = ENROLL_PERMISSIONS

    @extend_schema(
        tags=TAG,
        summary="Enroll leads or a segment",
        description='Answers per lead "enrolled" or why not: "no_consent", "already_enrolled", "reentry" '
        '(the re-entry rule), "inactive" (the sequence), "not_found" (absent or not visible to the caller). '
        "Sellers enroll leads they may see; a segment is for marketing and admins.",
        request=EnrollInputSerializer,
        responses=EnrollResultSerializer,
    )
    def post(self, request, pk: int):
        sequence = checked_object(self, request, selectors.sequences_visible_to(request.user), pk)
        data = EnrollInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment_id = data.validated_data.get("segment")
        if segment_id is not None:
            if not has_role(request.user, (Role.MARKETING,)):
                raise PermissionDenied("Enrolling a segment is for marketing.")
            if not selectors.segments_visible_to(request.user).filter(pk=segment_id).exists():
                return Response({"segment": ["Unknown segment."]}, status=status.HTTP_400_BAD_REQUEST)
        results = services.sequence_enroll(
            actor=actor_of(request),
            sequence_id=sequence.pk,
            lead_ids=data.validated_data.get("leads"),
            segment_id=segment_id,
        )
        body = {"results": {str(k): v for k, v in results.items()}, "counts": dict(Counter(results.values()))}
        return Response(EnrollResultSerializer(body).data)


class SequenceStats(APIView):
    permission_classes = [IsAuthenticated, roles(read=READ_ALL, detail=True)]

    @extend_schema(
        tags=TAG,
        summary="Per-step and per-variant statistics",
        description="Counts and rates per step and per A/B variant, MQL conversion of the enrolled leads, "
        "p-values of the variants' difference and whether a winner can be picked at 95 % on `metric` "
        "(clicked, replied, mql, opened). Over one version (the current one by default) and the leads the "
        "caller may see.",
        parameters=[
            OpenApiParameter("version", OpenApiTypes.INT, description="A version number (default: current)."),
            OpenApiParameter("metric", OpenApiTypes.STR, enum=list(stats.METRICS)),
        ],
        responses=SequenceStatsSerializer,
    )
    def get(self, request, pk: int):
        sequence = checked_object(self, request, selectors.sequences_visible_to(request.user), pk)
        number = query_id(request, "version")
        metric = request.query_params.get("metric", "clicked")
        if metric not in stats.METRICS:
            return Response({"metric": [f"One of {', '.join(stats.METRICS)}."]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(SequenceStatsSerializer(sequence_report(sequence, request.user, number, metric)).data)


def sequence_report(sequence: Sequence, user, number: int | None, metric: str) -> dict:
    """The report of one version (the current one unless `number`): empty without it."""
    if number is None:
        version = sequence.current_version
    else:
        version = sequence.versions.filter(number=number).first()
        if version is None:
            raise ServiceError({"version": ["No such version of this sequence."]})
    if version is None:
        report = stats.sequence_report([], {}, metric=metric)
        return {"sequence": sequence.pk, "version": None, **report}
    rows = selectors.sequence_stats_rows(sequence=sequence, version=version, user=user)
    return {
        "sequence": sequence.pk,
        "version": version.number,
        **stats.sequence_report(version.steps, rows, metric=metric),
    }


class EnrollmentPagination(StableCursorPagination):
    ordering = ("-enrolled_at", "-id")


class EnrollmentList(GenericAPIView):
    """Enrollments of the leads the caller may see, newest first, each with every step run."""

    permission_classes = [IsAuthenticated, roles(read=READ_ALL)]
    serializer_class = EnrollmentSerializer
    pagination_class = EnrollmentPagination
    queryset = Enrollment.objects.none()

    @extend_schema(
        tags=TAG,
        summary="List enrollments",
        parameters=[
            OpenApiParameter("lead", OpenApiTypes.INT, description="Only this lead's."),
            OpenApiParameter("sequence", OpenApiTypes.INT, description="Only this sequence's."),
            OpenApiParameter("state", OpenApiTypes.STR, enum=["active", "completed", "exited", "stopped", "failed"]),
        ],
        responses=EnrollmentSerializer(many=True),
    )
    def get(self, request):
        qs = selectors.enrollments_visible_to(request.user)
        lead, sequence = query_id(request, "lead"), query_id(request, "sequence")
        if lead is not None:
            qs = qs.filter(lead_id=lead)
        if sequence is not None:
            qs = qs.filter(sequence_id=sequence)
        state = request.query_params.get("state")
        if state:
            if state not in {"active", "completed", "exited", "stopped", "failed"}:
                return Response({"state": ["Unknown state."]}, status=status.HTTP_400_BAD_REQUEST)
            qs = qs.filter(state=state)
        page = self.paginate_queryset(selectors.enrollments_with_runs(qs))
        return self.get_paginated_response(EnrollmentSerializer(page, many=True).data)


class EnrollmentStop(APIView):
    permission_classes = ENROLL_PERMISSIONS

    @extend_schema(
        tags=TAG,
        summary="Stop an enrollment",
        description="An active enrollment stops at once (nothing more runs); a finished one is left as it is.",
        request=None,
        responses=EnrollmentStopSerializer,
    )
    def post(self, request, pk: int):
        enrollment = checked_object(self, request, selectors.enrollments_visible_to(request.user), pk)
        stopped = services.enrollments_stop(actor=actor_of(request), enrollment_ids=[enrollment.pk])
        fresh = selectors.enrollments_with_runs(selectors.enrollments_visible_to(None)).get(pk=enrollment.pk)
        return Response(EnrollmentStopSerializer({"stopped": stopped, "enrollment": fresh}).data)

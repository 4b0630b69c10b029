"""The capture's REST API (included under /api/v1/ by leadcrm/api_urls.py): marketing's
forms and the review of held submissions, and the public capture endpoint."""

from __future__ import annotations

from django.urls import path
from django.utils.cache import patch_vary_headers
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from capture import rules, selectors, services
from capture.models import Form, Submission, SubmissionStatus
from capture.serializers import (
    CaptureAcceptedSerializer,
    CaptureInputSerializer,
    FormInputSerializer,
    FormOutputSerializer,
    ReviewInputSerializer,
    SubmissionListQuery,
    SubmissionSerializer,
)
from capture.throttling import CaptureIpThrottle, CaptureSiteKeyThrottle
from leadcrm.actors import actor_of
from leadcrm.api import StableCursorPagination, checked_object, query_id
from leadcrm.authentication import TokenAuthentication
from leadcrm.permissions import roles

PERMISSIONS = [IsAuthenticated, roles(write=(Role.MARKETING,))]
DETAIL_PERMISSIONS = [IsAuthenticated, roles(write=(Role.MARKETING,), detail=True)]


class FormList(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(responses=FormOutputSerializer(many=True))
    def get(self, request):
        return Response(FormOutputSerializer(selectors.forms_visible_to(request.user), many=True).data)

    @extend_schema(request=FormInputSerializer, responses={201: FormOutputSerializer})
    def post(self, request):
        data = FormInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        form = services.form_create(actor=actor_of(request), data=data.validated_data)
        return Response(FormOutputSerializer(form).data, status=status.HTTP_201_CREATED)


class FormDetail(APIView):
    permission_classes = DETAIL_PERMISSIONS

    def _form(self, request, pk: int) -> Form:
        return checked_object(self, request, selectors.forms_visible_to(request.user), pk)

    @extend_schema(responses=FormOutputSerializer)
    def get(self, request, pk: int):
        return Response(FormOutputSerializer(self._form(request, pk)).data)

    @extend_schema(request=FormInputSerializer, responses=FormOutputSerializer)
    def patch(self, request, pk: int):
        form = self._form(request, pk)
        data = FormInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        fields = {k: v for k, v in data.validated_data.items() if k in request.data}
        form = services.form_update(actor=actor_of(request), form_id=form.pk, data=fields)
        return Response(FormOutputSerializer(form).data)


class SubmissionList(GenericAPIView):
    """Submissions, newest first (`?status=held` is the review queue; `?form=<id>`)."""

    permission_classes = PERMISSIONS
    pagination_class = StableCursorPagination
    serializer_class = SubmissionSerializer
    queryset = Submission.objects.none()  # for the schema

    @extend_schema(
        operation_id="form_submissions_list",
        parameters=[
            OpenApiParameter("status", str, enum=SubmissionStatus.values),
            OpenApiParameter("form", int, description="A form's id."),
        ],
        responses=SubmissionSerializer(many=True),
    )
    def get(self, request):
        query = SubmissionListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        qs = selectors.submissions_filtered(
            selectors.submissions_visible_to(request.user),
            status=query.validated_data.get("status"),
            form_id=query_id(request, "form"),
        )
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(SubmissionSerializer(page, many=True).data)


class SubmissionReview(APIView):
    """Release a held submission (processed as any other) or discard it."""

    permission_classes = DETAIL_PERMISSIONS

    @extend_schema(request=ReviewInputSerializer, responses=SubmissionSerializer)
    def post(self, request, pk: int):
        submission = checked_object(self, request, selectors.submissions_visible_to(request.user), pk)
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.submissions_review(
            submission_ids=[submission.pk], action=data.validated_data["action"], actor=actor_of(request)
        )
        submission.refresh_from_db()
        return Response(SubmissionSerializer(submission).data)


def _cors(request, response, allowed: frozenset[str] | list[str]):
    origin = request.headers.get("Origin")
    if origin and rules.origin_allowed(origin, list(allowed)):
        response["Access-Control-Allow-Origin"] = rules.clean_origin(origin)
    patch_vary_headers(response, ("Origin",))
    return response


class Capture(APIView):
    """Public form capture: no token (the form's site key and the page's Origin), its own
    throttles per IP and per site key. Answers 202 once the submission is kept; its lead
    follows after commit."""

    # No credentials needed and no session (so no CSRF): only a token that is sent is
    # checked, and a refused one answers 401 as everywhere in the API.
    authentication_classes = [TokenAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [CaptureIpThrottle, CaptureSiteKeyThrottle]
    max_body_bytes = 64 * 1024

    def options(self, request, *args, **kwargs):
        """CORS preflight: allowed for the origins some form lists."""
        response = Response(status=status.HTTP_204_NO_CONTENT)
        origin = request.headers.get("Origin")
        if origin and rules.origin_allowed(origin, list(selectors.origins_allowed_anywhere())):
            response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            response["Access-Control-Max-Age"] = "600"
        return _cors(request, response, selectors.origins_allowed_anywhere())

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method != "OPTIONS" and request.headers.get("Origin") and response.status_code != 403:
            _cors(request, response, selectors.origins_allowed_anywhere())
        return response

    @extend_schema(request=CaptureInputSerializer, responses={202: CaptureAcceptedSerializer}, auth=[])
    def post(self, request):
        data = CaptureInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        form = selectors.form_by_site_key(data.validated_data["site_key"])
        if form is None:
            return Response({"detail": "Unknown site key."}, status=status.HTTP_403_FORBIDDEN)
        if not rules.origin_allowed(request.headers.get("Origin"), form.allowed_origins):
            return Response({"detail": "This origin may not post to this form."}, status=status.HTTP_403_FORBIDDEN)
        v = data.validated_data
        submission = services.submission_receive(
            form=form,
            received=services.Received(
                fields=v["fields"],
                consent=v["consent"],
                token=v["token"],
                visitor_id=v["visitor_id"],
                utm=data.utm(),
                referrer=v["referrer"],
                page_url=v["page_url"],
                first_touch=v["first_touch"],
            ),
            ip=request.META.get("REMOTE_ADDR"),
            user_agent=request.headers.get("User-Agent", ""),
        )
        # A held submission answers as an accepted one: a bot learns nothing.
        shown = SubmissionStatus.ACCEPTED if submission.status == SubmissionStatus.HELD else submission.status
        return Response(
            {"id": submission.pk, "status": shown, "thank_you": form.thank_you, "redirect_url": form.redirect_url},
            status=status.HTTP_202_ACCEPTED,
        )


urlpatterns = [
    path("forms/", FormList.as_view(), name="form-list"),
    path("forms/<int:pk>/", FormDetail.as_view(), name="form-detail"),
    path("form-submissions/", SubmissionList.as_view(), name="form-submission-list"),
    path("form-submissions/<int:pk>/review/", SubmissionReview.as_view(), name="form-submission-review"),
    path("capture/", Capture.as_view(), name="capture"),
]

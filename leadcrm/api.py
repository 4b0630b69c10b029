"""Cross-cutting API pieces: the error shapes and the paging every endpoint shares."""

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from leadcrm import inputs
from leadcrm.errors import Conflict, ServiceError, TransitionRefused


def exception_handler(exc, context):
    """Service errors become 400 with field errors, refused moves 409 naming the guard,
    oversized bodies 413; everything else is DRF's usual answer."""
    if isinstance(exc, TransitionRefused):
        return Response(
            {
                "detail": str(exc),
                "guard": exc.failure.guard,
                "from": exc.lead.stage,
                "to": exc.to,
                **({"details": exc.failure.details} if exc.failure.details else {}),
            },
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, Conflict):
        return Response(
            {"detail": str(exc), "guard": exc.guard, **({"details": exc.details} if exc.details else {})},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, ServiceError):
        return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "Request body too large."}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": exc.messages}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)


class StableCursorPagination(CursorPagination):
    """Cursor paging over an order made total by the id, safe on ties."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = ("-id",)
    # Leads tie on the cursor's field (a bulk import shares one created_at, scores repeat):
    # DRF walks a tie with an offset, which must not be capped at its default 1,000 (the
    # `next` link would then loop forever), over an order made stable by the id.
    offset_cutoff = 10**9

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering[-1].lstrip("-") not in ("id", "pk"):
            ordering = (*ordering, "-id" if ordering[0].startswith("-") else "id")
        return ordering


def query_id(request, name: str) -> int | None:
    """A query parameter that must be an id (`?lead=12`): None when absent, 400 otherwise
    (an empty one included)."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return inputs.parse_int(raw, minimum=1)
    except ValueError as exc:
        raise ValidationError({name: ["An id."]}) from exc


def checked_object(view, request, queryset, pk):
    """The object of `queryset` (what the caller may see) or 404, then the view's object
    permissions (e.g. a write role on it): 404 before 403, so a hidden object stays hidden."""
    obj = get_object_or_404(queryset, pk=pk)
    view.check_object_permissions(request, obj)
    return obj

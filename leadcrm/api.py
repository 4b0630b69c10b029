"""Cross-cutting API pieces: the error shapes every endpoint shares."""

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from leadcrm.errors import Conflict, ServiceError
from leads.services import TransitionRefused


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

"""Admin API for users and teams: admins write; managers read their team; others themselves."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import Notification
from accounts.selectors import teams_visible_to, users_visible_to
from accounts.serializers import (
    NotificationSerializer,
    NotificationsReadOutputSerializer,
    NotificationsReadSerializer,
    TeamSerializer,
    UserSerializer,
)
from leadcrm.actors import actor_of
from leadcrm.permissions import require_role


class UserListCreate(APIView):
    @extend_schema(responses=UserSerializer(many=True))
    def get(self, request):
        users = users_visible_to(request.user).order_by("username")
        return Response(UserSerializer(users, many=True).data)

    @extend_schema(request=UserSerializer, responses={201: UserSerializer})
    def post(self, request):
        require_role(request, message="Only admins manage users and teams.")
        data = UserSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        if not fields.get("password"):
            return Response({"password": ["This field is required."]}, status=status.HTTP_400_BAD_REQUEST)
        user = services.user_create(actor=actor_of(request), **fields)
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetail(APIView):
    @extend_schema(responses=UserSerializer)
    def get(self, request, pk: int):
        return Response(UserSerializer(get_object_or_404(users_visible_to(request.user), pk=pk)).data)

    @extend_schema(request=UserSerializer, responses=UserSerializer)
    def patch(self, request, pk: int):
        user = get_object_or_404(users_visible_to(request.user), pk=pk)
        require_role(request, message="Only admins manage users and teams.")
        data = UserSerializer(user, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=user, actor=actor_of(request), **data.validated_data)
        return Response(UserSerializer(user).data)


class TeamListCreate(APIView):
    @extend_schema(responses=TeamSerializer(many=True))
    def get(self, request):
        return Response(TeamSerializer(teams_visible_to(request.user), many=True).data)

    @extend_schema(request=TeamSerializer, responses={201: TeamSerializer})
    def post(self, request):
        require_role(request, message="Only admins manage users and teams.")
        data = TeamSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(actor=actor_of(request), **data.validated_data)
        return Response(TeamSerializer(team).data, status=status.HTTP_201_CREATED)


class TeamDetail(APIView):
    @extend_schema(responses=TeamSerializer)
    def get(self, request, pk: int):
        return Response(TeamSerializer(get_object_or_404(teams_visible_to(request.user), pk=pk)).data)

    @extend_schema(request=TeamSerializer, responses=TeamSerializer)
    def patch(self, request, pk: int):
        team = get_object_or_404(teams_visible_to(request.user), pk=pk)
        require_role(request, message="Only admins manage users and teams.")
        data = TeamSerializer(team, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            TeamSerializer(services.team_update(team=team, actor=actor_of(request), **data.validated_data)).data
        )


# --- in-app notifications (each user reads and clears their own) -------------------------


class NotificationList(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("unread", OpenApiTypes.BOOL, description="Only unread ones.")],
        responses=NotificationSerializer(many=True),
    )
    def get(self, request):
        qs = Notification.objects.filter(user=request.user)
        if request.query_params.get("unread") in ("1", "true"):
            qs = qs.filter(read_at__isnull=True)
        return Response(NotificationSerializer(qs[:200], many=True).data)


class NotificationsRead(APIView):
    """Mark the given notifications (or all of them) as read."""

    @extend_schema(request=NotificationsReadSerializer, responses=NotificationsReadOutputSerializer)
    def post(self, request):
        data = NotificationsReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        n = services.notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response({"read": n})

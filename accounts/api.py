"""Admin API for users and teams: admins write; managers read their team; others themselves."""

from __future__ import annotations

import zoneinfo

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import Notification, Role, Team, User
from accounts.selectors import teams_visible_to
from leadcrm.actors import actor_of
from leadcrm.permissions import require_role


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    email = serializers.EmailField(required=False, allow_blank=True)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    password = serializers.CharField(write_only=True, required=False, min_length=8, max_length=128)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    capacity = serializers.IntegerField(min_value=0, max_value=100000, required=False)
    weight = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    active = serializers.BooleanField(source="routing_active", required=False)
    languages = serializers.ListField(
        child=serializers.CharField(max_length=20), max_length=50, required=False, allow_empty=True
    )
    skills = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=100, required=False, allow_empty=True
    )
    is_active = serializers.BooleanField(required=False)

    def validate_languages(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip().lower() for v in value if v.strip()))

    def validate_skills(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in value if v.strip()))

    def validate_username(self, value: str) -> str:
        qs = User.objects.filter(username__iexact=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("This username is taken.")
        return value


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    manager = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False)

    def validate_timezone(self, value: str) -> str:
        if value not in zoneinfo.available_timezones():
            raise serializers.ValidationError(f"Unknown time zone: {value!r}.")
        return value

    def validate_name(self, value: str) -> str:
        qs = Team.objects.filter(name__iexact=value)
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("A team with this name exists.")
        return value


def users_visible_to(user: User):
    if user.is_admin_role:
        return User.objects.all()
    if user.role == Role.MANAGER and user.team_id:
        return User.objects.filter(Q(team_id=user.team_id) | Q(pk=user.pk))
    return User.objects.filter(pk=user.pk)


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


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "kind", "text", "lead_id", "read_at", "created_at")


class NotificationsReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=1000)


class NotificationsReadOutputSerializer(serializers.Serializer):
    read = serializers.IntegerField(help_text="How many were marked read.")


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

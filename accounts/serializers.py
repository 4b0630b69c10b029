"""Input and output serializers of the users, teams and notifications API. None of them
saves: accounts.services writes."""

from __future__ import annotations

import zoneinfo

from rest_framework import serializers

from accounts.models import Notification, Role, Team, User


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


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ("id", "kind", "text", "lead_id", "read_at", "created_at")


class NotificationsReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=1000)


class NotificationsReadOutputSerializer(serializers.Serializer):
    read = serializers.IntegerField(help_text="How many were marked read.")

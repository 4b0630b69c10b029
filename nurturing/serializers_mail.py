"""Shapes of the e-mail completions' API: sender identities, topics, test sends."""

from __future__ import annotations

from rest_framework import serializers

from nurturing.models import SenderIdentity, Topic


class SenderIdentityInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    from_email = serializers.EmailField(max_length=254)
    reply_to = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    is_default = serializers.BooleanField(required=False, default=False)


class SenderIdentityOutputSerializer(serializers.ModelSerializer):
    reply_to = serializers.CharField(read_only=True, help_text="Where replies go (empty: to the sender).")

    class Meta:
        model = SenderIdentity
        fields = ["id", "name", "from_email", "reply_to", "is_default", "created_at"]
        read_only_fields = fields


class TopicInputSerializer(serializers.Serializer):
    key = serializers.SlugField(max_length=60)
    name = serializers.CharField(max_length=200)
    name_fr = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class TopicOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ["id", "key", "name", "name_fr"]
        read_only_fields = fields


class TestSendInputSerializer(serializers.Serializer):
    lead = serializers.IntegerField(min_value=1, help_text="A lead the caller may see: its data fill the merge fields.")
    to = serializers.EmailField(
        max_length=254, required=False, allow_blank=True, help_text="Where to send it (default: the caller's e-mail)."
    )


class TestSendSerializer(serializers.Serializer):
    sent_to = serializers.EmailField()


class ConsentConfirmationInputSerializer(serializers.Serializer):
    leads = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=10_000
    )
    source = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="Where the consent was asked (a form, a list)."
    )


class ConsentConfirmationSerializer(serializers.Serializer):
    outcomes = serializers.DictField(
        child=serializers.CharField(),
        help_text='Per lead id: "sent", "already_opted_in", "suppressed", "no_email" or "not_found".',
    )

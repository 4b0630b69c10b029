"""Reads: API keys and webhooks are integration configuration, for admins only (SPEC.md
"Roles": configuration APIs are read and written by admins). A subscription is where lead
data leaves the CRM and its delivery log holds whole lead payloads sent elsewhere, so
marketing does not read them either."""

from __future__ import annotations

import hashlib
import hmac

from django.db.models import QuerySet

from accounts.models import User
from integrations.models import ApiKey, Delivery, DeliveryAttempt, Webhook
from leads.models import Lead

KEY_PREFIX = "lcrm_"
PREFIX_LENGTH = 13  # "lcrm_" + 8 random characters: how a key is found
KEY_MAX_LENGTH = 200


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_for(raw: str) -> ApiKey | None:
    """The active key whose hash matches `raw` (found by its prefix), with its user; None
    for anything else (unknown, revoked, malformed)."""
    if not raw.startswith(KEY_PREFIX) or not (PREFIX_LENGTH < len(raw) <= KEY_MAX_LENGTH):
        return None
    key = ApiKey.objects.select_related("user").filter(prefix=raw[:PREFIX_LENGTH], revoked_at__isnull=True).first()
    if key is None or not hmac.compare_digest(key.hashed_key, hash_key(raw)):
        return None
    return key


def _admin(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_admin_role)


def api_keys_visible_to(user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("user").all() if _admin(user) else ApiKey.objects.none()


def webhooks_visible_to(user: User) -> QuerySet[Webhook]:
    return Webhook.objects.select_related("owner").all() if _admin(user) else Webhook.objects.none()


def deliveries_visible_to(user: User) -> QuerySet[Delivery]:
    return Delivery.objects.select_related("webhook").all() if _admin(user) else Delivery.objects.none()


def deliveries_of(*, webhook_id: int, status: str | None = None) -> QuerySet[Delivery]:
    qs = Delivery.objects.filter(webhook_id=webhook_id)
    return qs.filter(status=status) if status else qs


def last_attempts(delivery_ids: list[int]) -> dict[int, DeliveryAttempt]:
    """The latest attempt of each delivery (for the log)."""
    out: dict[int, DeliveryAttempt] = {}
    for attempt in DeliveryAttempt.objects.filter(delivery_id__in=delivery_ids).order_by("delivery_id", "-number"):
        out.setdefault(attempt.delivery_id, attempt)
    return out


def active_webhooks_for(event: str) -> list[Webhook]:
    """Active subscriptions to `event` (few rows: filtered here, the JSON list on any database)."""
    return [w for w in Webhook.objects.filter(active=True) if event in (w.events or [])]


SNAPSHOT_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "job_title",
    "company_name",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "city",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "properties",
    "stage",
    "owner_id",
    "team_id",
    "score",
    "fit_score",
    "engagement_score",
    "grade",
    "consent_status",
    "created_at",
    "updated_at",
)


def lead_snapshots(lead_ids: list[int]) -> dict[int, dict]:
    """What a webhook says about each lead, as it is now (the payload is written when the
    event's reaction runs, right after the event's commit)."""
    return {row["id"]: row for row in Lead.objects.filter(pk__in=lead_ids).values(*SNAPSHOT_FIELDS)}

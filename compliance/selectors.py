"""GDPR reads: everything held about a person (the export), their consent log, who may ask,
whether an address was erased, and which leads the retention rule reaches."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

from django.db import models
from django.db.models import Exists, OuterRef
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Role, User
from compliance import registry
from compliance.models import ErasedIdentity, Erasure
from leadcrm.permissions import has_role
from leads.models import ConsentRecord, Lead

EXPORT_FORMAT = "leadcrm.person-export/1"
# Who may export or erase a person (admins always): marketing, which answers GDPR requests
# and sees every lead. Sellers and managers may not (they see the lead, answer 403); a caller
# who cannot see the lead gets 404 first (`leads.selectors.visible_lead_or_404`).
PRIVACY_ROLES = (Role.MARKETING,)


def may_handle_privacy(user: User) -> bool:
    """Export and erasure are for admins and marketing."""
    return has_role(user, PRIVACY_ROLES)


def email_hash(email: str) -> str:
    """SHA-256 (hex) of the normalised address (trimmed, lower-cased)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def consent_refused(*, lead: Lead) -> bool:
    """An opt-in may not be recorded for an erased lead, nor for a new lead with the address
    of an erased person."""
    if Erasure.objects.filter(lead_id=lead.pk).exists():
        return True
    return bool(lead.email) and ErasedIdentity.objects.filter(email_hash=email_hash(lead.email)).exists()


def erasure_of(*, lead_id: int) -> Erasure | None:
    return Erasure.objects.filter(lead_id=lead_id).first()


def consent_log(*, lead_id: int, limit: int = 50) -> list[ConsentRecord]:
    """The lead's consent records, newest first."""
    return list(ConsentRecord.objects.filter(lead_id=lead_id).order_by("-recorded_at", "-id")[:limit])


def row_data(obj: models.Model, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """One row as JSON-safe data: every concrete column by its column attribute."""
    out = {}
    for f in obj._meta.concrete_fields:
        if f.name not in leave_out:
            out[f.attname] = _jsonable(getattr(obj, f.attname))
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    return str(value)


def person_export(*, lead: Lead) -> dict[str, Any]:
    """Everything held about the person: the lead and, per table (`compliance.registry`),
    every row of theirs (every table is listed, empty ones too, so the reader sees what was
    looked at)."""
    tables = {}
    for source in registry.sources():
        tables[source.label] = [row_data(obj, leave_out=source.not_exported) for obj in source.rows([lead])]
    return {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now().isoformat(),
        "lead": row_data(lead),
        "tables": tables,
    }


def retention_candidates(*, months: int, now: dt.datetime | None = None, limit: int = 100) -> list[int]:
    """Ids of leads with no activity (or, never active, created) for more than `months`
    months and not yet erased, oldest id first (a run resumes where the last one stopped:
    what it erased no longer matches)."""
    if months <= 0:
        return []
    cutoff = (now or timezone.now()) - dt.timedelta(days=round(months * 30.44))
    return list(
        Lead.objects.annotate(last_seen=Coalesce("last_activity_at", "created_at"))
        .filter(last_seen__lt=cutoff)
        .exclude(Exists(Erasure.objects.filter(lead_id=OuterRef("pk"))))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )

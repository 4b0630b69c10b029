"""Reads on segments: which leads a filter means, who is in a segment, what a caller may see."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from leadcrm.errors import ServiceError
from leads import selectors as lead_selectors
from leads.models import ConsentStatus, Lead, Touchpoint, TouchpointType
from nurturing import segment_rules
from nurturing.models import EmailTemplate, Message, Segment, SegmentChange, SegmentKind, SegmentMembership
from nurturing.segment_rules import EXTRA_KEYS


def leads_matching(segment_filter: dict, *, now: dt.datetime | None = None) -> QuerySet[Lead]:
    """Every lead the (normalised) filter means. The leads list's names go through the leads
    list's own filter, so a segment saved from the list holds what the list showed."""
    now = now or timezone.now()
    params = {k: v for k, v in segment_filter.items() if k not in EXTRA_KEYS}
    qs = lead_selectors.leads_filtered(Lead.objects.order_by(), params).order_by()
    if "team" in segment_filter:
        qs = qs.filter(team_id=segment_filter["team"])
    if "consent" in segment_filter:
        qs = qs.filter(consent_status__in=segment_filter["consent"])
    if segment_filter.get("properties"):
        qs = lead_selectors.leads_with_properties(qs, segment_filter["properties"])
    for n, event in enumerate(segment_filter.get("events", ())):
        since = now - dt.timedelta(days=event["within_days"])
        count = (
            Touchpoint.objects.filter(lead=OuterRef("pk"), type=event["type"], occurred_at__gte=since)
            .order_by()
            .values("lead")
            .annotate(n=Count("pk"))
            .values("n")
        )
        qs = qs.annotate(**{f"_events_{n}": Coalesce(Subquery(count), 0)}).filter(
            **{f"_events_{n}__gte": event["min_count"]}
        )
    for segment_id in segment_filter.get("segments", ()):
        qs = qs.filter(pk__in=SegmentMembership.objects.filter(segment_id=segment_id).values("lead_id"))
    return qs


def segments_visible_to(user: User) -> QuerySet[Segment]:
    """Segments are shared configuration: every signed-in user reads them (sellers enroll
    from them); their members are still only the leads the reader may see."""
    if not user.is_authenticated or not user.is_active:
        return Segment.objects.none()
    return Segment.objects.all()


def segment_members(*, segment: Segment, user: User) -> QuerySet[Lead]:
    members = SegmentMembership.objects.filter(segment=segment).values("lead_id")
    return lead_selectors.leads_visible_to(user).filter(pk__in=members)


def segment_counts(*, segments: list[Segment], user: User) -> dict[int, int]:
    """Members each segment has for this caller: the stored count for those who see every
    lead, else the members they may see (one query for the page)."""
    if user.is_authenticated and user.sees_all_leads:
        return {s.pk: s.member_count for s in segments}
    visible = lead_selectors.leads_visible_to(user).values("pk")
    rows = (
        SegmentMembership.objects.filter(segment__in=segments, lead_id__in=visible)
        .values("segment_id")
        .annotate(n=Count("pk"))
    )
    counts = {row["segment_id"]: row["n"] for row in rows}
    return {s.pk: counts.get(s.pk, 0) for s in segments}


def segment_changes(*, segment: Segment, user: User) -> QuerySet[SegmentChange]:
    visible = lead_selectors.leads_visible_to(user).values("pk")
    return SegmentChange.objects.filter(segment=segment, lead_id__in=visible).select_related("lead")


def clean_segment_filter(*, kind: str, raw_filter: object, segment_id: int | None) -> dict:
    """The filter normalised, its leads-list part checked by the leads list filter, and no
    circle through the segments it names."""
    if kind == SegmentKind.STATIC:
        if raw_filter:
            raise ServiceError({"filter": ["A static list has members, not a filter."]})
        return {}
    try:
        cleaned = segment_rules.clean_filter(
            raw_filter,
            list_keys=lead_selectors.LEAD_FILTER_NAMES,
            multi_keys=lead_selectors.LEAD_FILTER_MULTI,
            event_types=TouchpointType.values,
            consent_statuses=ConsentStatus.values,
        )
        errors = lead_selectors.leads_filter_errors(
            {k: v for k, v in cleaned.items() if k not in segment_rules.EXTRA_KEYS}
        )
        if errors:
            raise segment_rules.FilterInvalid(errors)
        named = set(cleaned.get("segments", ()))
        if segment_id in named:
            raise segment_rules.FilterInvalid({"segments": ["A segment cannot include itself."]})
        known = dict(Segment.objects.filter(kind=SegmentKind.DYNAMIC).values_list("pk", "filter"))
        missing = named - set(Segment.objects.filter(pk__in=named).values_list("pk", flat=True))
        if missing:
            raise segment_rules.FilterInvalid({"segments": [f"Unknown segments: {sorted(missing)}."]})
        if segment_id is not None:
            known[segment_id] = cleaned
        segment_rules.evaluation_order(known)
    except segment_rules.FilterInvalid as exc:
        raise ServiceError({f"filter.{k}" if k != "filter" else k: v for k, v in exc.errors.items()}) from exc
    return cleaned


def segment_filter_count(*, raw_filter: object) -> int:
    """How many leads a filter means now (the builder's live count), checked as a save would."""
    return leads_matching(
        clean_segment_filter(kind=SegmentKind.DYNAMIC, raw_filter=raw_filter, segment_id=None)
    ).count()


def email_templates() -> QuerySet[EmailTemplate]:
    return EmailTemplate.objects.all()


def messages_visible_to(user: User | None) -> QuerySet[Message]:
    """Messages of the leads the user may see."""
    qs = Message.objects.order_by("-queued_at", "-id")
    if user is None or (user.is_authenticated and user.is_active and user.sees_all_leads):
        return qs
    return qs.filter(lead__in=lead_selectors.leads_visible_to(user).values("pk"))

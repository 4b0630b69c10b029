"""Reads on segments: which leads a filter means, who is in a segment, what a caller may see."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from leadcrm.errors import ServiceError
from leads import selectors as lead_selectors
from leads.models import ConsentStatus, Lead, Stage, StageChange, Touchpoint, TouchpointType
from nurturing import segment_rules
from nurturing.models import (
    EmailTemplate,
    Enrollment,
    Message,
    Segment,
    SegmentChange,
    SegmentKind,
    SegmentMembership,
    Sequence,
    SequenceVersion,
    StepRun,
)
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


# --- sequences: lists, enrollments, per-step and per-variant stats (the API and pages) --------

# Reaching one of these stages after enrolling counts as the sequence's MQL conversion.
MQL_OR_BEYOND = (Stage.MQL, Stage.SQL, Stage.SAL, Stage.CO, Stage.WO)


def sequences_visible_to(user: User) -> QuerySet[Sequence]:
    """Sequences are shared configuration: every signed-in user reads them (sellers enroll
    their leads into them); the enrollments a reader sees are those of its visible leads."""
    if not user.is_authenticated or not user.is_active:
        return Sequence.objects.none()
    return Sequence.objects.select_related("current_version")


def _visible(qs: QuerySet, user: User | None, field: str = "lead_id") -> QuerySet:
    if user is None or (user.is_authenticated and user.is_active and user.sees_all_leads):
        return qs
    return qs.filter(**{f"{field}__in": lead_selectors.leads_visible_to(user).values("pk")})


def enrollments_visible_to(user: User | None) -> QuerySet[Enrollment]:
    """Enrollments of the leads the user may see, with their sequence and version."""
    qs = Enrollment.objects.select_related("sequence", "version").order_by("-enrolled_at", "-id")
    return _visible(qs, user)


def enrollments_with_runs(qs: QuerySet[Enrollment]) -> QuerySet[Enrollment]:
    """Every step run of each enrollment in one more query (not one per enrollment)."""
    return qs.prefetch_related(Prefetch("step_runs", queryset=StepRun.objects.order_by("at", "id")))


def sequence_enrollment_counts(*, sequence_ids, user: User | None) -> dict[int, dict[str, int]]:
    """Per sequence: enrollments by state among the leads the user may see (one query)."""
    rows = (
        _visible(Enrollment.objects.filter(sequence_id__in=list(sequence_ids)), user)
        .order_by()
        .values("sequence_id", "state")
        .annotate(n=Count("pk"))
    )
    out: dict[int, dict[str, int]] = {}
    for row in rows:
        out.setdefault(row["sequence_id"], {})[row["state"]] = row["n"]
    return out


def sequence_versions(sequence: Sequence) -> list[SequenceVersion]:
    qs = SequenceVersion.objects.filter(sequence=sequence).order_by("-number")
    return list(qs.only("id", "number", "created_at"))


def _converted(enrollment_ref: str = "enrollment") -> Exists:
    """The enrolled lead reached MQL or beyond at or after its enrollment."""
    prefix = f"{enrollment_ref}__" if enrollment_ref else ""
    return Exists(
        StageChange.objects.filter(
            lead_id=OuterRef(f"{prefix}lead_id"),
            to_stage__in=MQL_OR_BEYOND,
            created_at__gte=OuterRef(f"{prefix}enrolled_at"),
        )
    )


_SENT = Q(sent_at__isnull=False)
_OPENED = Q(opened_at__isnull=False) | Q(clicked_at__isnull=False)  # a click is an open too


def sequence_stats_rows(*, sequence: Sequence, version: SequenceVersion, user: User | None) -> dict:
    """The counts behind a sequence's report, for one version, over the leads the user may
    see: four grouped queries whatever the number of leads, steps and variants.

    - "steps": per (step path, variant) message counts;
    - "variants": per variant key, recipients (enrollments with a sent message of the
      variant) and those who opened, clicked, replied (recipient level: independent trials);
    - "splits": per (split path, outcome "variant:N"), enrollments that took the variant and
      how many of them reached MQL or beyond after enrolling;
    - "enrollments": by state, and the MQL conversion of all of them."""
    messages = _visible(Message.objects.filter(enrollment__sequence=sequence, enrollment__version=version), user)
    steps = list(
        messages.order_by()
        .values("step", "variant")
        .annotate(
            queued=Count("pk"),
            sent=Count("pk", filter=_SENT),
            delivered=Count("pk", filter=_SENT & Q(bounced_at__isnull=True)),
            opened=Count("pk", filter=_OPENED),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            replied=Count("pk", filter=Q(replied_at__isnull=False)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
            bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
            complained=Count("pk", filter=Q(complained_at__isnull=False)),
            failed=Count("pk", filter=Q(status="failed")),
        )
    )
    variants = list(
        messages.filter(_SENT)
        .exclude(variant="")
        .order_by()
        .values("variant")
        .annotate(
            recipients=Count("enrollment_id", distinct=True),
            opened=Count("enrollment_id", distinct=True, filter=_OPENED),
            clicked=Count("enrollment_id", distinct=True, filter=Q(clicked_at__isnull=False)),
            replied=Count("enrollment_id", distinct=True, filter=Q(replied_at__isnull=False)),
        )
    )
    runs = _visible(
        StepRun.objects.filter(
            enrollment__sequence=sequence,
            enrollment__version=version,
            type="split",
            outcome__startswith="variant:",
        ),
        user,
        "enrollment__lead_id",
    )
    splits = list(
        runs.annotate(converted=_converted())
        .order_by()
        .values("path", "outcome")
        .annotate(
            enrolled=Count("enrollment_id", distinct=True),
            mql=Count("enrollment_id", distinct=True, filter=Q(converted=True)),
        )
    )
    enrollments = _visible(Enrollment.objects.filter(sequence=sequence, version=version), user)
    by_state = dict(enrollments.order_by().values_list("state").annotate(n=Count("pk")))
    totals = enrollments.annotate(converted=_converted("")).aggregate(
        enrolled=Count("pk"), mql=Count("pk", filter=Q(converted=True))
    )
    return {
        "steps": steps,
        "variants": variants,
        "splits": splits,
        "enrollments": {"by_state": by_state, "enrolled": totals["enrolled"], "mql": totals["mql"]},
    }


def lead_enrollments(*, lead_id: int, user: User | None, limit: int = 20) -> list[Enrollment]:
    """A lead's enrollments, newest first, each with its step runs (the lead page's panel:
    two queries)."""
    qs = enrollments_visible_to(user).filter(lead_id=lead_id)
    return list(enrollments_with_runs(qs)[:limit])


def enrollable_sequences() -> list[Sequence]:
    """The sequences a lead may be enrolled in by hand (active, with steps)."""
    return list(Sequence.objects.filter(active=True, current_version__isnull=False).order_by("name").only("id", "name"))


# --- sequences engine (conditions) --------------------------------------------------------


def lead_facts(lead_ids) -> dict:
    """LeadFacts per lead id: what branch conditions read about these leads, in two
    queries whatever their number (the fields of conditions.FIELDS, properties, segments)."""
    from nurturing.conditions import LeadFacts

    ids = sorted({int(pk) for pk in lead_ids})
    if not ids:
        return {}
    names = ("score", "fit_score", "engagement_score", "grade", "stage", "country", "industry", "source")
    names += ("company_size", "consent_status", "owner_id", "team_id", "properties")
    segments: dict[int, set[int]] = {}
    for lead_id, segment_id in SegmentMembership.objects.filter(lead_id__in=ids).values_list("lead_id", "segment_id"):
        segments.setdefault(lead_id, set()).add(segment_id)
    out = {}
    for row in Lead.objects.filter(pk__in=ids).values("pk", *names):
        lead = {k: v for k, v in row.items() if k not in ("pk", "owner_id", "team_id")}
        lead["owner"], lead["team"] = row["owner_id"], row["team_id"]
        out[row["pk"]] = LeadFacts(lead=lead, segment_ids=frozenset(segments.get(row["pk"], ())))
    return out


# --- e-mail: senders, topics, performance (H4) ------------------------------------------------


def sender_identities():
    from nurturing.models import SenderIdentity

    return SenderIdentity.objects.order_by("name", "pk")


def topics():
    from nurturing.models import Topic

    return Topic.objects.order_by("name", "pk")


def email_performance(*, user: User, start: dt.datetime, end: dt.datetime) -> dict:
    """The dashboard's e-mail panel: the messages of the leads the user may see sent in
    [start, end), what became of them, and the rates (one aggregate query)."""

    qs = messages_visible_to(user).filter(sent_at__gte=start, sent_at__lt=end).order_by()
    counts = qs.aggregate(
        sent=Count("pk"),
        bounced=Count("pk", filter=Q(bounced_at__isnull=False)),
        opened=Count("pk", filter=Q(opened_at__isnull=False)),
        clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
        unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
        complained=Count("pk", filter=Q(complained_at__isnull=False)),
        replied=Count("pk", filter=Q(replied_at__isnull=False)),
    )
    sent = counts["sent"]
    delivered = sent - counts["bounced"]

    def rate(n: int, of: int) -> float | None:
        return round(100 * n / of, 1) if of else None

    return {
        **counts,
        "delivered": delivered,
        "rates": {
            "delivery": rate(delivered, sent),
            "open": rate(counts["opened"], delivered),
            "click": rate(counts["clicked"], delivered),
            "reply": rate(counts["replied"], delivered),
            "unsubscribe": rate(counts["unsubscribed"], delivered),
            "bounce": rate(counts["bounced"], sent),
            "complaint": rate(counts["complained"], delivered),
        },
    }


# --- workflows (H3) ------------------------------------------------------------------------


def workflows_visible_to(user: User) -> QuerySet:
    """Every signed-in reader sees the workflows (their runs: of the leads it may see)."""
    from nurturing.models import Workflow

    return Workflow.objects.order_by("name", "pk")


def workflow_runs(*, workflow_id: int, user: User) -> QuerySet:
    """The runs of a workflow on the leads the user may see, newest first."""
    from nurturing.models import WorkflowRun

    qs = WorkflowRun.objects.filter(workflow_id=workflow_id).order_by("-at", "-id")
    if not user.sees_all_leads:
        qs = qs.filter(lead__in=lead_selectors.leads_visible_to(user))
    return qs


def workflow_run_counts(*, workflow_ids: list[int], user: User) -> dict[int, dict]:
    """Runs per workflow by result, and the last run's time, among the leads the user may
    see (one grouped query)."""
    from django.db.models import Max

    from nurturing.models import WorkflowRun, WorkflowRunResult

    qs = WorkflowRun.objects.filter(workflow_id__in=workflow_ids)
    if not user.sees_all_leads:
        qs = qs.filter(lead__in=lead_selectors.leads_visible_to(user))
    out = {pk: {**dict.fromkeys(WorkflowRunResult.values, 0), "total": 0, "last_run_at": None} for pk in workflow_ids}
    rows = qs.order_by().values("workflow_id", "result").annotate(n=Count("pk"), last=Max("at"))
    for row in rows:
        counts = out[row["workflow_id"]]
        counts[row["result"]] = row["n"]
        counts["total"] += row["n"]
        if counts["last_run_at"] is None or row["last"] > counts["last_run_at"]:
            counts["last_run_at"] = row["last"]
    return out

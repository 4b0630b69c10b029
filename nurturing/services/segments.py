"""Segments: saved filters and static lists, and the membership table the events keep.

A dynamic segment's members are re-checked for the leads an event is about (scored, moved,
assigned), so the cost follows the leads that changed, not the audience; a full evaluation
(on creation, on an edit of the filter, and nightly for time windows) walks the leads in id
ranges, each range its own short transaction. Every entry and exit is a SegmentChange row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from leadcrm import audit, csvfiles, events
from leadcrm.actors import Actor
from leadcrm.errors import Conflict, ServiceError
from leads import selectors as lead_selectors
from leads.models import Lead
from nurturing import segment_rules
from nurturing.models import Segment, SegmentChange, SegmentChangeKind, SegmentKind, SegmentMembership
from nurturing.selectors import clean_segment_filter, leads_matching

SEGMENT_FIELDS = ("name", "kind", "filter")
RANGE = 20_000  # leads per transaction of a full evaluation
CHUNK = 5_000  # lead ids per pass of an incremental refresh


def segment_create(*, actor: Actor, name: str, kind: str = SegmentKind.DYNAMIC, filter: object = None) -> Segment:
    cleaned = clean_segment_filter(kind=kind, raw_filter=filter or {}, segment_id=None)
    if Segment.objects.filter(name=name).exists():
        raise ServiceError({"name": ["A segment with this name exists."]})
    with transaction.atomic():
        segment = Segment.objects.create(name=name, kind=kind, filter=cleaned, created_by=actor.user)
        audit.record(
            actor=actor,
            action="nurturing.segment.create",
            target=segment,
            changes=audit.created(segment, SEGMENT_FIELDS),
        )
    if segment.is_dynamic:
        segment_evaluate(segment_id=segment.pk, cause="segment.created")
    segment.refresh_from_db()
    return segment


def segment_update(*, actor: Actor, segment_id: int, **fields: object) -> Segment:
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        before = audit.snapshot(segment, SEGMENT_FIELDS)
        if "kind" in fields and fields["kind"] != segment.kind:
            raise ServiceError({"kind": ["A segment's kind cannot change; make a new segment."]})
        if "name" in fields:
            if Segment.objects.filter(name=fields["name"]).exclude(pk=segment.pk).exists():
                raise ServiceError({"name": ["A segment with this name exists."]})
            segment.name = fields["name"]
        refilter = "filter" in fields and segment.is_dynamic
        if "filter" in fields:
            segment.filter = clean_segment_filter(kind=segment.kind, raw_filter=fields["filter"], segment_id=segment.pk)
        segment.save(update_fields=["name", "filter", "updated_at"])
        audit.record(
            actor=actor,
            action="nurturing.segment.update",
            target=segment,
            changes=audit.diff(before, segment),
            skip_empty=True,
        )
    if refilter and before["filter"] != segment.filter:
        segment_evaluate(segment_id=segment.pk, cause="segment.filter_changed")
        segment.refresh_from_db()
    return segment


def segment_delete(*, actor: Actor, segment_id: int) -> None:
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        users = [s.name for s in Segment.objects.exclude(pk=segment.pk) if segment.pk in s.filter.get("segments", ())]
        if users:
            raise Conflict("segment_in_use", f"Segments {', '.join(users)} include this one.", segments=users)
        audit.record(
            actor=actor,
            action="nurturing.segment.delete",
            target=segment,
            changes=audit.deleted(segment, SEGMENT_FIELDS),
        )
        segment.delete()


def segment_members_change(
    *, actor: Actor, segment_id: int, add: Iterable[int] = (), remove: Iterable[int] = ()
) -> Segment:
    """Add or remove leads of a static list. Ids of leads the caller cannot see are refused
    as unknown, whether they exist or not."""
    add, remove = set(add), set(remove)
    wanted = add | remove
    visible = lead_selectors.lead_ids_visible_to(actor.user, wanted)
    visible &= set(Lead.objects.filter(pk__in=visible).values_list("pk", flat=True))
    if wanted - visible:
        raise ServiceError({"leads": [f"Unknown leads: {sorted(wanted - visible)[:20]}."]})
    if add & remove:
        raise ServiceError({"leads": ["A lead cannot be added and removed at once."]})
    now = timezone.now()
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        if segment.is_dynamic:
            raise Conflict("segment_dynamic", "A dynamic segment's members follow its filter.")
        current = _members(segment, Q(lead_id__in=add | remove))
        entered, left = _apply(
            segment, entered=sorted(add - current), left=sorted(remove & current), cause="manual", now=now
        )
        if entered or left:
            audit.record(
                actor=actor,
                action="nurturing.segment.members",
                target=segment,
                details={"added": sorted(entered), "removed": sorted(left)},
            )
    segment.refresh_from_db()
    return segment


# Header names of the e-mail column of a static list's CSV (compared in lower case).
EMAIL_HEADERS = ("email", "e-mail", "e_mail", "mail", "courriel", "adresse e-mail", "adresse email")
MAX_IMPORT_ROWS = 100_000


@dataclass(frozen=True)
class MembersImport:
    added: int
    already: int
    # Addresses no lead the caller may see holds (first ones only), and how many in all.
    not_found: list[str] = field(default_factory=list)
    not_found_count: int = 0


def segment_members_import(*, actor: Actor, segment_id: int, data: bytes) -> MembersImport:
    """Fill a static list from a CSV of e-mail addresses: the column named e-mail (or the only
    column; a file with no header is read as one address per line). An address of a lead the
    caller may not see is reported "not found", as one that matches nobody."""
    try:
        parsed = csvfiles.parse(data)
    except csvfiles.BadFile as exc:
        raise ServiceError({"file": [str(exc)]}) from exc
    headers = [h.lower() for h in parsed.headers]
    column = next((headers.index(h) for h in EMAIL_HEADERS if h in headers), None)
    rows = [cells for _, cells in parsed.rows]
    if column is None:
        if len(headers) == 1 and "@" in headers[0]:
            column, rows = 0, [parsed.headers, *rows]
        elif len(headers) == 1:
            column = 0
        else:
            raise ServiceError({"file": ['No e-mail column: name one column "email".']})
    if len(rows) > MAX_IMPORT_ROWS:
        raise ServiceError({"file": [f"At most {MAX_IMPORT_ROWS:,} addresses per file."]})
    emails = list(dict.fromkeys(c[column].strip().lower() for c in rows if len(c) > column and c[column].strip()))
    if not emails:
        raise ServiceError({"file": ["The file holds no e-mail address."]})
    found = lead_selectors.lead_ids_by_email(actor.user, emails)
    already = SegmentMembership.objects.filter(segment_id=segment_id, lead_id__in=found.values()).count()
    segment_members_change(actor=actor, segment_id=segment_id, add=found.values())
    missing = [e for e in emails if e not in found]
    return MembersImport(
        added=len(found) - already, already=already, not_found=missing[:20], not_found_count=len(missing)
    )


def segments_refresh(*, lead_ids: Iterable[int], cause: str = "", now: dt.datetime | None = None) -> int:
    """Re-check these leads against every dynamic segment (in an order where a segment comes
    after those it names). Returns how many entries and exits it wrote."""
    ids = sorted(set(lead_ids))
    if not ids:
        return 0
    now = now or timezone.now()
    order = segment_rules.evaluation_order(
        dict(Segment.objects.filter(kind=SegmentKind.DYNAMIC).values_list("pk", "filter"))
    )
    changed = 0
    for segment_id in order:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            changed += _refresh(segment_id, Q(pk__in=chunk), Q(lead_id__in=chunk), cause=cause, now=now)
    return changed


def segment_evaluate(*, segment_id: int, cause: str = "", now: dt.datetime | None = None) -> int:
    """Check every lead against the segment, range by range, then set the exact count."""
    now = now or timezone.now()
    top = Lead.objects.aggregate(top=Max("pk"))["top"] or 0
    changed = 0
    for start in range(0, top + 1, RANGE):
        end = start + RANGE
        scope, member_scope = Q(pk__gte=start, pk__lt=end), Q(lead__gte=start, lead__lt=end)
        changed += _refresh(segment_id, scope, member_scope, cause=cause, now=now)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().get(pk=segment_id)
        segment.member_count = SegmentMembership.objects.filter(segment=segment).count()
        segment.evaluated_at = now
        segment.save(update_fields=["member_count", "evaluated_at"])
    return changed


def segments_windows_refresh(*, now: dt.datetime | None = None) -> int:
    """Segments with a time window ("visited in the last 7 days") lose leads with no event:
    re-evaluate those (beat, hourly), in the order the segments name each other."""
    now = now or timezone.now()
    filters = dict(Segment.objects.filter(kind=SegmentKind.DYNAMIC).values_list("pk", "filter"))
    timed = {pk for pk, f in filters.items() if segment_rules.has_time_window(f)}
    order = segment_rules.evaluation_order(filters)
    # A segment naming a timed one changes with it.
    for pk in order:
        if set(filters[pk].get("segments", ())) & timed:
            timed.add(pk)
    return sum(segment_evaluate(segment_id=pk, cause="time_window", now=now) for pk in order if pk in timed)


def _refresh(segment_id: int, scope: Q, member_scope: Q, *, cause: str, now: dt.datetime) -> int:
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(pk=segment_id, kind=SegmentKind.DYNAMIC).first()
        if segment is None:  # deleted, or a static list, since the order was read
            return 0
        matching = set(leads_matching(segment.filter, now=now).filter(scope).values_list("pk", flat=True))
        current = _members(segment, member_scope)
        entered, left = _apply(
            segment, entered=sorted(matching - current), left=sorted(current - matching), cause=cause, now=now
        )
        return len(entered) + len(left)


def _members(segment: Segment, scope: Q) -> set[int]:
    return set(SegmentMembership.objects.filter(scope, segment=segment).values_list("lead_id", flat=True))


def _apply(segment: Segment, *, entered: list[int], left: list[int], cause: str, now: dt.datetime):
    """Write entries (not members yet) and exits (members): in the caller's transaction,
    the segment row locked, so the two lists are exact."""
    if entered:
        SegmentMembership.objects.bulk_create(
            [SegmentMembership(segment=segment, lead_id=pk, added_at=now) for pk in entered], batch_size=2_000
        )
    if left:
        SegmentMembership.objects.filter(segment=segment, lead_id__in=left).delete()
    if entered or left:
        SegmentChange.objects.bulk_create(
            [
                SegmentChange(segment=segment, lead_id=pk, kind=SegmentChangeKind.ENTERED, cause=cause, at=now)
                for pk in entered
            ]
            + [
                SegmentChange(segment=segment, lead_id=pk, kind=SegmentChangeKind.LEFT, cause=cause, at=now)
                for pk in left
            ],
            batch_size=2_000,
        )
        Segment.objects.filter(pk=segment.pk).update(member_count=F("member_count") + len(entered) - len(left))
        events.emit(events.SEGMENT_ENTERED, lead_ids=entered, segment_id=segment.pk)
        events.emit(events.SEGMENT_LEFT, lead_ids=left, segment_id=segment.pk)
    return entered, left

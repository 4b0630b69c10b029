"""Every write of nurturing, by area; import the names from here."""

from nurturing.services.segments import (
    segment_create,
    segment_delete,
    segment_evaluate,
    segment_members_change,
    segment_members_import,
    segment_update,
    segments_refresh,
    segments_windows_refresh,
)

__all__ = [
    "segment_create",
    "segment_delete",
    "segment_evaluate",
    "segment_members_change",
    "segment_members_import",
    "segment_update",
    "segments_refresh",
    "segments_windows_refresh",
]

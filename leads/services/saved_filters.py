"""Users' saved filters of the list pages."""

from __future__ import annotations

from accounts.models import User
from leadcrm.errors import ServiceError
from leads.models import SavedFilter


def saved_filter_save(*, user: User, page: str, name: str, query: str) -> SavedFilter:
    """Save (or overwrite) a named filter of a list page for this user."""
    name = name.strip()[:100]
    if not name:
        raise ServiceError({"name": ["Give the filter a name."]})
    saved, _ = SavedFilter.objects.update_or_create(
        user=user, page=page, name=name, defaults={"query": query.lstrip("?")[:1000]}
    )
    return saved


def saved_filter_delete(*, user: User, filter_id: int) -> None:
    """Delete one of this user's saved filters (another user's id deletes nothing)."""
    SavedFilter.objects.filter(user=user, pk=filter_id).delete()

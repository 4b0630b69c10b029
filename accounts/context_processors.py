"""What every page's navigation shows about the signed-in user."""

from __future__ import annotations

import functools

from django.http import HttpRequest

from accounts import selectors


def notifications(request: HttpRequest) -> dict:
    """The unread count of the bell, counted only when a page shows it (one query)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # A callable: the template calls it where it is read, so other pages pay nothing.
    return {"unread_notifications": functools.cache(lambda: selectors.unread_notification_count(user))}

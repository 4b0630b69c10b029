"""Signed tokens of the capture: the render token issued with a form (when it was shown and
which questions it asked: the minimum fill time and the required fields are judged from it)
and the link token an e-mail carries to recognise its reader on a form."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core import signing

RENDER_SALT = "capture.render"
LINK_SALT = "capture.link"
RENDER_MAX_AGE = 24 * 3600  # a form left open longer is shown again
LINK_MAX_AGE = 90 * 24 * 3600


@dataclass(frozen=True)
class Render:
    form_id: int
    asked: list[str]
    shown_at: float | None  # None: the copy-paste HTML snippet (no time of its own)


def render_token(*, form_id: int, asked: list[str], static: bool = False) -> str:
    """Issued with each rendering of the form; `static` for the copy-paste HTML snippet."""
    payload = {"f": form_id, "q": asked}
    if not static:
        payload["t"] = round(time.time(), 3)
    return signing.dumps(payload, salt=RENDER_SALT, compress=True)


def read_render_token(token: object, *, form_id: int) -> Render | None:
    """The render, or None when the token is missing, forged, of another form or too old."""
    if not isinstance(token, str) or not token or len(token) > 4000:
        return None
    try:
        payload = signing.loads(token, salt=RENDER_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict) or payload.get("f") != form_id or not isinstance(payload.get("q"), list):
        return None
    shown_at = payload.get("t")
    if shown_at is not None and (not isinstance(shown_at, (int, float)) or time.time() - shown_at > RENDER_MAX_AGE):
        return None
    return Render(form_id, [q for q in payload["q"] if isinstance(q, str)], shown_at)


def link_token(*, lead_id: int) -> str:
    """For e-mails: a link to a form carrying `?lt=<token>` recognises its reader."""
    return signing.dumps({"l": lead_id}, salt=LINK_SALT)


def read_link_token(token: object) -> int | None:
    if not isinstance(token, str) or not token or len(token) > 500:
        return None
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    lead_id = payload.get("l") if isinstance(payload, dict) else None
    return lead_id if isinstance(lead_id, int) and not isinstance(lead_id, bool) else None

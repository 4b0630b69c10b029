"""What an API key's scopes let it call: the one table, checked where the key is recognised.

Design: a key acts as the admin who created it (so `roles(...)`, `leads_visible_to` and every
service's guard apply unchanged, and the audit log names that person with the `api` kind),
narrowed by this table to the operations its scopes cover. The check runs once, in
`integrations.authentication.ApiKeyAuthentication`, before any view: no view states a scope,
and a new endpoint is closed to every key but `admin` until it is named here. (A dedicated
user per key was the other way: it would need a role per scope, and a seller-like role would
make the key a routing candidate.)

- `capture`: send leads and events in (POST only), never read leads back.
- `read`: read leads (GET on the lead endpoints).
- `write`: `read`, plus writes on leads (create, edit, move, BANT, opportunity, events).
- `admin`: the whole API, except API keys themselves (managed by a person, never a key).
Names are the URL names of the `api` namespace (leadcrm/api_urls.py)."""

from __future__ import annotations

from collections.abc import Iterable

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

LEAD_READS = frozenset(
    {"lead-list", "lead-detail", "lead-history", "lead-bant", "lead-opportunity", "scoring-lead-scores"}
)
LEAD_WRITES = frozenset(
    {"lead-list", "lead-bulk", "lead-detail", "lead-transition", "lead-bant", "lead-opportunity", "events"}
)
# The capture endpoints: a new lead (natural-key lookups never reveal an existing one), events,
# and the capture app's own endpoints (named "capture...").
CAPTURE_WRITES = frozenset({"lead-list", "events"})
# Never through a key: the keys themselves.
KEY_ADMIN = frozenset({"api-key-list", "api-key-revoke"})


def _is_capture(name: str) -> bool:
    return name in CAPTURE_WRITES or name.startswith("capture")


def allows(scopes: Iterable[str], namespace: str, name: str, method: str) -> bool:
    """May a key with these scopes call the operation `namespace:name` with `method`?"""
    scopes = set(scopes)
    if namespace != "api" or not name or name in KEY_ADMIN:
        return False
    method = method.upper()
    if "admin" in scopes:
        return True
    if method in SAFE_METHODS:
        return bool(scopes & {"read", "write"}) and name in LEAD_READS
    if "write" in scopes and (name in LEAD_WRITES or _is_capture(name)):
        return True
    return "capture" in scopes and method == "POST" and _is_capture(name)

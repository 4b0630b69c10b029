"""Where webhooks may go (SSRF): http(s) URLs whose host resolves to public addresses only,
unless LEADCRM_WEBHOOK_ALLOW_PRIVATE. Checked when a subscription is saved (a 400 field
error) and again at send time on the socket actually connected (`SafeHTTPConnection`), so a
name that later resolves to 127.0.0.1 or 169.254.169.254 (DNS rebinding) is still refused.
Redirects are never followed (a public target could redirect inward)."""

from __future__ import annotations

import http.client
import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

MAX_URL = 2000


class TargetRefused(Exception):
    pass


def allow_private() -> bool:
    return bool(getattr(settings, "LEADCRM_WEBHOOK_ALLOW_PRIVATE", False))


def is_public(address: str) -> bool:
    """A globally routable unicast address (not loopback, private, link-local, CGNAT,
    multicast, reserved or unspecified; IPv4-mapped IPv6 judged as its IPv4)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def syntax_problem(url: str) -> str | None:
    """Why the URL cannot be a target, on its text alone; None when it can."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        return _("A URL of at most 2000 characters.")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return _("A URL with no spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return _("Not a valid URL.")
    if parts.scheme not in ("http", "https"):
        return _("An http:// or https:// URL.")
    if not parts.hostname:
        return _("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        return _("Credentials in the URL are not allowed (the signature authenticates the sender).")
    if port == 0:
        return _("Not a valid port.")
    return None


def _resolve(host: str, port: int) -> list[str]:
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def refusal(url: str, *, resolve=None) -> str | None:
    """Why webhooks may not be sent to `url` (syntax, or an address that is not public);
    None when they may. `resolve(host, port)` gives the host's addresses (DNS by default)."""
    problem = syntax_problem(url)
    if problem:
        return problem
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = set((resolve or _resolve)(host, port))
    except (OSError, UnicodeError):
        return _("The host does not resolve.")
    if not addresses:
        return _("The host does not resolve.")
    if not allow_private() and not all(is_public(a) for a in addresses):
        return _("The host resolves to a private, loopback or link-local address: refused.")
    return None


def _check_peer(sock) -> None:
    if allow_private():
        return
    try:
        peer = sock.getpeername()[0]
    except (OSError, AttributeError, IndexError):
        peer = ""
    if not is_public(peer):
        sock.close()
        raise TargetRefused(f"connected to a non-public address ({peer or 'unknown'}): refused")


class _PeerChecked(http.client.HTTPConnection):
    """Checks the socket's peer right after the TCP connect, before TLS or any byte is sent;
    the connect timeout then gives way to the read timeout."""

    read_timeout: float | None = None

    def connect(self) -> None:
        super().connect()
        _check_peer(self.sock)
        if self.read_timeout is not None:
            self.sock.settimeout(self.read_timeout)


class SafeHTTPConnection(_PeerChecked):
    pass


class SafeHTTPSConnection(http.client.HTTPSConnection, _PeerChecked):
    """HTTPSConnection.connect opens the socket through _PeerChecked, then wraps it in TLS
    (the default context: certificates and host names verified)."""


CONNECTION_CLASSES = {"http": SafeHTTPConnection, "https": SafeHTTPSConnection}

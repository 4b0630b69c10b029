"""`Authorization: Api-Key <key>`: integrations call the API with a scoped key, not a
person's token (SPEC.md "Roles").

A recognised key authenticates as the admin who created it (`request.user`), with the key as
`request.auth` (so `actor_of` names an API client); its scopes are checked here, once, for
every view (integrations.scopes). A refused key (unknown, revoked, its person deactivated)
spends one anonymous call of the client's quota first, as a refused token does
(leadcrm.authentication): guessing keys is throttled like guessing tokens."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from integrations import scopes, selectors, services
from leadcrm.throttling import AnonRateThrottle

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            self._refuse(request, "Invalid Api-Key header: give one key, with no spaces.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            self._refuse(request, "Invalid Api-Key header: the key has only ASCII characters.")
        key = selectors.api_key_for(raw)
        if key is None or not key.user.is_active:
            self._refuse(request, "Invalid or revoked API key.")
        match = getattr(request._request, "resolver_match", None)
        if match is None or not scopes.allows(key.scopes, match.namespace, match.url_name or "", request.method):
            raise exceptions.PermissionDenied("This API key's scopes do not allow this operation.")
        services.api_key_touch(key=key)
        return key.user, key

    def authenticate_header(self, request) -> str:
        return KEYWORD

    @staticmethod
    def _refuse(request, message: str) -> None:
        throttle = AnonRateThrottle()
        if not throttle.allow_refused_credentials(request):
            raise exceptions.Throttled(wait=throttle.wait())
        raise exceptions.AuthenticationFailed(message)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The scheme in the OpenAPI document (SPEC's integrators read it)."""

    target_class = "integrations.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: an integration key, limited to its scopes (capture, read, write, admin).",
        }

"""Enrichment providers: given what a lead already says, propose values for its fields.

A provider is anything with a `name` and a `propose(known) -> list[Proposal]` (a plain
protocol): `known` is the lead's data by public field name (SPEC.md "Lead fields": email,
first_name, last_name, phone, job_title, company, company_domain, industry, company_size,
country, city, properties). A proposal names a public field, or `properties.<key>` for a
custom field, with a confidence from 0 to 1. Providers only propose: what is applied (blank
fields only, cleaned by the leads' own rules) is `enrichment.services.leads_enrich`'s call.

A provider that cannot answer raises `ProviderError` (`transient` when trying again later may
help: a timeout, a 5xx); the service goes on with the others and the lead is never held.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from http.client import HTTPException
from typing import Protocol, runtime_checkable

from django.conf import settings

from enrichment import rules

# The public fields a provider may fill (never the e-mail, the lifecycle or the scores).
ENRICHABLE_FIELDS = (
    "first_name",
    "last_name",
    "job_title",
    "company",
    "company_domain",
    "industry",
    "company_size",
    "country",
    "city",
)
PROPERTY_PREFIX = "properties."


@dataclass(frozen=True)
class Proposal:
    field: str  # a name of ENRICHABLE_FIELDS or "properties.<key>"
    value: str | int
    confidence: float


class ProviderError(Exception):
    def __init__(self, message: str, *, transient: bool = False):
        super().__init__(message)
        self.transient = transient


@runtime_checkable
class Provider(Protocol):
    name: str

    def propose(self, known: Mapping[str, object]) -> list[Proposal]: ...


def _text(known: Mapping[str, object], name: str) -> str:
    value = known.get(name)
    return value if isinstance(value, str) else ""


class BuiltinProvider:
    """What can be derived offline (`enrichment.rules`): the company's domain and name from a
    work e-mail, the country from the phone's international prefix or a country-code domain,
    seniority and department (custom fields) from the job title."""

    name = "builtin"

    def propose(self, known: Mapping[str, object]) -> list[Proposal]:
        out: list[Proposal] = []
        email = _text(known, "email")
        domain = rules.company_domain_from_email(email)
        if domain:
            out.append(Proposal("company_domain", domain, 0.9))
        name = rules.company_name_from_domain(_text(known, "company_domain") or domain)
        if name:
            out.append(Proposal("company", name, 0.6))
        country, sure = rules.country_from_phone(_text(known, "phone"))
        if country:
            out.append(Proposal("country", country, 0.9 if sure else 0.5))
        else:
            country = rules.country_from_domain(_text(known, "company_domain") or domain)
            if country:
                out.append(Proposal("country", country, 0.7))
            else:
                country = rules.country_from_domain(rules.email_domain(email))  # free mail: orange.fr
                if country:
                    out.append(Proposal("country", country, 0.5))
        title = _text(known, "job_title")
        seniority = rules.seniority_from_title(title)
        if seniority:
            out.append(Proposal(f"{PROPERTY_PREFIX}seniority", seniority, 0.8))
        department = rules.department_from_title(title)
        if department:
            out.append(Proposal(f"{PROPERTY_PREFIX}department", department, 0.8))
        return out


MAX_RESPONSE_BYTES = 64 * 1024
MAX_PROPOSALS = 100


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a provider answers, it does not send us elsewhere
        return None


class HttpProvider:
    """The contract of an external enrichment service.

    Request: `POST <url>` with `Content-Type: application/json`, `Authorization: Bearer <key>`
    and the body `{"lead": {<known fields>}}`. Answer: 200 with
    `{"proposals": [{"field": "industry", "value": "Software", "confidence": 0.8}, ...]}`
    (at most 64 KB; `field` as in `Proposal`). Anything else is a `ProviderError`: transient
    for a timeout, a connection error, a 429 or a 5xx (the task tries again later); final for
    another status or a body that is not that shape. The whole call, reading included, takes
    at most `timeout` seconds; redirects are not followed; proposals of a bad shape are
    dropped one by one."""

    name = "http"

    def __init__(self, url: str, api_key: str = "", timeout: float = 5.0):
        self.url, self.api_key, self.timeout = url, api_key, timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)

    def propose(self, known: Mapping[str, object]) -> list[Proposal]:
        body = json.dumps({"lead": dict(known)}, default=str).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "LeadCRM"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        deadline = time.monotonic() + self.timeout
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = self._read(response, deadline)
        except urllib.error.HTTPError as exc:
            transient = exc.code == 429 or exc.code >= 500
            raise ProviderError(f"HTTP {exc.code}", transient=transient) from exc
        except (urllib.error.URLError, HTTPException, OSError) as exc:  # refused, reset, timed out
            raise ProviderError(f"Unreachable: {exc}", transient=True) from exc
        try:
            answer = json.loads(raw)
        except ValueError as exc:
            raise ProviderError("The answer is not JSON.") from exc
        items = answer.get("proposals") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ProviderError('The answer has no "proposals" list.')
        return [p for p in (_proposal(item) for item in items[:MAX_PROPOSALS]) if p is not None]

    def _read(self, response, deadline: float) -> bytes:
        chunks, size = [], 0
        while True:
            if time.monotonic() > deadline:
                raise ProviderError("Timed out reading the answer.", transient=True)
            chunk = response.read(8192)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise ProviderError("The answer is too large.")
            chunks.append(chunk)


def _proposal(item: object) -> Proposal | None:
    if not isinstance(item, dict):
        return None
    field, value, confidence = item.get("field"), item.get("value"), item.get("confidence")
    if not isinstance(field, str) or not (
        field in ENRICHABLE_FIELDS or (field.startswith(PROPERTY_PREFIX) and len(field) > len(PROPERTY_PREFIX))
    ):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        return None
    return Proposal(field, value, float(confidence))


def configured_providers() -> list[Provider]:
    """The built-in provider, then the external service when its URL is set."""
    providers: list[Provider] = [BuiltinProvider()]
    url = getattr(settings, "LEADCRM_ENRICHMENT_URL", "")
    if url:
        providers.append(
            HttpProvider(
                url,
                getattr(settings, "LEADCRM_ENRICHMENT_API_KEY", ""),
                float(getattr(settings, "LEADCRM_ENRICHMENT_TIMEOUT", 5.0)),
            )
        )
    return providers

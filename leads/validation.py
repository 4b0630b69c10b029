"""The lead input rules, in one plain function the single-lead serializer, the 10,000-row
bulk path, the CSV import and the admin's lead form use (the fields, their public names and
lengths: `leads.fields.INPUT_FIELDS`). Written by hand because a DRF serializer per row costs ~180 µs
(field copies and validator chains), a third of the bulk budget; this costs ~30 µs."""

from __future__ import annotations

import datetime as dt
import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.dateparse import parse_datetime

from leadcrm import inputs
from leads.fields import CONSENT_TEXT_MAX_LENGTH, INPUT_FIELDS, MAX_COMPANY_SIZE
from leads.models import ConsentPurpose, LegalBasis, Stage
from leads.normalize import normalize_country, normalize_domain, normalize_phone, normalize_properties

# public name -> (model attribute, max length), from the one field table
TEXT_FIELDS: dict[str, tuple[str, int]] = {f.name: (f.attr, f.max_length) for f in INPUT_FIELDS if f.kind == "text"}
EMAIL_MAX_LENGTH = next(f.max_length for f in INPUT_FIELDS if f.kind == "email")
HISTORY_FIELDS = ("stage", "owner", "closed_at")
STAGES = frozenset(Stage.values)


def _text(value: object, max_length: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("Not a valid string.")
    value = str(value).strip()
    problem = inputs.text_problem(value)  # the API's parser refused it already; CSV cells not
    if problem:
        raise ValueError(problem)
    if len(value) > max_length:
        raise ValueError(f"Ensure this field has no more than {max_length} characters.")
    return value


def _size(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("A valid integer is required.")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ValueError("A valid integer is required.")
    if not 0 <= number <= MAX_COMPANY_SIZE:
        raise ValueError(f"Must be between 0 and {MAX_COMPANY_SIZE:,} employees.")
    return number


def _datetime(value: object) -> dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) and value.isascii() else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("Datetime has wrong format. Use ISO 8601, e.g. 2024-05-01T10:00:00Z.")
    return inputs.check_datetime(parsed)


CONSENT_KEYS = ("status", "source", "text", "at", "double_opt_in", "ip", "user_agent", "purpose", "legal_basis")
CONSENT_USER_AGENT_MAX_LENGTH = 500


def clean_consent(value: object) -> dict:
    """The `consent` input: what the person agreed to, where, in which words and when."""
    if not isinstance(value, dict):
        raise ValueError('An object such as {"status": "opt_in", "source": "webinar form"}.')
    unknown = sorted(str(k) for k in value if k not in CONSENT_KEYS)
    if unknown:
        raise ValueError(f"Unknown key {unknown[0]!r}; expected {', '.join(CONSENT_KEYS)}.")
    status = value.get("status")
    if status not in ("opt_in", "opt_out"):
        raise ValueError('status: "opt_in" or "opt_out".')
    double = value.get("double_opt_in", False)
    if not isinstance(double, bool):
        raise ValueError("double_opt_in: true or false.")
    if double and status != "opt_in":
        raise ValueError("double_opt_in: only with an opt_in.")
    clean = {"status": status, "double_opt_in": double}
    for key, limit in (("source", 200), ("text", CONSENT_TEXT_MAX_LENGTH)):
        try:
            clean[key] = _text(value.get(key, ""), limit)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from exc
    try:
        clean["at"] = _datetime(value.get("at"))
    except ValueError as exc:
        raise ValueError(f"at: {exc}") from exc
    return {**clean, **_consent_evidence(value)}


def _consent_evidence(value: dict) -> dict:
    """The consent log's optional evidence: the person's IP and browser (a form relayed by a
    server knows them, the API's caller may not be the person), the purpose and legal basis."""
    clean: dict = {}
    ip = value.get("ip")
    if ip not in (None, ""):
        try:
            clean["ip"] = str(ipaddress.ip_address(ip if isinstance(ip, str) else ""))
        except ValueError as exc:
            raise ValueError("ip: Enter a valid IPv4 or IPv6 address.") from exc
    try:
        agent = _text(value.get("user_agent", ""), CONSENT_USER_AGENT_MAX_LENGTH)
    except ValueError as exc:
        raise ValueError(f"user_agent: {exc}") from exc
    if agent:
        clean["user_agent"] = agent
    for key, choices in (("purpose", ConsentPurpose.values), ("legal_basis", LegalBasis.values)):
        given = value.get(key)
        if given in (None, ""):
            continue
        if not isinstance(given, str) or given not in choices:
            raise ValueError(f"{key}: one of {', '.join(choices)}.")
        clean[key] = given
    return clean


def clean_lead_row(row: object, *, partial: bool = False, history: bool = False) -> tuple[dict, dict]:
    """Return (clean data keyed by model attribute, errors keyed by public field name).

    `partial` (PATCH) makes e-mail optional; `history` (admins' bulk import) also accepts
    `stage`, `owner` (user id) and `closed_at`.
    """
    if not isinstance(row, dict):
        return {}, {"non_field_errors": ["Expected a JSON object."]}
    clean: dict = {}
    errors: dict[str, list[str]] = {}

    email = row.get("email")
    if email is None or email == "":
        if not partial or "email" in row:
            errors["email"] = ["This field is required."]
    elif not isinstance(email, str) or len(email) > EMAIL_MAX_LENGTH or inputs.text_problem(email):
        errors["email"] = ["Enter a valid email address."]
    else:
        email = email.strip().lower()
        try:
            validate_email(email)
            clean["email"] = email
        except ValidationError:
            errors["email"] = ["Enter a valid email address."]

    for name, (attr, max_length) in TEXT_FIELDS.items():
        if name in row:
            try:
                clean[attr] = _text(row[name], max_length)
            except ValueError as exc:
                errors[name] = [str(exc)]
    checks = (
        ("country", "country", normalize_country),
        ("company_domain", "company_domain", normalize_domain),
        ("properties", "properties", normalize_properties),
        ("company_size", "company_size", _size),
        ("consent", "consent", clean_consent),
    )
    for name, attr, check in checks:
        if name in row and name not in errors:
            try:
                clean[attr] = check(clean.get(attr, row[name]))
            except ValueError as exc:
                errors[name] = [str(exc)]
    domain = clean.get("company_domain")
    if domain and ("." not in domain or " " in domain):
        errors["company_domain"] = ["Enter a domain such as example.com."]
    if clean.get("phone") and "country" not in errors:
        clean["phone"] = normalize_phone(clean["phone"], clean.get("country", ""))

    present = [f for f in HISTORY_FIELDS if f in row]
    if present and not history:
        errors[present[0]] = ["Only admins importing history may set stage, owner or closed_at."]
    elif present:
        if "stage" in row:
            if isinstance(row["stage"], str) and row["stage"] in STAGES:
                clean["stage"] = row["stage"]
            else:
                errors["stage"] = [f"{row['stage']!r} is not a valid stage."]
        if row.get("owner") is not None:
            if inputs.int_or_none(row["owner"], minimum=1) is not None and not isinstance(row["owner"], (bool, str)):
                clean["owner"] = row["owner"]
            else:
                errors["owner"] = ["A user id is required."]
        try:
            clean["closed_at"] = _datetime(row.get("closed_at"))
        except ValueError as exc:
            errors["closed_at"] = [str(exc)]
    return clean, errors

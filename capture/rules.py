"""The rules of a form's configuration and of what a visitor may submit: plain functions the
services, the API and the pages share (no database access here).

A form's field is `{"name", "maps_to", "required", "label": {"en", "fr"}, "help"}`: `maps_to`
is a lead input the capture accepts (`LEAD_TARGETS`, the names of
`leads.validation.clean_lead_row`) or `properties.<key>`. A submission's `fields` object is
mapped to one lead input row, which `clean_lead_row` then judges (so a form never accepts
what the leads API would refuse)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from capture.models import HONEYPOT, LEAD_TARGETS, TARGET_ATTRS
from leadcrm import inputs
from leadcrm.errors import ServiceError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
PROPERTY_RE = re.compile(r"^properties\.([A-Za-z][A-Za-z0-9_]{0,49})$")
MAX_FIELDS = 40
MAX_ORIGINS = 20
LABEL_MAX = 200
HELP_MAX = 500
TEXT_MAX = 2000
VALUE_MAX = 2000
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
UTM_MAX = 200
LANGUAGES = ("en", "fr")
FIELD_KEYS = ("name", "maps_to", "required", "label", "help")
TOUCH_KEYS = (*UTM_KEYS, "referrer", "page_url", "at")


def _text(value: object, limit: int, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what}: a string.")
    value = value.strip()
    problem = inputs.text_problem(value)
    if problem:
        raise ValueError(f"{what}: {problem}")
    if len(value) > limit:
        raise ValueError(f"{what}: at most {limit} characters.")
    return value


def clean_field(value: object) -> dict:
    """One field of a form, normalised; ValueError says what is wrong."""
    if not isinstance(value, dict):
        raise ValueError('Each field is an object such as {"name": "email", "maps_to": "email"}.')
    unknown = sorted(str(k) for k in value if k not in FIELD_KEYS)
    if unknown:
        raise ValueError(f"Unknown key {unknown[0]!r}; expected {', '.join(FIELD_KEYS)}.")
    name = value.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError("name: lower-case letters, digits and _ (starting with a letter), at most 50.")
    if name == HONEYPOT or name.startswith("utm_"):
        raise ValueError(f"name: {name!r} is reserved.")
    maps_to = value.get("maps_to")
    if not isinstance(maps_to, str) or not (maps_to in LEAD_TARGETS or PROPERTY_RE.match(maps_to)):
        raise ValueError(f"maps_to: one of {', '.join(LEAD_TARGETS)} or properties.<key>.")
    required = value.get("required", False)
    if not isinstance(required, bool):
        raise ValueError("required: true or false.")
    label = value.get("label") or {}
    if isinstance(label, str):
        label = {"en": label}
    if not isinstance(label, dict) or any(k not in LANGUAGES for k in label):
        raise ValueError('label: {"en": "...", "fr": "..."}.')
    clean_label = {lang: _text(label.get(lang), LABEL_MAX, f"label.{lang}") for lang in LANGUAGES}
    if not clean_label["en"]:
        clean_label["en"] = name.replace("_", " ").capitalize()
    return {
        "name": name,
        "maps_to": maps_to,
        "required": required,
        "label": clean_label,
        "help": _text(value.get("help"), HELP_MAX, "help"),
    }


def clean_fields(value: object, *, key: str, progressive: bool = False) -> list[dict]:
    """A list of fields; the form's own list must ask for the e-mail (required)."""
    if not isinstance(value, list):
        raise ServiceError({key: ["A list of fields."]})
    if len(value) > MAX_FIELDS:
        raise ServiceError({key: [f"At most {MAX_FIELDS} fields."]})
    fields = []
    for i, item in enumerate(value):
        try:
            fields.append(clean_field(item))
        except ValueError as exc:
            raise ServiceError({key: [f"Field {i + 1}: {exc}"]}) from exc
    emails = [f for f in fields if f["maps_to"] == "email"]
    if progressive and emails:
        raise ServiceError({key: ["The e-mail is asked by the form itself, not by the queue."]})
    if not progressive:
        if not emails:
            raise ServiceError({key: ["A form asks for the e-mail: one field maps to email."]})
        for f in emails:
            f["required"] = True
    return fields


def check_distinct(fields: list[dict], progressive: list[dict]) -> None:
    """No two questions of a form (fields and queue) share a name or a lead field."""
    seen_names: set[str] = set()
    seen_targets: set[str] = set()
    for key, group in (("fields", fields), ("progressive", progressive)):
        for f in group:
            if f["name"] in seen_names:
                raise ServiceError({key: [f"Two fields are named {f['name']!r}."]})
            if f["maps_to"] in seen_targets:
                raise ServiceError({key: [f"Two fields fill {f['maps_to']!r}."]})
            seen_names.add(f["name"])
            seen_targets.add(f["maps_to"])


def clean_origin(value: object) -> str:
    """`https://www.example.com[:port]`, lower-cased, nothing after the host."""
    if not isinstance(value, str):
        raise ValueError("An origin such as https://www.example.com.")
    text = value.strip().rstrip("/")
    parts = urlsplit(text) if text.isascii() else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
        or parts.password
    ):
        raise ValueError(f"{value!r} is not an origin such as https://www.example.com.")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r}: bad port.") from exc
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def clean_origins(value: object) -> list[str]:
    if not isinstance(value, list):
        raise ServiceError({"allowed_origins": ["A list of origins such as https://www.example.com."]})
    if len(value) > MAX_ORIGINS:
        raise ServiceError({"allowed_origins": [f"At most {MAX_ORIGINS} origins."]})
    out: list[str] = []
    for item in value:
        try:
            origin = clean_origin(item)
        except ValueError as exc:
            raise ServiceError({"allowed_origins": [str(exc)]}) from exc
        if origin not in out:
            out.append(origin)
    return out


def clean_url(value: object, key: str) -> str:
    if value in (None, ""):
        return ""
    try:
        text = _text(value, TEXT_MAX, key)
    except ValueError as exc:
        raise ServiceError({key: [str(exc)]}) from exc
    parts = urlsplit(text) if text.isascii() else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ServiceError({key: ["An http(s) address."]})
    return text


def clean_text(value: object, key: str, limit: int = TEXT_MAX) -> str:
    try:
        return _text(value, limit, key)
    except ValueError as exc:
        raise ServiceError({key: [str(exc)]}) from exc


# --- what a visitor submits --------------------------------------------------------------


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """No Origin header (a server-side integration): allowed; a browser's must be listed."""
    if origin is None:
        return True
    try:
        return clean_origin(origin) in allowed
    except ValueError:
        return False


def clean_touch(value: object) -> dict:
    """The first touch the visitor's browser kept: UTM, referrer, landing URL, when."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key in TOUCH_KEYS:
        v = value.get(key)
        if isinstance(v, str) and v and not inputs.text_problem(v):
            out[key] = v[: UTM_MAX if key.startswith("utm_") else TEXT_MAX]
    return out


def _value(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, float) and value != value:  # NaN
            raise ValueError("Not a value.")
        return value
    if isinstance(value, str):
        if inputs.text_problem(value):
            raise ValueError(inputs.text_problem(value))
        if len(value) > VALUE_MAX:
            raise ValueError(f"At most {VALUE_MAX} characters.")
        return value.strip()
    raise ValueError("A text, a number or true/false.")


def lead_row(form_fields: list[dict], asked: list[str], values: object) -> dict:
    """Map the visitor's answers (`{field name: value}`) to a lead input row with the public
    names of `clean_lead_row`. `asked` (the names the form showed, from its render token)
    decides which required fields must be there; answers to questions the form does not
    have are ignored. Raises ServiceError keyed by the form's field names."""
    if not isinstance(values, dict):
        raise ServiceError({"fields": ['An object such as {"email": "ada@example.com"}.']})
    by_name = {f["name"]: f for f in form_fields}
    shown = set(asked)
    row: dict = {}
    errors: dict[str, list[str]] = {}
    for name, field in by_name.items():
        raw = values.get(name)
        try:
            value = _value(raw)
        except ValueError as exc:
            errors[name] = [str(exc)]
            continue
        if value in (None, ""):
            if field["required"] and (name in shown or field["maps_to"] == "email"):
                errors[name] = ["This field is required."]
            continue
        target = field["maps_to"]
        if target.startswith("properties."):
            row.setdefault("properties", {})[target.split(".", 1)[1]] = value
        else:
            row[target] = value
    if errors:
        raise ServiceError(errors)
    return row


def field_errors(form_fields: list[dict], errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """`clean_lead_row`'s errors (by lead input) named by the form's fields."""
    by_target = {f["maps_to"]: f["name"] for f in form_fields}
    out: dict[str, list[str]] = {}
    for key, messages in errors.items():
        if key in UTM_KEYS:
            out[key] = messages
        elif key == "properties":
            names = [f["name"] for f in form_fields if f["maps_to"].startswith("properties.")]
            out[names[0] if len(names) == 1 else "fields"] = messages
        else:
            out[by_target.get(key, "fields")] = messages
    return out


def value_known(lead: object, maps_to: str) -> bool:
    """Does the lead already hold a value for this question?"""
    if lead is None:
        return False
    if maps_to.startswith("properties."):
        return getattr(lead, "properties", {}).get(maps_to.split(".", 1)[1]) not in (None, "")
    return getattr(lead, TARGET_ATTRS.get(maps_to, maps_to), None) not in (None, "")


def questions(fields: list[dict], progressive: list[dict], lead: object) -> list[dict]:
    """Progressive profiling: for a known lead, each question already answered is replaced
    by the next unanswered one of the queue (the e-mail is always asked: it says who
    answers). Same number of questions; with the queue spent, the question stays."""
    queue = [q for q in progressive if not value_known(lead, q["maps_to"])]
    out = []
    for field in fields:
        if field["maps_to"] == "email" or not value_known(lead, field["maps_to"]):
            out.append(field)
        elif queue:
            out.append(queue.pop(0))
        else:
            out.append(field)
    return out

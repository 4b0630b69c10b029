"""The lead's field lists, named once: what a capture may write (and how each public name,
API or CSV, maps to the model and how long it may be), what the API answers, what the
lists export, and the groups the admin and the API show read-only. Lengths come from the
model, so a column widened in a migration widens every input with it."""

from __future__ import annotations

from dataclasses import dataclass

from leads.models import Lead

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The country is given as a code or a name ("Allemagne") and stored as its ISO alpha-2 code.
COUNTRY_INPUT_MAX_LENGTH = 100
MAX_COMPANY_SIZE = 10_000_000


@dataclass(frozen=True)
class InputField:
    """One public lead input: its name in the API and CSV mapping, the model attribute it
    fills, its kind ("email", "text", "size", "properties") and, for text, its max length."""

    name: str
    attr: str
    kind: str = "text"
    max_length: int | None = None


def _text(name: str, attr: str | None = None, max_length: int | None = None) -> InputField:
    attr = attr or name
    return InputField(name, attr, "text", max_length or Lead._meta.get_field(attr).max_length)


# In the order of SPEC.md (the API's schema, the CSV import's column choices).
INPUT_FIELDS: tuple[InputField, ...] = (
    InputField("email", "email", "email", Lead._meta.get_field("email").max_length),
    _text("first_name"),
    _text("last_name"),
    _text("phone"),
    _text("job_title"),
    _text("company", "company_name"),
    _text("company_domain"),
    _text("industry"),
    InputField("company_size", "company_size", "size"),
    _text("country", max_length=COUNTRY_INPUT_MAX_LENGTH),
    _text("city"),
    _text("source"),
    *(_text(name) for name in UTM_FIELDS),
    InputField("properties", "properties", "properties"),
)
# Besides these, a capture or an update may carry `consent` (write-only; `clean_consent`):
# recorded in the consent log by `leads.services.leads_consent_record`, read back as
# consent_status and consent_at.
CONSENT_TEXT_MAX_LENGTH = 2000
# Fields a capture or an update may write besides the e-mail (the identity) and the custom
# fields (merged, not replaced); the lifecycle and scores are not among them.
WRITABLE_FIELDS = tuple(f.attr for f in INPUT_FIELDS if f.kind in ("text", "size"))

LIFECYCLE_FIELDS = ("stage", "stage_changed_at", "closed_at")
SCORE_FIELDS = ("score", "fit_score", "engagement_score", "grade", "conversion_probability")
CONSENT_FIELDS = ("consent_status", "consent_at")
ACTIVITY_FIELDS = ("last_activity_at", "activity_count")

# The columns of the lists' CSV export: (header, value path).
EXPORT_COLUMNS = (
    ("id", "id"),
    ("email", "email"),
    ("first_name", "first_name"),
    ("last_name", "last_name"),
    ("company", "company_name"),
    ("country", "country"),
    ("source", "source"),
    ("utm_campaign", "utm_campaign"),
    ("stage", "stage"),
    ("grade", "grade"),
    ("score", "score"),
    ("owner", "owner__username"),
    ("created_at", "created_at"),
)

"""Pure normalisation of incoming lead data: country names, phones, e-mail domains,
currencies.

Each function returns the clean value or raises ValueError with a message meant for the
API's field errors.
"""

from __future__ import annotations

import gettext
import json
import re
import unicodedata
from functools import lru_cache

import phonenumbers
import pycountry

from leadcrm import inputs

FREE_MAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com yahoo.com yahoo.fr yahoo.co.uk hotmail.com hotmail.fr
    outlook.com outlook.fr live.com live.fr msn.com aol.com icloud.com me.com mac.com
    gmx.com gmx.de gmx.fr web.de orange.fr wanadoo.fr free.fr laposte.net sfr.fr
    neuf.fr bbox.fr proton.me protonmail.com yandex.com yandex.ru mail.ru zoho.com
    tutanota.com fastmail.com""".split()
)


def _fold(text: str) -> str:
    """Lower-case, strip accents and punctuation so 'Côte d’Ivoire' matches 'cote d'ivoire'."""
    text = "".join(c if c.isalnum() else " " for c in text.lower())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _country_index() -> dict[str, str]:
    fr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"])
    index: dict[str, str] = {}
    for c in pycountry.countries:
        names = {c.name, getattr(c, "common_name", ""), getattr(c, "official_name", "")}
        names |= {fr.gettext(n) for n in list(names) if n}
        for name in names:
            if name:
                index[_fold(name)] = c.alpha_2
        index[c.alpha_2.lower()] = c.alpha_2
        index[c.alpha_3.lower()] = c.alpha_2
    # Everyday names the standard spells otherwise.
    extra = {
        "usa": "US",
        "united states of america": "US",
        "etats unis": "US",
        "uk": "GB",
        "great britain": "GB",
        "england": "GB",
        "royaume uni": "GB",
        "grande bretagne": "GB",
        "russia": "RU",
        "russie": "RU",
        "south korea": "KR",
        "coree du sud": "KR",
        "holland": "NL",
        "pays bas": "NL",
        "czech republic": "CZ",
        "republique tcheque": "CZ",
        "vietnam": "VN",
        "iran": "IR",
        "syria": "SY",
        "ivory coast": "CI",
        "cote d ivoire": "CI",
    }
    index.update(extra)
    return index


@lru_cache(maxsize=4096)
def normalize_country(value: str) -> str:
    """'France', 'france', 'FR', 'FRA', 'Allemagne' → ISO alpha-2; blank stays blank."""
    if value is None or not str(value).strip():
        return ""
    code = _country_index().get(_fold(str(value)))
    if not code:
        raise ValueError(f"Unknown country: {value!r}. Use an ISO 3166-1 code or an English or French name.")
    return code


def normalize_currency(value: object) -> str:
    """An ISO 4217 code ('eur' → 'EUR'): the offer's currency, from the API, the lead page
    and the admin alike."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if len(code) != 3 or not code.isascii() or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"Unknown ISO 4217 currency: {value!r}.")
    return code


_SEPARATORS = str.maketrans("", "", " .-()/\u00a0")
_E164 = re.compile(r"\+[1-9]\d{7,14}")


def _international_digits(value: str) -> str:
    """Fast path for the common international form ('+33 6 12 34 56 78', '0033 6...'):
    digits after a known country code, 8 to 15 of them, are already E.164. Bulk imports
    spend most of their validation time in phonenumbers.parse otherwise."""
    digits = value.translate(_SEPARATORS)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not _E164.fullmatch(digits):
        return ""
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    cc = next((k for k in (1, 2, 3) if int(digits[1 : 1 + k]) in codes), 0)
    # A 0 after the country code is a trunk prefix ("+33 (0)6...") whose rules differ by
    # country (Italy keeps it): phonenumbers decides.
    if not cc or digits[1 + cc] == "0" or not 4 <= len(digits) - 1 - cc <= 14:
        return ""
    return digits


def normalize_phone(value: str, country: str = "") -> str:
    """E.164 when the number parses (with a possible length), else the text as given
    (SPEC.md). Full validity checks cost 3x more and reject real numbers whose ranges
    the metadata does not know yet."""
    value = (value or "").strip()
    if not value:
        return ""
    fast = _international_digits(value)
    if fast:
        return fast
    try:
        parsed = phonenumbers.parse(value, country or None)
    except phonenumbers.NumberParseException:
        return value
    if phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return value


def normalize_domain(value: str) -> str:
    value = (value or "").strip().lower()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = value.split("/")[0]
    if value.startswith("www."):
        value = value[4:]
    return value


def company_domain_from_email(email: str) -> str:
    domain = email.rsplit("@", 1)[-1].lower() if "@" in email else ""
    return "" if domain in FREE_MAIL_DOMAINS else domain


# Custom fields: one rule for the API, bulk, the CSV import and the admin. Numbers stay
# within what a JSON client (a float's 53 bits) and jsonb give back unchanged.
MAX_PROPERTIES = 100
MAX_PROPERTY_KEY = 100
MAX_PROPERTY_TEXT = 2000
MAX_PROPERTIES_BYTES = 16 * 1024
MAX_PROPERTY_NUMBER = 10**15


def normalize_properties(value: object) -> dict:
    """Custom fields are a flat JSON object of strings, numbers and booleans, at most
    MAX_PROPERTIES keys and MAX_PROPERTIES_BYTES of JSON."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("Must be a JSON object of custom fields.")
    if len(value) > MAX_PROPERTIES:
        raise ValueError(f"At most {MAX_PROPERTIES} custom fields.")
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_PROPERTY_KEY or inputs.text_problem(key):
            raise ValueError(f"Invalid property name: {key[:MAX_PROPERTY_KEY]!r}.")
        if item is not None and not isinstance(item, (str, int, float, bool)):
            raise ValueError(f"Property {key!r} must be a string, number, boolean or null.")
        if isinstance(item, str):
            if len(item) > MAX_PROPERTY_TEXT:
                raise ValueError(f"Property {key!r} is longer than {MAX_PROPERTY_TEXT} characters.")
            problem = inputs.text_problem(item)
            if problem:
                raise ValueError(f"Property {key!r}: {problem}")
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            if not (-MAX_PROPERTY_NUMBER <= item <= MAX_PROPERTY_NUMBER):  # NaN fails too
                raise ValueError(f"Property {key!r} must be a number within ±{MAX_PROPERTY_NUMBER:.0e}.")
    size = len(json.dumps(value, ensure_ascii=False).encode())
    if size > MAX_PROPERTIES_BYTES:
        raise ValueError(f"Custom fields take at most {MAX_PROPERTIES_BYTES // 1024} KB of JSON ({size:,} bytes sent).")
    return value


def merge_properties(stored: dict, sent: dict) -> dict:
    """PATCH's merge (a key sent as null is removed), held to the same limits as what is
    sent: ValueError when the lead would then hold too many or too much."""
    merged = {k: v for k, v in {**stored, **sent}.items() if v is not None}
    try:
        return normalize_properties(merged)
    except ValueError as exc:
        raise ValueError(f"With the custom fields the lead has: {exc} Set unused ones to null.") from exc

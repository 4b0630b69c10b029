"""What can be derived offline from what a lead already says: pure functions over plain data
(`enrichment.data`), no database, no network. Each takes any string and returns a value or
"" (never raises): a capture's input is open-ended."""

from __future__ import annotations

import functools
import unicodedata

import phonenumbers
import pycountry

from enrichment import data


def _fold(text: str) -> str:
    """Lower-case ASCII words separated by single spaces ("Directeur Général R&D" →
    "directeur general r d"), so rules match whole words whatever the accents."""
    text = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return " ".join("".join(c if c.isalnum() else " " for c in text).split())


@functools.cache
def _iso_countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def email_domain(email: str) -> str:
    """The domain of an e-mail address, lower-cased ("" when it has none that looks real)."""
    if not isinstance(email, str) or email.count("@") != 1:
        return ""
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(label and len(label) <= 63 for label in labels) or len(domain) > 253:
        return ""
    if not all(c.isascii() and (c.isalnum() or c == "-") for label in labels for c in label):
        return ""
    return domain


def is_free_mail(domain: str) -> bool:
    return isinstance(domain, str) and domain.lower() in data.FREE_MAIL_DOMAINS


def company_domain_from_email(email: str) -> str:
    """The company's domain from a work address; "" for a free-mail one (gmail.com is nobody's)."""
    domain = email_domain(email)
    return "" if not domain or is_free_mail(domain) else domain


def company_name_from_domain(domain: str) -> str:
    """A readable company name from its domain: the registered label, "-" and "_" as spaces,
    each word capitalised ("acme-robotics.co.uk" → "Acme Robotics"; "mail.acme.com" → "Acme")."""
    if not isinstance(domain, str):
        return ""
    labels = [label for label in domain.lower().strip().strip(".").split(".") if label]
    if len(labels) < 2:
        return ""
    suffix = 2 if ".".join(labels[-2:]) in data.SECOND_LEVEL_SUFFIXES and len(labels) >= 3 else 1
    label = labels[-1 - suffix]
    words = label.replace("_", "-").split("-")
    return " ".join(w.capitalize() for w in words if w)[:200]


def country_from_domain(domain: str) -> str:
    """The country of a country-code top-level domain ("acme.fr" → "FR", ".co.uk" → "GB");
    "" for a generic one (.com, and .io, .co, .ai... used as generic names)."""
    if not isinstance(domain, str) or "." not in domain:
        return ""
    tld = domain.lower().strip().rstrip(".").rsplit(".", 1)[-1]
    if len(tld) != 2 or not tld.isascii() or not tld.isalpha() or tld in data.GENERIC_CCTLDS:
        return ""
    code = data.CCTLD_TO_COUNTRY.get(tld, tld.upper())
    return code if code in _iso_countries() else ""


def country_from_phone(phone: str) -> tuple[str, bool]:
    """The country of a number's international prefix ("+33 6 …", "0033 6 …" → "FR") and
    whether the prefix belongs to that country alone (+1 is shared by the US, Canada and the
    Caribbean, +44 by the UK and the Crown dependencies: the main country, not sure).
    ("", False) for a national or unreadable number."""
    if not isinstance(phone, str):
        return "", False
    digits = "".join(c for c in phone.strip() if c.isascii() and (c.isdigit() or c == "+"))
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+") or "+" in digits[1:] or not 8 <= len(digits) - 1 <= 15:
        return "", False
    table = phonenumbers.COUNTRY_CODE_TO_REGION_CODE  # the calling-code table
    for size in (1, 2, 3):  # calling codes are prefix-free
        regions = table.get(int(digits[1 : 1 + size]) if digits[1 : 1 + size] else -1)
        if regions:
            countries = [r for r in regions if r in _iso_countries()]
            return (countries[0], len(countries) == 1) if countries else ("", False)
    return "", False


def _first_rule(title: str, rules: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    if not isinstance(title, str):
        return ""
    folded = f" {_fold(title)} "
    if not folded.strip():
        return ""
    for value, words in rules:
        if any(f" {word} " in folded for word in words):
            return value
    return ""


def seniority_from_title(title: str) -> str:
    """c_level, vp, director, manager, individual_contributor or intern ("" when no word of
    the title says), in English or French."""
    return _first_rule(title, data.SENIORITY_RULES)


def department_from_title(title: str) -> str:
    """sales, marketing, customer_success, product, engineering, finance, hr, legal,
    operations or executive ("" when no word of the title says)."""
    return _first_rule(title, data.DEPARTMENT_RULES)

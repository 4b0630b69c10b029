"""Normalisation of incoming lead data (leads.normalize): pure functions, no database."""

from __future__ import annotations

import gettext

import pycountry
import pytest

from leads.normalize import (
    FREE_MAIL_DOMAINS,
    company_domain_from_email,
    normalize_country,
    normalize_domain,
    normalize_phone,
    normalize_properties,
)

# --- countries -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("France", "FR"),
        ("france", "FR"),
        ("  FRANCE ", "FR"),
        ("FR", "FR"),
        ("fr", "FR"),
        ("FRA", "FR"),
        ("Germany", "DE"),
        ("Allemagne", "DE"),
        ("DEU", "DE"),
        ("Espagne", "ES"),
        ("Suisse", "CH"),
        ("Belgique", "BE"),
        ("Royaume-Uni", "GB"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("États-Unis", "US"),
        ("Etats-Unis", "US"),
        ("United States", "US"),
        ("USA", "US"),
        ("Pays-Bas", "NL"),
        ("Côte d’Ivoire", "CI"),
        ("Cote d'Ivoire", "CI"),
        ("Corée du Sud", "KR"),
        ("Viet Nam", "VN"),
        ("Vietnam", "VN"),
    ],
)
def test_country_names_and_codes_become_alpha_2(given, code):
    assert normalize_country(given) == code


def test_every_iso_country_by_code_and_english_and_french_name():
    fr = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["fr"])
    wrong = []
    for c in pycountry.countries:
        for given in (c.alpha_2, c.alpha_3, c.name, getattr(c, "common_name", None), fr.gettext(c.name)):
            if given and normalize_country(given) != c.alpha_2:
                wrong.append((given, normalize_country(given), c.alpha_2))
    assert wrong == []


@pytest.mark.parametrize("given", ["Narnia", "XX", "XYZ", "Fr ance", "Europe", "12"])
def test_unknown_country_raises_with_a_readable_message(given):
    with pytest.raises(ValueError, match="Unknown country"):
        normalize_country(given)


@pytest.mark.parametrize("given", ["", "   ", None])
def test_blank_country_stays_blank(given):
    assert normalize_country(given) == ""


# --- phones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "country", "e164"),
    [
        ("+33 6 12 34 56 78", "", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "", "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("06.12.34.56.78", "FR", "+33612345678"),
        ("+1 650-253-0000", "", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("030 1234567", "DE", "+49301234567"),
    ],
)
def test_parseable_phones_become_e164(given, country, e164):
    assert normalize_phone(given, country) == e164


@pytest.mark.parametrize(
    ("given", "country"),
    [
        ("call me maybe", ""),
        ("06 12 34 56 78", ""),  # national number, country unknown: cannot parse
        ("+33 1", ""),  # parses, not a valid number
        ("ext. 42", "FR"),
    ],
)
def test_unparseable_phones_are_kept_as_given(given, country):
    assert normalize_phone(given, country) == given


def test_blank_phone_stays_blank():
    assert normalize_phone("  ") == ""
    assert normalize_phone(None) == ""


# --- e-mail and company domains ------------------------------------------------------------


@pytest.mark.parametrize("domain", ["gmail.com", "hotmail.fr", "orange.fr", "yahoo.co.uk", "protonmail.com"])
def test_free_mail_domains_give_no_company_domain(domain):
    assert domain in FREE_MAIL_DOMAINS
    assert company_domain_from_email(f"someone@{domain}") == ""
    assert company_domain_from_email(f"someone@{domain.upper()}") == ""


def test_company_domain_comes_from_a_business_email():
    assert company_domain_from_email("jane.doe@Acme.COM") == "acme.com"
    assert company_domain_from_email("no-at-sign") == ""


@pytest.mark.parametrize(
    ("given", "clean"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("http://acme.com", "acme.com"),
        ("www.acme.fr", "acme.fr"),
        (" ACME.io ", "acme.io"),
        ("", ""),
        (None, ""),
    ],
)
def test_domains_are_normalised(given, clean):
    assert normalize_domain(given) == clean


# --- custom properties ---------------------------------------------------------------------


def test_flat_properties_of_scalars_are_accepted():
    value = {"plan": "pro", "seats": 12, "ratio": 0.5, "vip": True, "note": None}
    assert normalize_properties(value) == value


def test_missing_properties_are_an_empty_object():
    assert normalize_properties(None) == {}


@pytest.mark.parametrize("value", [[1, 2], "plan=pro", 42, True])
def test_properties_must_be_an_object(value):
    with pytest.raises(ValueError, match="JSON object"):
        normalize_properties(value)


@pytest.mark.parametrize("item", [{"nested": "object"}, ["a", "list"]])
def test_property_values_must_be_scalars(item):
    with pytest.raises(ValueError, match="'plan'"):
        normalize_properties({"plan": item})


@pytest.mark.parametrize("key", ["", "   ", "k" * 101])
def test_property_names_must_be_short_and_not_blank(key):
    with pytest.raises(ValueError, match="Invalid property name"):
        normalize_properties({key: "x"})


def test_property_strings_are_capped():
    assert normalize_properties({"bio": "x" * 2000})
    with pytest.raises(ValueError, match="2000"):
        normalize_properties({"bio": "x" * 2001})

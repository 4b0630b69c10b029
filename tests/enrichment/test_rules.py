"""The built-in provider's rules: plain functions over plain data, no database. Examples, and
hypothesis over arbitrary strings: they never raise and answer only values of their sets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enrichment import rules
from enrichment.providers import BuiltinProvider, Proposal

SENIORITIES = {"", "c_level", "vp", "director", "manager", "individual_contributor", "intern"}
DEPARTMENTS = {
    "",
    "sales",
    "marketing",
    "customer_success",
    "product",
    "engineering",
    "finance",
    "hr",
    "legal",
    "operations",
    "executive",
}


@pytest.mark.parametrize(
    "email, domain, name",
    [
        ("jane@acme-robotics.com", "acme-robotics.com", "Acme Robotics"),
        ("Jane.Doe@Mail.Globex.CO.UK", "mail.globex.co.uk", "Globex"),
        ("x@initech.fr", "initech.fr", "Initech"),
        ("someone@gmail.com", "", ""),  # free mail: nobody's company
        ("someone@orange.fr", "", ""),
        ("no-at-sign", "", ""),
        ("a@b@c.com", "", ""),
        ("a@localhost", "", ""),
        ("a@exa mple.com", "", ""),
    ],
)
def test_company_from_the_email_domain_unless_free_mail(email, domain, name):
    assert rules.company_domain_from_email(email) == domain
    assert rules.company_name_from_domain(domain) == name


@pytest.mark.parametrize(
    "phone, country, sure",
    [
        ("+33 6 12 34 56 78", "FR", True),
        ("0033612345678", "FR", True),
        ("+49 30 123456", "DE", True),
        ("+1 415 555 0100", "US", False),  # +1: the US, Canada and the Caribbean
        ("+44 20 7946 0958", "GB", False),  # +44: the UK and the Crown dependencies
        ("+352 26 12 34", "LU", True),
        ("06 12 34 56 78", "", False),  # national number: no prefix to read
        ("+999 1234 5678", "", False),  # no such calling code
        ("+33", "", False),
        ("", "", False),
    ],
)
def test_country_from_the_phones_international_prefix(phone, country, sure):
    assert rules.country_from_phone(phone) == (country, sure)


@pytest.mark.parametrize(
    "domain, country",
    [
        ("acme.fr", "FR"),
        ("globex.co.uk", "GB"),
        ("initech.de", "DE"),
        ("acme.com", ""),
        ("startup.io", ""),  # used as a generic name
        ("brand.co", ""),
        ("weird.zz", ""),  # not a country
        ("", ""),
    ],
)
def test_country_from_a_country_code_domain(domain, country):
    assert rules.country_from_domain(domain) == country


@pytest.mark.parametrize(
    "title, seniority, department",
    [
        ("CEO", "c_level", "executive"),
        ("Chief Technology Officer", "c_level", ""),
        ("Directeur Général", "c_level", "executive"),
        ("Président-directeur général", "c_level", "executive"),
        ("VP Sales", "vp", "sales"),
        ("Vice President, Engineering", "vp", "engineering"),
        ("Marketing Director", "director", "marketing"),
        ("Directrice financière", "director", "finance"),
        ("Head of People", "director", "hr"),
        ("Sales Manager", "manager", "sales"),
        ("Responsable des ressources humaines", "manager", "hr"),
        ("Chef de projet informatique", "manager", "engineering"),
        ("Senior Software Engineer", "individual_contributor", "engineering"),
        ("Ingénieur R&D", "individual_contributor", "engineering"),
        ("Juriste", "", "legal"),
        ("Stagiaire marketing", "intern", "marketing"),
        ("International Business Developer", "individual_contributor", "sales"),  # "international" is no intern
        ("Astronaut", "", ""),
        ("", "", ""),
    ],
)
def test_seniority_and_department_from_the_job_title(title, seniority, department):
    assert rules.seniority_from_title(title) == seniority
    assert rules.department_from_title(title) == department


def test_the_builtin_provider_proposes_what_it_derives():
    proposals = BuiltinProvider().propose(
        {"email": "jane@acme-robotics.de", "phone": "+33 6 12 34 56 78", "job_title": "VP Marketing"}
    )
    assert proposals == [
        Proposal("company_domain", "acme-robotics.de", 0.9),
        Proposal("company", "Acme Robotics", 0.6),
        Proposal("country", "FR", 0.9),  # the phone's prefix before the domain's country
        Proposal("properties.seniority", "vp", 0.8),
        Proposal("properties.department", "marketing", 0.8),
    ]
    by_domain = BuiltinProvider().propose({"email": "jane@acme.de"})
    assert Proposal("country", "DE", 0.7) in by_domain
    free = BuiltinProvider().propose({"email": "jane@orange.fr"})
    assert free == [Proposal("country", "FR", 0.5)]  # no company from free mail


@given(st.text())
def test_rules_never_raise_on_any_string(text):
    assert isinstance(rules.company_domain_from_email(text), str)
    assert isinstance(rules.company_name_from_domain(text), str)
    assert len(rules.company_name_from_domain(text)) <= 200
    country = rules.country_from_domain(text)
    assert country == "" or (len(country) == 2 and country.isupper())
    phone_country, sure = rules.country_from_phone(text)
    assert phone_country == "" or len(phone_country) == 2
    assert isinstance(sure, bool)
    assert rules.seniority_from_title(text) in SENIORITIES
    assert rules.department_from_title(text) in DEPARTMENTS


@given(st.emails() | st.text(), st.text(), st.text(), st.one_of(st.none(), st.integers(), st.text()))
def test_the_builtin_provider_never_raises(email, phone, title, domain):
    proposals = BuiltinProvider().propose(
        {"email": email, "phone": phone, "job_title": title, "company_domain": domain}
    )
    assert all(0 <= p.confidence <= 1 and p.value != "" for p in proposals)
    assert len({p.field for p in proposals}) == len(proposals)  # one value per field


@given(st.emails())
def test_a_work_email_always_gives_its_domain(email):
    domain = rules.company_domain_from_email(email)
    assert domain == "" or email.lower().endswith("@" + domain)

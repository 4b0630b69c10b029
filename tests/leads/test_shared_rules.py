"""Rules written once and used by every entry point (issue 15 "each rule once"): the same
input is read the same way by the API, the pages and the admin, and the pages ask the
lifecycle rather than knowing its stages."""

from __future__ import annotations

import datetime as dt
import string
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from leads import funnel, lifecycle
from leads.admin import LeadAdminForm, OpportunityAdminForm
from leads.csv_import import PLACEHOLDERS, validate_line
from leads.fields import INPUT_FIELDS
from leads.models import FUNNEL_STAGES, Lead, Opportunity, Stage
from leads.normalize import normalize_currency
from leads.serializers import LeadInputSerializer, OpportunityInputSerializer

# --- the funnel -----------------------------------------------------------------------------


def test_a_lead_reached_every_funnel_stage_up_to_its_furthest():
    # ranks: 2 leads got to SQL (rank 2), 1 to WO (rank 5); -1 is off the funnel
    reached = funnel.reached([(2, 2), (5, 1), (-1, 4)])
    assert reached == {"MCL": 3, "MQL": 3, "SQL": 3, "SAL": 1, "CO": 1, "WO": 1}
    figures = funnel.funnel({"MCL": 7}, [(2, 2), (5, 1)])
    assert figures["conversion"]["SQL->SAL"] == round(1 / 3, 4)
    assert figures["conversion"]["MCL->MQL"] == 1.0
    assert funnel.funnel({}, [])["conversion"]["MCL->MQL"] is None


def test_the_rank_sql_follows_the_funnel_order():
    sql = funnel.rank_sql("to_stage")
    for i, stage in enumerate(FUNNEL_STAGES):
        assert f"WHEN '{stage.value}' THEN {i}" in sql
    assert sql.endswith("ELSE -1 END")


def test_reached_by_key_groups_the_ranks():
    out = funnel.reached_by_key([("g", 0, 2), ("g", 3, 1), (None, 1, 1)])
    assert out["g"]["MCL"] == 3 and out["g"]["SAL"] == 1
    assert out[""]["MQL"] == 1 and out[""]["SQL"] == 0


# --- the offer form follows the lifecycle -------------------------------------------------


def test_the_offer_stages_are_the_stages_that_may_move_to_co():
    assert lifecycle.offer_stages() == [Stage.SAL]
    assert all(lifecycle.OFFER_STAGE in lifecycle.ALLOWED_MOVES[s] for s in lifecycle.offer_stages())


@pytest.mark.django_db
@pytest.mark.parametrize("stage", Stage.values)
def test_the_lead_page_offers_the_offer_form_where_the_lifecycle_allows_co(client, mk_lead, make_user, stage):
    sdr = make_user("sdr", "Team A")
    lead = mk_lead(stage=stage, owner=sdr)
    client.force_login(sdr)
    response = client.get(reverse("lead-detail", args=[lead.pk]))
    form = f'action="{reverse("lead-opportunity", args=[lead.pk])}"'
    assert (form in response.content.decode()) == (stage in lifecycle.offer_stages())
    assert response.context["offer_open"] == (stage in lifecycle.offer_stages())


def test_the_next_stage_is_the_funnel_move_of_each_open_stage():
    assert lifecycle.NEXT_STAGE == {
        Stage.MCL: Stage.MQL,
        Stage.MQL: Stage.SQL,
        Stage.SQL: Stage.SAL,
        Stage.SAL: Stage.CO,
        Stage.CO: Stage.WO,
        Stage.RECYCLED: Stage.MQL,
    }
    assert all(dst in lifecycle.ALLOWED_MOVES[src] for src, dst in lifecycle.NEXT_STAGE.items())


# --- the offer's currency: one ISO 4217 check -----------------------------------------------


def _api_takes(code: str) -> bool:
    data = {"amount": "10", "currency": code, "expected_close": "2030-01-01"}
    return OpportunityInputSerializer(data=data).is_valid()


def _admin_takes(code: str) -> bool:
    form = OpportunityAdminForm(data={"currency": code})
    form.is_valid()
    return "currency" not in form.errors


def _rule_takes(code: str) -> bool:
    try:
        normalize_currency(code)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("code,ok", [("eur", True), ("USD", True), ("XYZ", False), ("EURO", False), ("", False)])
def test_the_api_and_the_admin_read_a_currency_alike(code, ok):
    assert _rule_takes(code) is ok
    assert _api_takes(code) is ok
    assert _admin_takes(code) is ok


@settings(max_examples=60, deadline=None)
@given(code=st.one_of(st.text(alphabet=string.ascii_letters, min_size=3, max_size=3), st.text(max_size=5)))
def test_any_currency_is_taken_or_refused_by_the_api_and_the_admin_alike(code):
    if "\x00" in code:  # the admin's CharField refuses NUL before any rule: not a currency anyway
        return
    expected = _rule_takes(code) and code == code.strip()
    assert _api_takes(code) is expected, code
    assert _admin_takes(code) is _rule_takes(code), code


@pytest.mark.django_db
@pytest.mark.parametrize("code,ok", [("usd", True), ("XYZ", False), ("EURO", False)])
def test_the_lead_page_reads_a_currency_as_the_api_does(client, mk_lead, make_user, code, ok):
    sdr = make_user("sdr", "Team A")
    lead = mk_lead(stage=Stage.SAL, owner=sdr)
    client.force_login(sdr)
    data = {"amount": "100", "currency": code, "expected_close": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    response = client.post(reverse("lead-opportunity", args=[lead.pk]), data)
    assert Opportunity.objects.filter(lead=lead).exists() is ok
    assert Lead.objects.get(pk=lead.pk).stage == (Stage.CO if ok else Stage.SAL)
    if ok:
        assert Opportunity.objects.get(lead=lead).currency == code.upper()
        assert Opportunity.objects.get(lead=lead).amount == Decimal("100")
    else:
        assert "ISO 4217" in " ".join(str(m) for m in get_messages(response.wsgi_request))


# --- signing in and out live in accounts ----------------------------------------------------


def test_login_and_logout_keep_their_names_and_paths():
    from accounts import views

    assert reverse("login") == "/login/" and reverse("logout") == "/logout/"
    from django.urls import resolve

    assert resolve("/login/").func is views.login
    assert resolve("/logout/").func is views.logout


# --- the leads-list filters: one FilterSet for the API and the pages ----------------------


@pytest.fixture
def filtered_world(mk_lead, people):
    mk_lead("ann@acme.example", first_name="Ann", source="web", country="FR", score=80, owner=people.sdr_a)
    mk_lead("bob@beta.example", source="fair", country="DE", score=40, utm_campaign="spring", stage=Stage.MQL)
    mk_lead("cy@acme.example", company_name="Acme", source="web", score=60, properties={"plan": "pro", "seats": 5})
    mk_lead("dee@gamma.example", stage=Stage.SQL, owner=people.sdr_b, utm_campaign="spring", country="FR")
    return people


SAME_PARAMS = [
    {},
    {"q": "acme"},
    {"stage": "MQL"},
    {"source": "web"},
    {"campaign": "spring"},
    {"score_min": "50"},
    {"score_max": "50"},
    {"country": "France"},
    {"owner": "none"},
    {"owner": "me"},
    {"properties.plan": "pro"},
    {"properties.seats": "5"},
    {"source": "web", "score_min": "70"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("params", SAME_PARAMS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "none")
def test_the_api_and_the_leads_page_filter_alike(client, auth_client, filtered_world, params):
    user = filtered_world.marketing
    api = auth_client(user).get("/api/v1/leads/", params)
    assert api.status_code == 200, api.content[:300]
    client.force_login(user)
    page = client.get(reverse("leads-list"), params)
    assert page.status_code == 200
    api_ids = sorted(r["id"] for r in api.json()["results"])
    assert api_ids == sorted(lead.pk for lead in page.context["rows"])
    if params:
        assert len(api_ids) < Lead.objects.count()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params", [{"stage": "NEW"}, {"score_min": "lots"}, {"owner": "someone"}, {"country": "Atlantis"}]
)
def test_a_value_the_api_refuses_the_page_leaves_out(client, auth_client, filtered_world, params):
    user = filtered_world.marketing
    [name] = params
    assert name in auth_client(user).get("/api/v1/leads/", params).json()
    client.force_login(user)
    page = client.get(reverse("leads-list"), {**params, "source": "web"})
    assert page.status_code == 200
    assert sorted(lead.email for lead in page.context["rows"]) == ["ann@acme.example", "cy@acme.example"]


# --- lead input: one set of rules for the API, the admin form and the CSV import -----------

TEXT_INPUTS = [f for f in INPUT_FIELDS if f.kind == "text"]


def _api_errors(name: str, value) -> dict:
    data = LeadInputSerializer(data={"email": "a@example.com", name: value})
    data.is_valid()
    return data.errors


def _admin_errors(attr: str, value) -> dict:
    form = LeadAdminForm(data={"email": "a@example.com", attr: value, "stage": "MCL"})
    form.is_valid()
    return form.errors


def _csv_errors(name: str, value: str) -> list[str]:
    result = validate_line(2, ["email", "col"], ["a@example.com", value], {"email": "email", "col": name})
    return [e["column"] for e in result.errors]


def test_every_text_input_is_as_long_as_its_column_but_the_country():
    for spec in TEXT_INPUTS:
        column = Lead._meta.get_field(spec.attr).max_length
        assert spec.max_length == (column if spec.name != "country" else 100), spec
    assert LeadInputSerializer().fields["first_name"].max_length == Lead._meta.get_field("first_name").max_length
    country = next(f for f in TEXT_INPUTS if f.name == "country")
    assert LeadAdminForm().fields["country"].max_length == country.max_length


@pytest.mark.parametrize(
    "name,value",
    [
        ("first_name", "x" * 101),
        ("company", "y" * 201),
        ("country", "Atlantis"),
        ("company_domain", "localhost"),
        ("utm_campaign", "z" * 201),
        ("company_size", "-3"),
        ("company_size", "many"),
    ],
)
@pytest.mark.django_db
def test_the_same_bad_input_is_refused_by_the_api_the_admin_and_the_import(name, value):
    attr = next(f.attr for f in INPUT_FIELDS if f.name == name)
    assert name in _api_errors(name, value)
    assert attr in _admin_errors(attr, value)
    assert _csv_errors(name, value) == ["col"]


@pytest.mark.django_db
def test_the_admin_normalises_as_the_api_does():
    form = LeadAdminForm(
        data={
            "email": "Ann@Example.COM",
            "country": "Allemagne",
            "phone": "030 1234567",
            "company_domain": "https://www.acme.example/about",
            "stage": "MCL",
        }
    )
    form.is_valid()
    api = LeadInputSerializer(
        data={"email": "Ann@Example.COM", "country": "Allemagne", "phone": "030 1234567",
              "company_domain": "https://www.acme.example/about"}
    )  # fmt: skip
    assert api.is_valid(), api.errors
    for attr in ("email", "country", "phone", "company_domain"):
        assert form.cleaned_data[attr] == api.validated_data[attr], attr


PLAIN_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=260).filter(
    lambda v: v.strip().lower() not in PLACEHOLDERS
)


@pytest.mark.django_db
@settings(max_examples=80, deadline=None)
@given(spec=st.sampled_from(TEXT_INPUTS), value=PLAIN_TEXT)
def test_any_text_is_taken_or_refused_alike_by_the_api_the_admin_and_the_import(spec, value):
    api_refuses = spec.name in _api_errors(spec.name, value)
    assert (spec.attr in _admin_errors(spec.attr, value)) is api_refuses, (spec.name, value)
    assert bool(_csv_errors(spec.name, value)) is api_refuses, (spec.name, value)

"""The public REST API of leads (SPEC.md "Public REST API"): status codes, bodies and
permissions, over HTTP with token authentication."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.urls.converters import IntConverter
from django.utils import timezone
from rest_framework.permissions import AllowAny

from leadcrm.actors import Actor, ActorType
from leadcrm.api_urls import urlpatterns
from leads import services
from leads.models import Assignment, Bant, Lead, Opportunity, Stage, StageChange, Touchpoint, TouchpointType

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"
BULK = "/api/v1/leads/bulk/"
EVENTS = "/api/v1/events/"
FUNNEL = "/api/v1/metrics/funnel/"
FULL_BANT = {"budget": "50k€ approved", "authority": "CTO signs", "need": "Replace Excel", "timeline": "Q3"}


def url(lead, action: str = "") -> str:
    return f"{LEADS}{lead.pk}/" + (f"{action}/" if action else "")


def emails(response) -> set[str]:
    return {row["email"] for row in response.json()["results"]}


@pytest.fixture
def admin_api(people, auth_client):
    return auth_client(people.admin)


def give_bant(lead, **changes):
    Bant.objects.update_or_create(lead=lead, defaults={**FULL_BANT, **changes})


# --- authentication -------------------------------------------------------------------------


def _path(pattern) -> str:
    """The pattern's path with a sample value for each argument (1 for ids, "x" for words)."""
    kwargs = {
        name: 1 if isinstance(converter, IntConverter) else "x"
        for name, converter in pattern.pattern.converters.items()
    }
    return reverse(f"api:{pattern.name}", kwargs=kwargs)


# Endpoints open to anonymous callers on purpose (SPEC: the capture endpoint is public,
# guarded by its site key, origins and throttles): a view that allows anyone and is not
# listed here fails `test_the_public_endpoints_are_the_listed_ones`.
PUBLIC = {"capture"}


def _allows_anyone(pattern) -> bool:
    view = pattern.callback.view_class
    return any(issubclass(p, AllowAny) for p in view.permission_classes)


def test_the_public_endpoints_are_the_listed_ones():
    assert {p.name for p in urlpatterns if _allows_anyone(p)} == PUBLIC


PROTECTED = [p for p in urlpatterns if p.name not in PUBLIC]


@pytest.mark.parametrize("pattern", PROTECTED, ids=[p.name for p in PROTECTED])
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_endpoint_answers_401_without_a_token(api_client, pattern, method):
    response = getattr(api_client, method)(_path(pattern), {}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("pattern", urlpatterns, ids=[p.name for p in urlpatterns])
def test_every_endpoint_answers_401_with_a_wrong_token(api_client, pattern):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert api_client.get(_path(pattern)).status_code == 401


# --- create and dedupe ----------------------------------------------------------------------


def test_create_normalises_and_answers_201(admin_api, people):
    response = admin_api.post(
        LEADS,
        {
            "email": " Jane.Doe@Acme.COM ",
            "first_name": "Jane",
            "last_name": "Doe",
            "phone": "06 12 34 56 78",
            "country": "France",
            "company": "Acme",
            "company_size": 120,
            "source": "seo",
            "utm_campaign": "spring",
            "properties": {"plan": "pro", "seats": 12, "vip": True},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "jane.doe@acme.com"
    assert body["country"] == "FR"
    assert body["phone"] == "+33612345678"
    assert body["company"] == "Acme"
    assert body["company_domain"] == "acme.com"
    assert body["company_id"] is not None
    assert body["properties"] == {"plan": "pro", "seats": 12, "vip": True}
    assert body["stage"] == "MCL"
    assert body["owner"] is None
    for read_only in ("score", "fit_score", "engagement_score", "grade", "conversion_probability", "created_at"):
        assert read_only in body
    change = StageChange.objects.get(lead_id=body["id"])
    assert (change.from_stage, change.to_stage, change.actor_type, change.actor) == (
        "",
        "MCL",
        ActorType.API,
        people.admin,
    )


def test_free_mail_gives_no_company_domain(admin_api):
    body = admin_api.post(LEADS, {"email": "someone@gmail.com"}, format="json").json()
    assert body["company_domain"] == ""
    assert body["company_id"] is None


def test_the_stage_and_scores_cannot_be_set_on_create(admin_api):
    response = admin_api.post(LEADS, {"email": "x@acme.com", "stage": "WO", "score": 99}, format="json")
    assert response.status_code in (201, 400)
    assert not Lead.objects.filter(stage=Stage.WO).exists()
    assert not Lead.objects.filter(score=99).exists()


def test_a_known_email_updates_that_lead_and_records_a_touchpoint(admin_api):
    first = admin_api.post(LEADS, {"email": "jane@acme.com", "first_name": "Jane", "city": "Lyon"}, format="json")
    assert first.status_code == 201
    again = admin_api.post(
        LEADS,
        {"email": "JANE@Acme.com", "first_name": "", "job_title": "CTO", "utm_source": "newsletter"},
        format="json",
    )
    assert again.status_code == 200
    body = again.json()
    assert body["id"] == first.json()["id"]
    assert body["first_name"] == "Jane", "a re-capture never wipes a known value with a blank"
    assert body["job_title"] == "CTO"
    assert body["city"] == "Lyon"
    assert Lead.objects.count() == 1
    touchpoint = Touchpoint.objects.get(lead_id=body["id"])
    assert touchpoint.type == TouchpointType.CAPTURE
    assert touchpoint.utm_source == "newsletter"


def test_recapture_of_a_lead_the_caller_cannot_see_reveals_nothing_more(people, auth_client, mk_lead):
    hidden = mk_lead("secret@acme.com", owner=people.sdr_b, first_name="Secret")
    response = auth_client(people.sdr_a).post(LEADS, {"email": "secret@acme.com"}, format="json")
    # Issue 14: not even the id (it used to answer 200 with the id and e-mail).
    assert response.status_code == 202
    assert response.json() == {"status": "recorded"}
    assert Lead.objects.get(pk=hidden.pk).first_name == "Secret"


# --- bad input: 4xx with field errors, never 500 -------------------------------------------

BAD_LEAD_FIELDS = [
    ({"country": "Narnia"}, "country"),
    ({"email": "not-an-email"}, "email"),
    ({"email": ""}, "email"),
    ({"company_size": -1}, "company_size"),
    ({"company_size": "abc"}, "company_size"),
    ({"company_size": 1.5}, "company_size"),
    ({"properties": "plan=pro"}, "properties"),
    ({"properties": ["a", "b"]}, "properties"),
    ({"properties": {"address": {"city": "Paris"}}}, "properties"),
    ({"properties": {"tags": ["a", "b"]}}, "properties"),
    ({"company_domain": "not a domain"}, "company_domain"),
    ({"first_name": "x" * 101}, "first_name"),
]


@pytest.mark.parametrize(("fields", "error_on"), BAD_LEAD_FIELDS, ids=[e + repr(f)[:30] for f, e in BAD_LEAD_FIELDS])
def test_create_with_bad_field_answers_400_naming_the_field(admin_api, fields, error_on):
    response = admin_api.post(LEADS, {"email": "ok@acme.com", **fields}, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    assert Lead.objects.count() == 0


@pytest.mark.parametrize(("fields", "error_on"), BAD_LEAD_FIELDS, ids=[e + repr(f)[:30] for f, e in BAD_LEAD_FIELDS])
def test_patch_with_bad_field_answers_400_naming_the_field(admin_api, mk_lead, fields, error_on):
    lead = mk_lead(country="DE")
    response = admin_api.patch(url(lead), fields, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    lead.refresh_from_db()
    assert lead.country == "DE"


def test_create_without_email_answers_400(admin_api):
    response = admin_api.post(LEADS, {"first_name": "Nobody"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()


WRITE_ENDPOINTS = [
    ("post", "lead-list", False),
    ("patch", "lead-detail", True),
    ("post", "lead-bulk", False),
    ("post", "lead-transition", True),
    ("put", "lead-bant", True),
    ("post", "lead-opportunity", True),
    ("post", "events", False),
    ("post", "user-list", False),
    ("post", "team-list", False),
]


@pytest.mark.parametrize(("method", "name", "needs_lead"), WRITE_ENDPOINTS, ids=[w[1] for w in WRITE_ENDPOINTS])
@pytest.mark.parametrize("raw", ["{bad json", '{"email": "a@b.c",}', "[", "nul"])
def test_malformed_json_answers_400(admin_api, mk_lead, method, name, needs_lead, raw):
    path = reverse(f"api:{name}", kwargs={"pk": mk_lead(stage=Stage.SAL).pk} if needs_lead else {})
    response = getattr(admin_api, method)(path, data=raw, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "name", "needs_lead"), WRITE_ENDPOINTS, ids=[w[1] for w in WRITE_ENDPOINTS])
@pytest.mark.parametrize("body", ["null", "42", "[1, 2]", "true"])
def test_json_that_is_not_an_object_answers_400(admin_api, mk_lead, method, name, needs_lead, body):
    path = reverse(f"api:{name}", kwargs={"pk": mk_lead(stage=Stage.SAL).pk} if needs_lead else {})
    response = getattr(admin_api, method)(path, data=body, content_type="application/json")
    assert response.status_code == 400


def test_unknown_lead_answers_404(admin_api):
    assert admin_api.get(f"{LEADS}999999/").status_code == 404
    assert admin_api.post(f"{LEADS}999999/transition/", {"to": "MQL"}, format="json").status_code == 404


# --- PATCH ----------------------------------------------------------------------------------


def test_patch_updates_fields_and_merges_properties(admin_api, mk_lead):
    lead = mk_lead(first_name="Jane", properties={"plan": "free", "seats": 3})
    response = admin_api.patch(
        url(lead),
        {"first_name": "", "country": "Allemagne", "properties": {"plan": "pro", "seats": None, "vip": True}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["first_name"] == "", "PATCH sets blanks when asked"
    assert body["country"] == "DE"
    assert body["properties"] == {"plan": "pro", "vip": True}, "keys merge, a null removes one"


def test_patch_with_stage_answers_400_and_changes_nothing(admin_api, mk_lead):
    lead = mk_lead()
    response = admin_api.patch(url(lead), {"stage": "SQL", "first_name": "X"}, format="json")
    assert response.status_code == 400
    assert "stage" in response.json()
    lead.refresh_from_db()
    assert (lead.stage, lead.first_name) == (Stage.MCL, "")


# --- transitions ----------------------------------------------------------------------------


def transition(client, lead, to, **extra):
    return client.post(url(lead, "transition"), {"to": to, **extra}, format="json")


def test_refused_move_answers_409_naming_the_guard(admin_api, mk_lead):
    lead = mk_lead(score=10)
    response = transition(admin_api, lead, "MQL")
    assert response.status_code == 409
    body = response.json()
    assert body["guard"] == "mql_threshold"
    assert (body["from"], body["to"]) == ("MCL", "MQL")
    assert body["details"] == {"score": 10, "threshold": 50}
    assert body["detail"]
    lead.refresh_from_db()
    assert lead.stage == Stage.MCL
    assert not StageChange.objects.filter(lead=lead, to_stage=Stage.MQL).exists()


def test_move_not_in_the_state_machine_answers_409(admin_api, mk_lead):
    response = transition(admin_api, mk_lead(score=90), "WO")
    assert response.status_code == 409
    assert response.json()["guard"] == "allowed_move"


@pytest.mark.parametrize("body", [{"to": "FOO"}, {"to": ""}, {"to": None}, {}, {"to": "SQL", "override": "maybe"}])
def test_bad_transition_body_answers_400(admin_api, mk_lead, body):
    response = admin_api.post(url(mk_lead(), "transition"), body, format="json")
    assert response.status_code == 400
    assert set(response.json()) & {"to", "override"}


def test_mql_at_threshold_passes(admin_api, mk_lead):
    response = transition(admin_api, mk_lead(score=50), "MQL")
    assert response.status_code == 200
    assert response.json()["stage"] == "MQL"


def test_mql_override_needs_a_reason_and_is_recorded(admin_api, mk_lead):
    lead = mk_lead(score=5)
    refused = transition(admin_api, lead, "MQL", override=True)
    assert refused.status_code == 409
    assert refused.json()["guard"] == "reason_required"
    response = transition(admin_api, lead, "MQL", override=True, reason="Met at the trade fair")
    assert response.status_code == 200
    assert response.json()["stage"] == "MQL"
    change = StageChange.objects.get(lead=lead, to_stage=Stage.MQL)
    assert "override" in change.reason and "Met at the trade fair" in change.reason


def test_sql_needs_all_four_bant_fields(admin_api, mk_lead):
    lead = mk_lead(stage=Stage.MQL)
    refused = transition(admin_api, lead, "SQL")
    assert refused.status_code == 409
    assert refused.json()["guard"] == "bant_complete"
    assert refused.json()["details"]["missing"] == ["budget", "authority", "need", "timeline"]

    put = admin_api.put(url(lead, "bant"), {**FULL_BANT, "timeline": "  "}, format="json")
    assert put.status_code == 200
    assert put.json()["is_complete"] is False
    refused = transition(admin_api, lead, "SQL")
    assert refused.json()["details"]["missing"] == ["timeline"]

    put = admin_api.put(url(lead, "bant"), FULL_BANT, format="json")
    assert put.json()["is_complete"] is True
    response = transition(admin_api, lead, "SQL", reason="Qualified on the phone")
    assert response.status_code == 200
    assert response.json()["stage"] == "SQL"


def test_bant_put_with_missing_fields_answers_400(admin_api, mk_lead):
    response = admin_api.put(url(mk_lead(), "bant"), {"budget": "x"}, format="json")
    assert response.status_code == 400
    assert {"authority", "need", "timeline"} <= set(response.json())


def test_sal_needs_the_owner_to_accept(people, admin_api, auth_client, mk_lead):
    lead = mk_lead(stage=Stage.SQL)
    assert transition(admin_api, lead, "SAL").json()["guard"] == "owner_accepts"  # no owner
    services.lead_assign(lead_id=lead.pk, owner=people.sdr_a, actor=Actor.automation())
    response = transition(admin_api, lead, "SAL")
    assert response.status_code == 409
    assert response.json()["guard"] == "owner_accepts"  # the admin is not the owner
    response = transition(auth_client(people.sdr_a), lead, "SAL")
    assert response.status_code == 200
    assert response.json()["stage"] == "SAL"


def test_co_through_transition_needs_an_opportunity(admin_api, mk_lead):
    response = transition(admin_api, mk_lead(stage=Stage.SAL), "CO")
    assert response.status_code == 409
    assert response.json()["guard"] == "opportunity_complete"


OFFER = {"amount": "12500.00", "currency": "eur", "expected_close": "2030-06-30"}


def test_opportunity_creates_the_offer_and_moves_to_co(admin_api, mk_lead):
    lead = mk_lead(stage=Stage.SAL)
    response = admin_api.post(url(lead, "opportunity"), OFFER, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["stage"] == "CO"
    offer = admin_api.get(url(lead, "opportunity")).json()
    assert offer["amount"] == "12500.00"
    assert offer["currency"] == "EUR"
    assert offer["expected_close"] == "2030-06-30"
    assert offer["status"] == "open"
    assert offer["closed_at"] is None


@pytest.mark.parametrize(
    ("changes", "error_on"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"expected_close": "next year"}, "expected_close"),
        ({"expected_close": None}, "expected_close"),
    ],
)
def test_opportunity_with_bad_input_answers_400(admin_api, mk_lead, changes, error_on):
    lead = mk_lead(stage=Stage.SAL)
    response = admin_api.post(url(lead, "opportunity"), {**OFFER, **changes}, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    assert not Opportunity.objects.exists()
    lead.refresh_from_db()
    assert lead.stage == Stage.SAL


@pytest.mark.parametrize("stage", [Stage.MCL, Stage.MQL, Stage.SQL, Stage.WO])
def test_opportunity_outside_sal_answers_409_and_leaves_no_offer(admin_api, mk_lead, stage):
    lead = mk_lead(stage=stage)
    response = admin_api.post(url(lead, "opportunity"), OFFER, format="json")
    assert response.status_code == 409
    assert response.json()["guard"] == "allowed_move"
    assert not Opportunity.objects.exists()
    assert admin_api.get(url(lead, "opportunity")).status_code == 404


def co_lead(admin_api, mk_lead):
    lead = mk_lead(stage=Stage.SAL)
    assert admin_api.post(url(lead, "opportunity"), OFFER, format="json").status_code == 201
    return lead


def test_winning_closes_the_opportunity_as_won(admin_api, mk_lead):
    lead = co_lead(admin_api, mk_lead)
    response = transition(admin_api, lead, "WO")
    assert response.status_code == 200
    assert response.json()["stage"] == "WO"
    assert response.json()["closed_at"] is not None
    offer = Opportunity.objects.get(lead=lead)
    assert offer.status == "won"
    assert offer.closed_at is not None
    assert transition(admin_api, lead, "LOST", reason="x").json()["guard"] == "allowed_move"


def test_losing_needs_a_reason_and_closes_the_opportunity_as_lost(admin_api, mk_lead):
    lead = co_lead(admin_api, mk_lead)
    refused = transition(admin_api, lead, "LOST")
    assert refused.status_code == 409
    assert refused.json()["guard"] == "reason_required"
    assert Opportunity.objects.get(lead=lead).status == "open"
    response = transition(admin_api, lead, "LOST", reason="Went with a competitor")
    assert response.status_code == 200
    assert response.json()["stage"] == "LOST"
    offer = Opportunity.objects.get(lead=lead)
    assert (offer.status, offer.lost_reason) == ("lost", "Went with a competitor")
    assert offer.closed_at is not None


def test_disqualifying_needs_a_reason_and_closes_the_lead(admin_api, mk_lead):
    lead = mk_lead(stage=Stage.MQL)
    assert transition(admin_api, lead, "DISQUALIFIED").json()["guard"] == "reason_required"
    response = transition(admin_api, lead, "DISQUALIFIED", reason="Student")
    assert response.status_code == 200
    assert response.json()["stage"] == "DISQUALIFIED"
    assert response.json()["closed_at"] is not None
    assert transition(admin_api, lead, "MQL", override=True, reason="x").json()["guard"] == "allowed_move"


def test_rejected_by_sales_goes_back_to_nurturing_then_mql(admin_api, mk_lead):
    lead = mk_lead(stage=Stage.SQL, score=70)
    assert transition(admin_api, lead, "RECYCLED", reason="Not now").json()["stage"] == "RECYCLED"
    assert transition(admin_api, lead, "MQL").json()["stage"] == "MQL"
    assert list(StageChange.objects.filter(lead=lead).values_list("from_stage", "to_stage")) == [
        ("RECYCLED", "MQL"),
        ("SQL", "RECYCLED"),
        ("", "MCL"),
    ]


def test_demo_request_lets_a_captured_lead_skip_to_sql(admin_api, mk_lead):
    lead = mk_lead("demo@acme.com")
    give_bant(lead)
    assert transition(admin_api, lead, "SQL").json()["guard"] == "allowed_move"
    assert admin_api.post(EVENTS, {"type": "demo_request", "email": "demo@acme.com"}, format="json").status_code == 201
    response = transition(admin_api, lead, "SQL", reason="Asked for a demo")
    assert response.status_code == 200
    assert response.json()["stage"] == "SQL"
    change = StageChange.objects.get(lead=lead, to_stage=Stage.SQL)
    assert change.from_stage == Stage.MCL
    assert "demo_request" in change.reason and "Asked for a demo" in change.reason


def test_demo_request_does_not_excuse_bant(admin_api, mk_lead):
    lead = mk_lead("demo@acme.com")
    admin_api.post(EVENTS, {"type": "demo_request", "lead_id": lead.pk}, format="json")
    response = transition(admin_api, lead, "SQL")
    assert response.status_code == 409
    assert response.json()["guard"] == "bant_complete"


def test_the_whole_funnel_through_the_api(people, auth_client, mk_lead):
    seller = auth_client(people.sdr_a)
    lead = mk_lead(owner=people.sdr_a, score=80)
    assert transition(seller, lead, "MQL").status_code == 200
    assert seller.put(url(lead, "bant"), FULL_BANT, format="json").status_code == 200
    assert transition(seller, lead, "SQL").status_code == 200
    assert transition(seller, lead, "SAL").status_code == 200
    assert seller.post(url(lead, "opportunity"), OFFER, format="json").status_code == 201
    assert transition(seller, lead, "WO").status_code == 200
    path = list(StageChange.objects.filter(lead=lead).order_by("created_at", "id").values_list("to_stage", flat=True))
    assert path == ["MCL", "MQL", "SQL", "SAL", "CO", "WO"]


# --- permissions ----------------------------------------------------------------------------


@pytest.fixture
def book(people, mk_lead):
    """Leads of sdr_a, sdr_a2, sdr_b, team A's pool, team B's pool and nobody's."""
    return {
        "sdr_a": mk_lead("a@one.example", owner=people.sdr_a, stage=Stage.MQL),
        "sdr_a2": mk_lead("a2@two.example", owner=people.sdr_a2, stage=Stage.MQL),
        "sdr_b": mk_lead("b@three.example", owner=people.sdr_b, stage=Stage.MQL),
        "pool_a": mk_lead("pool-a@four.example", team=people.team_a),
        "pool_b": mk_lead("pool-b@five.example", team=people.team_b),
        "nobody": mk_lead("nobody@six.example"),
    }


def all_emails(client) -> set[str]:
    return emails(client.get(LEADS, {"page_size": 1000}))


@pytest.mark.parametrize("other", ["sdr_a2", "sdr_b", "pool_b", "nobody"])
def test_an_sdr_cannot_read_or_change_leads_of_others(people, auth_client, book, other):
    client = auth_client(people.sdr_a)
    lead = book[other]
    assert client.get(url(lead)).status_code == 404
    assert client.patch(url(lead), {"first_name": "Mine"}, format="json").status_code == 404
    assert client.post(url(lead, "transition"), {"to": "SQL"}, format="json").status_code == 404
    assert client.get(url(lead, "bant")).status_code == 404
    assert client.put(url(lead, "bant"), FULL_BANT, format="json").status_code == 404
    assert client.get(url(lead, "history")).status_code == 404
    assert client.post(url(lead, "opportunity"), OFFER, format="json").status_code == 404
    lead.refresh_from_db()
    assert lead.first_name == "" and not Bant.objects.filter(lead=lead).exists()


def test_an_sdr_sees_own_leads_and_the_team_pool(people, auth_client, book):
    client = auth_client(people.sdr_a)
    assert all_emails(client) == {"a@one.example", "pool-a@four.example"}
    assert client.get(url(book["pool_a"])).status_code == 200
    assert client.patch(url(book["sdr_a"]), {"city": "Nantes"}, format="json").status_code == 200


def test_a_manager_sees_the_team(people, auth_client, book):
    assert all_emails(auth_client(people.manager_a)) == {"a@one.example", "a2@two.example", "pool-a@four.example"}
    assert auth_client(people.manager_a).get(url(book["sdr_b"])).status_code == 404


def test_admin_and_marketing_see_everything(people, auth_client, book):
    everything = {lead.email for lead in book.values()}
    assert all_emails(auth_client(people.admin)) == everything
    assert all_emails(auth_client(people.marketing)) == everything


def test_marketing_cannot_do_sales_moves(people, auth_client, book):
    client = auth_client(people.marketing)
    lead = book["sdr_a"]
    give_bant(lead)
    response = client.post(url(lead, "transition"), {"to": "SQL"}, format="json")
    assert response.status_code == 403
    assert client.put(url(lead, "bant"), FULL_BANT, format="json").status_code == 403
    assert client.post(url(book["nobody"], "opportunity"), OFFER, format="json").status_code == 403
    lead.refresh_from_db()
    assert lead.stage == Stage.MQL


def test_marketing_qualifies_and_disqualifies_marketing_leads(people, auth_client, book):
    client = auth_client(people.marketing)
    response = client.post(url(book["nobody"], "transition"), {"to": "MQL", "override": True, "reason": "ICP"})
    assert response.status_code == 200
    response = client.post(url(book["sdr_b"], "transition"), {"to": "DISQUALIFIED", "reason": "Spam"})
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["sdr_a", "manager_a"])
def test_only_marketing_and_admins_send_bulk_and_events(people, auth_client, role):
    client = auth_client(getattr(people, role))
    assert client.post(BULK, {"leads": [{"email": "x@acme.com"}]}, format="json").status_code == 403
    assert client.post(EVENTS, {"type": "page_view", "email": "x@acme.com"}, format="json").status_code == 403
    assert not Lead.objects.exists()


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_keeps_good_rows_and_reports_bad_ones_by_index(people, auth_client, mk_lead):
    existing = mk_lead("known@acme.com", first_name="Known")
    response = auth_client(people.marketing).post(
        BULK,
        {
            "leads": [
                {"email": "new1@acme.com", "country": "France", "company": "Acme"},
                {"email": "broken", "company_size": -3},
                {"email": "KNOWN@acme.com", "job_title": "CFO", "first_name": ""},
                {"email": "new2@globex.com", "country": "Narnia"},
                {"email": "new3@globex.com", "properties": {"nested": {"no": 1}}},
                {"email": "new4@globex.com", "phone": "+33 6 12 34 56 78"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["updated"], body["failed"]) == (2, 1, 3)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in results] == ["created", "error", "updated", "error", "error", "created"]
    assert set(results[1]["errors"]) == {"email", "company_size"}
    assert set(results[3]["errors"]) == {"country"}
    assert set(results[4]["errors"]) == {"properties"}
    assert results[2]["id"] == existing.pk
    assert results[1]["id"] is None

    new1 = Lead.objects.get(email="new1@acme.com")
    assert (new1.country, new1.company_name, new1.stage) == ("FR", "Acme", Stage.MCL)
    assert Lead.objects.get(email="new4@globex.com").phone == "+33612345678"
    assert not Lead.objects.filter(email__in=["new2@globex.com", "new3@globex.com"]).exists()
    existing.refresh_from_db()
    assert (existing.first_name, existing.job_title) == ("Known", "CFO")
    assert Touchpoint.objects.filter(lead=existing, type=TouchpointType.CAPTURE).count() == 1
    assert StageChange.objects.filter(lead=new1, to_stage=Stage.MCL, actor_type=ActorType.API).exists()


def test_bulk_merges_duplicate_emails_within_a_batch(people, auth_client):
    response = auth_client(people.marketing).post(
        BULK,
        {"leads": [{"email": "Dup@acme.com", "first_name": "Ann"}, {"email": "dup@ACME.com", "last_name": "Lee"}]},
        format="json",
    )
    body = response.json()
    assert body["created"] == 1 and body["failed"] == 0
    assert body["results"][0]["id"] == body["results"][1]["id"]
    lead = Lead.objects.get()
    assert (lead.email, lead.first_name, lead.last_name) == ("dup@acme.com", "Ann", "Lee")
    assert StageChange.objects.filter(lead=lead).count() == 1


@pytest.mark.parametrize("field", [{"stage": "SQL"}, {"owner": 1}, {"closed_at": "2024-01-01T00:00:00Z"}])
def test_bulk_history_fields_are_a_row_error_for_non_admins(people, auth_client, field):
    response = auth_client(people.marketing).post(
        BULK, {"leads": [{"email": "ok@acme.com"}, {"email": "sneaky@acme.com", **field}]}, format="json"
    )
    body = response.json()
    assert (body["created"], body["failed"]) == (1, 1)
    assert body["results"][1]["status"] == "error"
    assert set(body["results"][1]["errors"]) == set(field)
    assert not Lead.objects.filter(email="sneaky@acme.com").exists()


def test_admin_history_import_records_an_import_not_a_guarded_move(people, admin_api, mk_lead):
    existing = mk_lead("old@acme.com")
    response = admin_api.post(
        BULK,
        {
            "leads": [
                {"email": "won@acme.com", "stage": "WO", "owner": people.sdr_a.pk, "closed_at": "2024-03-01T10:00:00Z"},
                {"email": "old@acme.com", "stage": "SQL", "owner": people.sdr_b.pk},
                {"email": "ghost@acme.com", "owner": 999999},
                {"email": "odd@acme.com", "stage": "HALFWAY"},
            ]
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["created", "updated", "error", "error"]
    assert "owner" in body["results"][2]["errors"]
    assert "stage" in body["results"][3]["errors"]

    won = Lead.objects.get(email="won@acme.com")
    assert (won.stage, won.owner, won.team) == (Stage.WO, people.sdr_a, people.team_a)
    assert won.closed_at == dt.datetime(2024, 3, 1, 10, tzinfo=dt.UTC)
    imported = StageChange.objects.get(lead=won, to_stage=Stage.WO)
    assert (imported.from_stage, imported.actor_type, imported.actor) == (Stage.MCL, ActorType.IMPORT, people.admin)
    assignment = Assignment.objects.get(lead=won)
    assert (assignment.to_owner, assignment.actor_type) == (people.sdr_a, ActorType.IMPORT)

    existing.refresh_from_db()
    assert (existing.stage, existing.owner) == (Stage.SQL, people.sdr_b)
    change = StageChange.objects.get(lead=existing, to_stage=Stage.SQL)
    assert (change.from_stage, change.actor_type) == (Stage.MCL, ActorType.IMPORT)
    assert Assignment.objects.get(lead=existing).actor_type == ActorType.IMPORT


def test_bulk_over_ten_thousand_rows_answers_413(admin_api):
    response = admin_api.post(BULK, {"leads": [{"email": f"l{i}@acme.com"} for i in range(10_001)]}, format="json")
    assert response.status_code == 413
    assert not Lead.objects.exists()


@pytest.mark.parametrize("body", [{}, {"leads": []}, {"leads": "a,b"}, {"leads": {"email": "a@b.co"}}])
def test_bulk_without_a_list_of_leads_answers_400(admin_api, body):
    response = admin_api.post(BULK, body, format="json")
    assert response.status_code == 400
    assert "leads" in response.json()


def test_bulk_rows_that_are_not_objects_are_row_errors(admin_api):
    response = admin_api.post(BULK, {"leads": [{"email": "ok@acme.com"}, "garbage", 42, None]}, format="json")
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        body = response.json()
        assert (body["created"], body["failed"]) == (1, 3)
        assert Lead.objects.filter(email="ok@acme.com").exists()


# --- events and visitors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "error_on"),
    [
        ({"type": "page_view"}, "non_field_errors"),
        ({"type": "page_view", "url": "https://acme.com/"}, "non_field_errors"),
        ({"type": "teleport", "email": "a@acme.com"}, "type"),
        ({"email": "a@acme.com"}, "type"),
        ({"type": "page_view", "email": "not-an-email"}, "email"),
        ({"type": "page_view", "lead_id": "abc"}, "lead_id"),
        ({"type": "page_view", "visitor_id": "v", "occurred_at": "yesterday"}, "occurred_at"),
        ({"type": "page_view", "visitor_id": "v", "url": "not a url"}, "url"),
        ({"type": "page_view", "visitor_id": "v", "properties": {"a": {"b": 1}}}, "properties"),
    ],
)
def test_bad_events_answer_400_naming_the_field(admin_api, event, error_on):
    response = admin_api.post(EVENTS, event, format="json")
    assert response.status_code == 400
    assert error_on in response.json()
    assert not Touchpoint.objects.exists()


def test_events_for_an_unknown_lead_id_answer_400(admin_api, mk_lead):
    lead = mk_lead()
    response = admin_api.post(
        EVENTS, [{"type": "page_view", "lead_id": lead.pk}, {"type": "page_view", "lead_id": 999999}], format="json"
    )
    assert response.status_code == 400
    assert "lead_id" in response.json()
    assert not Touchpoint.objects.exists(), "the batch is refused as a whole"


def test_a_bad_event_in_a_list_answers_400_with_its_index(admin_api):
    response = admin_api.post(EVENTS, [{"type": "page_view", "visitor_id": "v"}, {"type": "page_view"}], format="json")
    assert response.status_code == 400
    body = response.json()
    by_index = {str(i): e for i, e in (body.items() if isinstance(body, dict) else enumerate(body))}
    assert not by_index.get("0")
    assert "non_field_errors" in by_index["1"]
    assert not Touchpoint.objects.exists()


def test_an_event_with_a_new_email_captures_the_lead(admin_api):
    response = admin_api.post(
        EVENTS, {"type": "download", "email": "New@Acme.com", "utm_source": "linkedin"}, format="json"
    )
    assert response.status_code == 201
    lead = Lead.objects.get(email="new@acme.com")
    assert response.json() == {"recorded": 1, "events": [{"id": Touchpoint.objects.get().pk, "lead_id": lead.pk}]}
    assert lead.source == "linkedin"


def test_visitor_events_join_the_lead_once_it_identifies(admin_api, django_capture_on_commit_callbacks):
    t0 = timezone.now() - dt.timedelta(hours=3)
    with django_capture_on_commit_callbacks(execute=True):
        anonymous = admin_api.post(
            EVENTS,
            [
                {"type": "page_view", "visitor_id": "cookie-1", "url": "https://acme.com/", "occurred_at": t0},
                {"type": "pricing_view", "visitor_id": "cookie-1", "occurred_at": t0 + dt.timedelta(minutes=5)},
                {"type": "page_view", "visitor_id": "cookie-2", "occurred_at": t0},
            ],
            format="json",
        )
    assert anonymous.status_code == 201
    assert [e["lead_id"] for e in anonymous.json()["events"]] == [None, None, None]

    with django_capture_on_commit_callbacks(execute=True):
        identified = admin_api.post(
            EVENTS,
            {
                "type": "form_submit",
                "visitor_id": "cookie-1",
                "email": "jane@acme.com",
                "occurred_at": t0 + dt.timedelta(hours=1),
            },
            format="json",
        )
    assert identified.status_code == 201
    lead = Lead.objects.get(email="jane@acme.com")
    assert identified.json()["events"][0]["lead_id"] == lead.pk
    assert Touchpoint.objects.filter(visitor__key="cookie-1", lead=lead).count() == 3
    assert Touchpoint.objects.get(visitor__key="cookie-2").lead is None

    latest = t0 + dt.timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        later = admin_api.post(
            EVENTS, {"type": "webinar", "visitor_id": "cookie-1", "occurred_at": latest}, format="json"
        )
    assert later.json()["events"][0]["lead_id"] == lead.pk

    lead.refresh_from_db()
    assert lead.activity_count == 4
    assert lead.last_activity_at == latest
    history_types = [i["type"] for i in admin_api.get(url(lead, "history")).json() if i["kind"] == "touchpoint"]
    assert history_types == ["webinar", "form_submit", "pricing_view", "page_view"]


def test_anonymous_and_identifying_events_in_one_batch(admin_api, mk_lead, django_capture_on_commit_callbacks):
    lead = mk_lead("known@acme.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(
            EVENTS,
            [
                {"type": "page_view", "visitor_id": "v9"},
                {"type": "chat", "visitor_id": "v9", "lead_id": lead.pk},
                {"type": "page_view", "visitor_id": "v9"},
            ],
            format="json",
        )
    assert response.status_code == 201
    assert Touchpoint.objects.filter(lead=lead).count() == 3
    lead.refresh_from_db()
    assert lead.activity_count == 3
    assert lead.last_activity_at is not None


# --- history --------------------------------------------------------------------------------


def test_history_says_who_when_and_why_newest_first(people, admin_api, mk_lead):
    created = admin_api.post(LEADS, {"email": "h@acme.com"}, format="json").json()
    lead = Lead.objects.get(pk=created["id"])
    long_ago = timezone.now() - dt.timedelta(days=30)
    admin_api.post(EVENTS, {"type": "download", "lead_id": lead.pk, "occurred_at": long_ago}, format="json")
    transition(admin_api, lead, "MQL", override=True, reason="Hot prospect")
    services.lead_assign(lead_id=lead.pk, owner=people.sdr_a, actor=Actor(people.manager_a, ActorType.USER))

    response = admin_api.get(url(lead, "history"))
    assert response.status_code == 200
    items = response.json()
    assert [i["kind"] for i in items] == ["assignment", "stage_change", "stage_change", "touchpoint"]
    stamps = [dt.datetime.fromisoformat(i["at"]) for i in items]
    assert stamps == sorted(stamps, reverse=True)

    assignment, move, creation, touchpoint = items
    assert (assignment["from_owner"], assignment["to_owner"], assignment["actor"]) == (
        None,
        people.sdr_a.username,
        people.manager_a.username,
    )
    assert assignment["actor_type"] == "user"
    assert (move["from_stage"], move["to_stage"], move["actor"], move["actor_type"]) == (
        "MCL",
        "MQL",
        people.admin.username,
        "api",
    )
    assert "Hot prospect" in move["reason"]
    assert (creation["from_stage"], creation["to_stage"], creation["actor_type"]) == ("", "MCL", "api")
    assert touchpoint["type"] == "download"


def test_history_of_a_web_session_says_user(people, api_client, mk_lead):
    lead = mk_lead(score=90)
    api_client.force_login(people.admin)
    assert transition(api_client, lead, "MQL").status_code == 200
    move = api_client.get(url(lead, "history")).json()[0]
    assert (move["to_stage"], move["actor_type"], move["actor"]) == ("MQL", "user", people.admin.username)


# --- list: filters, pagination, queries -----------------------------------------------------


@pytest.fixture
def catalogue(people, mk_lead):
    now = timezone.now()
    specs = {
        "fr@alpha.example": dict(
            stage=Stage.MQL,
            score=80,
            country="FR",
            source="seo",
            first_name="Amélie",
            last_name="Gammon",
            owner=people.sdr_a,
        ),
        "de@beta.example": dict(stage=Stage.SQL, score=40, country="DE", source="google-ads", company_name="Beta"),
        "us@gamma.example": dict(stage=Stage.MCL, score=10, country="US", source="seo", last_name="Gammon"),
        "fr2@delta.example": dict(stage=Stage.WO, score=95, country="FR", source="trade-fair"),
    }
    leads = {email: mk_lead(email, **spec) for email, spec in specs.items()}
    Lead.objects.filter(email="fr@alpha.example").update(
        grade="A", properties={"plan": "pro", "seats": 10, "vip": True}, created_at=now - dt.timedelta(days=10)
    )
    Lead.objects.filter(email="de@beta.example").update(
        grade="B", properties={"plan": "free", "seats": 2, "vip": False}, created_at=now - dt.timedelta(days=5)
    )
    Lead.objects.filter(email="us@gamma.example").update(grade="C", created_at=now - dt.timedelta(days=1))
    Lead.objects.filter(email="fr2@delta.example").update(grade="A", properties={"plan": "pro", "a__b": "x"})
    return leads


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"fr@alpha.example", "de@beta.example", "us@gamma.example", "fr2@delta.example"}),
        ({"stage": "MQL"}, {"fr@alpha.example"}),
        ({"stage": ["MQL", "SQL"]}, {"fr@alpha.example", "de@beta.example"}),
        ({"owner": "none"}, {"de@beta.example", "us@gamma.example", "fr2@delta.example"}),
        ({"source": "seo"}, {"fr@alpha.example", "us@gamma.example"}),
        ({"score_min": 40}, {"fr@alpha.example", "de@beta.example", "fr2@delta.example"}),
        ({"score_max": 40}, {"de@beta.example", "us@gamma.example"}),
        ({"score_min": 40, "score_max": 90}, {"fr@alpha.example", "de@beta.example"}),
        ({"grade": "A"}, {"fr@alpha.example", "fr2@delta.example"}),
        ({"grade": ["B", "C"]}, {"de@beta.example", "us@gamma.example"}),
        ({"country": "France"}, {"fr@alpha.example", "fr2@delta.example"}),
        ({"country": "fr"}, {"fr@alpha.example", "fr2@delta.example"}),
        ({"country": "Allemagne"}, {"de@beta.example"}),
        ({"q": "amélie"}, {"fr@alpha.example"}),
        ({"q": "gammon"}, {"us@gamma.example", "fr@alpha.example"}),
        # A full name: every word in a name, the e-mail or the company.
        ({"q": "Amélie Gammon"}, {"fr@alpha.example"}),
        ({"q": "  gammon   seo  "}, set()),
        ({"q": "BETA"}, {"de@beta.example"}),
        ({"q": "delta.example"}, {"fr2@delta.example"}),
        ({"properties.plan": "pro"}, {"fr@alpha.example", "fr2@delta.example"}),
        ({"properties.seats": "10"}, {"fr@alpha.example"}),
        ({"properties.vip": "true"}, {"fr@alpha.example"}),
        ({"properties.vip": "false"}, {"de@beta.example"}),
        ({"properties.plan": "pro", "country": "FR", "stage": "WO"}, {"fr2@delta.example"}),
        ({"properties.a__b": "x"}, {"fr2@delta.example"}),
        ({"properties.plan__regex": "("}, set()),
        ({"properties.plan__contains": "p"}, set()),
        ({"properties.missing": "x"}, set()),
    ],
)
def test_list_filters(admin_api, catalogue, query, expected):
    response = admin_api.get(LEADS, query)
    assert response.status_code == 200, response.json()
    assert emails(response) == expected


def test_list_filters_by_owner_me_and_id(people, auth_client, catalogue):
    admin = auth_client(people.admin)
    assert emails(admin.get(LEADS, {"owner": people.sdr_a.pk})) == {"fr@alpha.example"}
    assert emails(admin.get(LEADS, {"owner": "me"})) == set()
    assert emails(auth_client(people.sdr_a).get(LEADS, {"owner": "me"})) == {"fr@alpha.example"}


def test_list_filters_by_creation_date(admin_api, catalogue):
    now = timezone.now()
    after = (now - dt.timedelta(days=6)).isoformat()
    before = (now - dt.timedelta(hours=12)).isoformat()
    assert emails(admin_api.get(LEADS, {"created_after": after, "created_before": before})) == {
        "de@beta.example",
        "us@gamma.example",
    }
    assert emails(admin_api.get(LEADS, {"created_before": "2000-01-01"})) == set()


@pytest.mark.parametrize(
    ("query", "error_on"),
    [
        ({"score_min": "abc"}, "score_min"),
        ({"score_max": "1e"}, "score_max"),
        ({"country": "Narnia"}, "country"),
        ({"owner": "xyz"}, "owner"),
        ({"owner": "-1"}, "owner"),
        ({"created_after": "notadate"}, "created_after"),
        ({"created_before": "2024-13-45"}, "created_before"),
        ({"stage": "FOO"}, "stage"),
        ({"grade": "Z"}, "grade"),
    ],
)
def test_bad_filter_values_answer_400(admin_api, catalogue, query, error_on):
    response = admin_api.get(LEADS, query)
    assert response.status_code == 400
    assert error_on in response.json()


def test_cursor_pagination_walks_every_lead_once_newest_first(admin_api, mk_lead):
    made = [mk_lead(f"p{i}@acme.com") for i in range(5)]
    page = admin_api.get(LEADS, {"page_size": 2}).json()
    assert set(page) == {"next", "previous", "results"}
    assert page["previous"] is None
    seen = []
    while True:
        seen += [row["email"] for row in page["results"]]
        assert len(page["results"]) <= 2
        if not page["next"]:
            break
        page = admin_api.get(page["next"]).json()
        assert page["previous"]
    assert seen == [lead.email for lead in reversed(made)]


def test_page_size_is_capped_at_1000(admin_api):
    Lead.objects.bulk_create([Lead(email=f"bulk{i}@acme.com") for i in range(1001)])
    page = admin_api.get(LEADS, {"page_size": 1001}).json()
    assert len(page["results"]) == 1000
    assert page["next"]
    assert len(admin_api.get(LEADS, {"page_size": 1000}).json()["results"]) == 1000
    assert len(admin_api.get(LEADS).json()["results"]) == 50, "default page size"


def test_ordering_by_score(admin_api, catalogue):
    rows = admin_api.get(LEADS, {"ordering": "-score"}).json()["results"]
    assert [r["score"] for r in rows] == [95, 80, 40, 10]


def walk(client, query: dict, limit: int = 100) -> list[str]:
    """Follow `next` links; fail instead of looping forever."""
    response = client.get(LEADS, query)
    seen: list[str] = []
    for _ in range(limit):
        assert response.status_code == 200, response.json()
        page = response.json()
        seen += [row["email"] for row in page["results"]]
        if not page["next"]:
            return seen
        response = client.get(page["next"])
    raise AssertionError(f"still paginating after {limit} pages ({len(seen)} rows, {len(set(seen))} distinct)")


def test_pagination_walks_1500_leads_created_at_the_same_instant(admin_api):
    """A bulk import writes one created_at for the whole batch."""
    Lead.objects.bulk_create([Lead(email=f"same{i}@acme.com") for i in range(1500)])
    Lead.objects.update(created_at=timezone.now())
    seen = walk(admin_api, {"page_size": 100})
    assert len(seen) == len(set(seen)) == 1500


@pytest.mark.parametrize("ordering", ["score", "-score", "updated_at", "-created_at"])
def test_pagination_with_a_chosen_ordering_sees_every_lead_once(admin_api, ordering):
    Lead.objects.bulk_create([Lead(email=f"o{i}@acme.com", score=i % 3) for i in range(30)])
    seen = walk(admin_api, {"page_size": 4, "ordering": ordering})
    assert len(seen) == len(set(seen)) == 30


@pytest.mark.parametrize("ordering", ["last_activity_at", "-last_activity_at"])
def test_pagination_by_a_nullable_field_sees_every_lead_once(admin_api, ordering):
    Lead.objects.bulk_create([Lead(email=f"n{i}@acme.com") for i in range(12)])
    first_six = Lead.objects.order_by("id").values("pk")[:6]
    Lead.objects.filter(pk__in=first_six).update(last_activity_at=timezone.now())
    seen = walk(admin_api, {"page_size": 4, "ordering": ordering})
    assert len(seen) == len(set(seen)) == 12


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(LEADS, {"page_size": 100})
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["admin", "manager_a", "sdr_a"])
def test_list_query_count_does_not_grow_with_the_number_of_leads(people, auth_client, mk_lead, who):
    client = auth_client(getattr(people, who))

    def add(n):
        for _ in range(n):
            mk_lead(owner=people.sdr_a, company_name="Acme", properties={"k": "v"})

    add(5)
    few = _list_queries(client)
    add(45)
    assert len(client.get(LEADS, {"page_size": 100}).json()["results"]) == 50
    assert _list_queries(client) == few


# --- funnel metrics -------------------------------------------------------------------------


def test_funnel_metrics_count_stages_and_conversion(people, admin_api, mk_lead):
    actor = Actor(people.admin, ActorType.USER)
    mk_lead("captured@one.example")
    mql = mk_lead("mql@two.example", score=60)
    services.lead_promote(lead_id=mql.pk, actor=actor)
    sql = mk_lead("sql@three.example", score=60)
    services.lead_promote(lead_id=sql.pk, actor=actor)
    give_bant(sql)
    services.lead_qualify(lead_id=sql.pk, actor=actor)
    services.lead_disqualify(lead_id=sql.pk, actor=actor, reason="No budget after all")

    response = admin_api.get(FUNNEL)
    assert response.status_code == 200
    body = response.json()
    assert body["counts"]["MCL"] == 1
    assert body["counts"]["MQL"] == 1
    assert body["counts"]["DISQUALIFIED"] == 1
    assert body["counts"]["SQL"] == 0
    assert body["reached"] == {"MCL": 3, "MQL": 2, "SQL": 1, "SAL": 0, "CO": 0, "WO": 0}
    assert body["conversion"]["MCL->MQL"] == pytest.approx(2 / 3, abs=1e-4)
    assert body["conversion"]["MQL->SQL"] == 0.5
    assert body["conversion"]["SQL->SAL"] == 0
    assert body["conversion"]["SAL->CO"] is None


def test_funnel_counts_a_skipped_stage_as_passed(people, admin_api, mk_lead):
    """A demo request goes MCL→SQL: that lead passed MQL too, alongside leads that did not skip."""
    actor = Actor(people.admin, ActorType.USER)
    skipper = mk_lead("skip@one.example")
    Touchpoint.objects.create(lead=skipper, type=TouchpointType.DEMO_REQUEST, occurred_at=timezone.now())
    give_bant(skipper)
    services.lead_qualify(lead_id=skipper.pk, actor=actor)
    for email in ("m1@two.example", "m2@three.example"):
        lead = mk_lead(email, score=70)
        services.lead_promote(lead_id=lead.pk, actor=actor)
    mk_lead("plain@four.example")

    body = admin_api.get(FUNNEL).json()
    assert body["reached"]["SQL"] == 1
    assert body["reached"]["MQL"] == 3, "two promoted to MQL and one that skipped it"
    assert body["reached"]["MCL"] == 4
    assert body["conversion"]["MQL->SQL"] == pytest.approx(1 / 3, abs=1e-4)


def test_funnel_counts_history_imports_at_a_late_stage(admin_api):
    rows = [{"email": f"won{i}@acme.com", "stage": "WO"} for i in range(3)]
    rows += [{"email": f"co{i}@acme.com", "stage": "CO"} for i in range(2)]
    assert admin_api.post(BULK, {"leads": rows}, format="json").status_code == 200
    reached = admin_api.get(FUNNEL).json()["reached"]
    assert reached == {"MCL": 5, "MQL": 5, "SQL": 5, "SAL": 5, "CO": 5, "WO": 3}


def test_funnel_filters_by_period_source_and_campaign(admin_api, mk_lead):
    mk_lead("a@one.example", source="seo", utm_campaign="spring")
    mk_lead("b@two.example", source="seo")
    old = mk_lead("c@three.example", source="trade-fair")
    Lead.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=400))
    assert admin_api.get(FUNNEL, {"source": "seo"}).json()["counts"]["MCL"] == 2
    assert admin_api.get(FUNNEL, {"campaign": "spring"}).json()["counts"]["MCL"] == 1
    since = (timezone.now() - dt.timedelta(days=30)).isoformat()
    assert admin_api.get(FUNNEL, {"created_after": since}).json()["counts"]["MCL"] == 2
    assert admin_api.get(FUNNEL, {"created_before": since}).json()["counts"]["MCL"] == 1


def test_funnel_with_a_bad_date_answers_400(admin_api):
    response = admin_api.get(FUNNEL, {"created_after": "last tuesday"})
    assert response.status_code == 400
    assert "created_after" in response.json()


def test_funnel_of_an_sdr_counts_only_visible_leads(people, auth_client, book):
    counts = auth_client(people.sdr_a).get(FUNNEL).json()["counts"]
    assert sum(counts.values()) == 2


def test_a_lead_an_sdr_captures_is_theirs(people, auth_client):
    client = auth_client(people.sdr_a)
    created = client.post(LEADS, {"email": "card@prospect.example"}, format="json")
    assert created.status_code == 201
    assert created.json()["owner"] == people.sdr_a.pk
    assert client.get(f"{LEADS}{created.json()['id']}/").status_code == 200

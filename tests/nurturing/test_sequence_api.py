"""The sequence API (SPEC "Nurturing"): sequences and their versions, enrolling leads or a
segment (per-lead answers), enrollments with their step runs, stopping one, the per-step and
per-variant report with significance; who may do what; bad input is a 400, never a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadcrm.actors import Actor
from leads.models import StageChange
from nurturing import services
from nurturing.models import EmailTemplate, Enrollment, Message, Segment, SegmentMembership, Sequence, StepRun
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/sequences/"


@pytest.fixture
def templates():
    return [EmailTemplate.objects.create(name=f"Mail {n}", subject=f"Hello {n}", text="Hi") for n in range(3)]


@pytest.fixture
def marketer(people, auth_client):
    return auth_client(people.marketing)


def split_steps(templates) -> list:
    a, b, c = templates
    return [
        {"type": "email", "template": a.pk},
        {"type": "wait", "days": 2},
        {
            "type": "split",
            "variants": [
                {"weight": 50, "steps": [{"type": "email", "template": b.pk}]},
                {"weight": 50, "steps": [{"type": "email", "template": c.pk}]},
            ],
        },
    ]


def make_sequence(people, templates, **kw) -> Sequence:
    kw.setdefault("name", "Welcome")
    return services.sequence_create(actor=Actor(people.marketing), steps=split_steps(templates), **kw)


def test_create_read_and_version_on_patch(marketer, templates):
    made = marketer.post(
        URL,
        {
            "name": "Welcome",
            "steps": split_steps(templates),
            "exit_on": ["reply", "opt_out"],
            "reentry": "after_days:30",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["version"] == 1 and body["reentry"] == "after_days:30" and body["exit_on"] == ["opt_out", "reply"]
    assert body["steps"][2]["variants"][1]["steps"][0]["template"] == templates[2].pk
    pk = body["id"]
    assert marketer.get(f"{URL}{pk}/").json()["name"] == "Welcome"
    renamed = marketer.patch(f"{URL}{pk}/", {"name": "Welcome 2", "active": False}, format="json").json()
    assert renamed["version"] == 1 and renamed["active"] is False
    new_steps = [{"type": "email", "template": templates[0].pk}]
    patched = marketer.patch(f"{URL}{pk}/", {"steps": new_steps, "move_running": True}, format="json")
    assert patched.status_code == 200 and patched.json()["version"] == 2 and patched.json()["steps"] == new_steps
    assert [s["name"] for s in marketer.get(URL).json()] == ["Welcome 2"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "X", "steps": [{"type": "teleport"}]}, "steps[0].type"),
        ({"name": "X", "steps": [{"type": "email", "template": 999999}]}, "steps[0].template"),
        ({"name": "X", "steps": [{"type": "split", "variants": [{"weight": 1, "steps": []}]}]}, "steps[0].variants"),
        ({"name": "X", "reentry": "sometimes"}, "reentry"),
        ({"name": "X", "exit_on": ["moon"]}, "exit_on"),
        ({"name": "X\x00"}, "name"),
        ({"name": "X", "steps": [{"type": "notify_owner", "text": "a\x00b"}]}, "steps"),
        ({"name": "X", "steps": "all of them"}, "steps"),
        ({"name": ["X"]}, "name"),
        ({"name": "X", "active": "maybe"}, "active"),
        ({}, "name"),
    ],
)
def test_bad_input_is_a_400_with_field_errors(marketer, body, field):
    answer = marketer.post(URL, body, format="json")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()
    assert not Sequence.objects.exists()


def test_sellers_read_but_do_not_write(people, auth_client, templates, api_client):
    sequence = make_sequence(people, templates)
    sdr = auth_client(people.sdr_a)
    assert sdr.get(URL).status_code == 200
    assert sdr.get(f"{URL}{sequence.pk}/").status_code == 200
    assert sdr.post(URL, {"name": "Mine", "steps": []}, format="json").status_code == 403
    assert sdr.patch(f"{URL}{sequence.pk}/", {"name": "Mine"}, format="json").status_code == 403
    assert api_client.get(URL).status_code == 401


def test_enroll_answers_per_lead(people, marketer, templates):
    sequence = make_sequence(people, templates)
    ok = LeadFactory(consent_status="opt_in")
    no = LeadFactory(consent_status="unknown")
    answer = marketer.post(f"{URL}{sequence.pk}/enroll/", {"leads": [ok.pk, no.pk, 10**9]}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["results"] == {str(ok.pk): "enrolled", str(no.pk): "no_consent", str(10**9): "not_found"}
    again = marketer.post(f"{URL}{sequence.pk}/enroll/", {"leads": [ok.pk]}, format="json").json()
    assert again["results"] == {str(ok.pk): "already_enrolled"} and again["counts"] == {"already_enrolled": 1}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"leads": []},
        {"leads": [1], "segment": 1},
        {"leads": ["x"]},
        {"leads": [0]},
        {"segment": "x"},
        {"leads": list(range(1, 10_003))},
    ],  # fmt: skip
)
def test_enroll_bad_bodies(people, marketer, templates, body):
    sequence = make_sequence(people, templates)
    assert marketer.post(f"{URL}{sequence.pk}/enroll/", body, format="json").status_code == 400


def test_an_sdr_enrolls_the_leads_it_sees_and_no_segment(people, auth_client, templates):
    sequence = make_sequence(people, templates)
    mine = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    sdr = auth_client(people.sdr_a)
    answer = sdr.post(f"{URL}{sequence.pk}/enroll/", {"leads": [mine.pk, other.pk]}, format="json").json()
    assert answer["results"] == {str(mine.pk): "enrolled", str(other.pk): "not_found"}
    segment = Segment.objects.create(name="All", kind="static")
    assert sdr.post(f"{URL}{sequence.pk}/enroll/", {"segment": segment.pk}, format="json").status_code == 403


def test_marketing_enrolls_a_segment(people, marketer, templates):
    sequence = make_sequence(people, templates)
    segment = Segment.objects.create(name="Fair", kind="static")
    leads = [LeadFactory(consent_status="opt_in") for _ in range(3)]
    now = timezone.now()
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, lead=lead, added_at=now) for lead in leads]
    )
    answer = marketer.post(f"{URL}{sequence.pk}/enroll/", {"segment": segment.pk}, format="json").json()
    assert answer["counts"] == {"enrolled": 3}
    assert marketer.post(f"{URL}{sequence.pk}/enroll/", {"segment": 10**9}, format="json").status_code == 400


def test_enrollments_list_filters_scopes_and_pages(people, auth_client, marketer, templates):
    sequence = make_sequence(people, templates)
    mine = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[mine.pk, other.pk])
    enrollment = Enrollment.objects.get(lead=mine)
    StepRun.objects.create(enrollment=enrollment, path="0", type="email", at=timezone.now(), outcome="sent")
    everything = marketer.get("/api/v1/enrollments/").json()["results"]
    assert {e["lead"] for e in everything} == {mine.pk, other.pk}
    rows = auth_client(people.sdr_a).get("/api/v1/enrollments/").json()["results"]
    assert [e["lead"] for e in rows] == [mine.pk]
    row = rows[0]
    assert row["state"] == "active" and row["version"] == 1 and row["sequence_name"] == "Welcome"
    assert row["current_step"] == {"path": "0", "type": "email"}
    assert [(r["path"], r["outcome"]) for r in row["step_runs"]] == [("0", "sent")]
    assert marketer.get(f"/api/v1/enrollments/?lead={other.pk}").json()["results"][0]["lead"] == other.pk
    assert marketer.get(f"/api/v1/enrollments/?sequence={sequence.pk + 1}").json()["results"] == []
    page = marketer.get("/api/v1/enrollments/?page_size=1").json()
    assert len(page["results"]) == 1 and page["next"]
    for bad in ("lead=x", "sequence=-1", "state=sleeping", "lead=99999999999999999999999"):
        assert marketer.get(f"/api/v1/enrollments/?{bad}").status_code == 400


def test_stop_an_enrollment(people, auth_client, marketer, templates):
    sequence = make_sequence(people, templates)
    mine = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[mine.pk, other.pk])
    e_mine, e_other = Enrollment.objects.get(lead=mine), Enrollment.objects.get(lead=other)
    sdr = auth_client(people.sdr_a)
    assert sdr.post(f"/api/v1/enrollments/{e_other.pk}/stop/").status_code == 404
    answer = sdr.post(f"/api/v1/enrollments/{e_mine.pk}/stop/")
    assert answer.status_code == 200 and answer.json()["stopped"] == 1
    assert answer.json()["enrollment"]["state"] == "stopped"
    assert sdr.post(f"/api/v1/enrollments/{e_mine.pk}/stop/").json()["stopped"] == 0
    assert marketer.post(f"/api/v1/enrollments/{e_other.pk}/stop/").json()["enrollment"]["state"] == "stopped"


def _messages(enrollments, *, step, variant, sent=0, opened=0, clicked=0, replied=0, bounced=0, template=None):
    """Messages of these enrollments at one step: the first `sent` sent, of them the first
    `opened` opened, `clicked` clicked..."""
    now = timezone.now()
    rows = []
    for n, e in enumerate(enrollments):
        rows.append(
            Message(
                lead_id=e.lead_id,
                template=template,
                kind="marketing",
                idempotency_key=f"t:{e.pk}:{step}",
                status="sent" if n < sent else "queued",
                queued_at=now,
                sent_at=now if n < sent else None,
                opened_at=now if n < opened else None,
                clicked_at=now if n < clicked else None,
                replied_at=now if n < replied else None,
                bounced_at=now if n < bounced else None,
                enrollment=e,
                step=step,
                variant=variant,
            )  # fmt: skip
        )
    Message.objects.bulk_create(rows)


def test_stats_per_step_and_variant_with_a_winner(people, marketer, templates, django_assert_max_num_queries):
    sequence = make_sequence(people, templates)
    leads = [LeadFactory(consent_status="opt_in") for _ in range(200)]
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[x.pk for x in leads])
    enrollments = list(Enrollment.objects.order_by("pk"))
    a, b = enrollments[:100], enrollments[100:]
    now = timezone.now()
    StepRun.objects.bulk_create(
        [StepRun(enrollment=e, path="2", type="split", at=now, outcome="variant:0") for e in a]
        + [StepRun(enrollment=e, path="2", type="split", at=now, outcome="variant:1") for e in b]
    )
    _messages(enrollments, step="0", variant="", sent=200, opened=120, clicked=40, bounced=10)
    _messages(a, step="2.variants.0.steps.0", variant="2:0", sent=100, opened=50, clicked=10, replied=2)
    _messages(b, step="2.variants.1.steps.0", variant="2:1", sent=100, opened=60, clicked=40, replied=5)
    later = now + dt.timedelta(hours=1)
    StageChange.objects.bulk_create(
        [
            StageChange(lead_id=e.lead_id, from_stage="MCL", to_stage="MQL", actor_type="automation", created_at=later)
            for e in b[:30]
        ]  # fmt: skip
    )
    with django_assert_max_num_queries(12):
        answer = marketer.get(f"{URL}{sequence.pk}/stats/")
    assert answer.status_code == 200, answer.content
    report = answer.json()
    assert report["version"] == 1 and report["enrollments"]["enrolled"] == 200 and report["enrollments"]["mql"] == 30
    first = report["steps"][0]
    assert first["path"] == "0" and first["counts"]["sent"] == 200 and first["counts"]["delivered"] == 190
    assert first["rates"]["bounced"] == pytest.approx(0.05) and first["rates"]["clicked"] == pytest.approx(40 / 190)
    (split,) = report["splits"]
    assert [v["key"] for v in split["variants"]] == ["2:0", "2:1"]
    va, vb = split["variants"]
    assert (va["enrolled"], va["recipients"], va["clicked"], va["mql"]) == (100, 100, 10, 0)
    assert (vb["clicked"], vb["mql"], vb["rates"]["mql"]) == (40, 30, 0.3)
    assert split["winner"] == "2:1" and split["reason"] == "winner" and split["p_value"] < 0.001
    assert split["p_values"]["replied"] > 0.05
    on_replies = marketer.get(f"{URL}{sequence.pk}/stats/?metric=replied").json()["splits"][0]
    assert on_replies["winner"] is None and on_replies["reason"] == "not_significant"
    assert marketer.get(f"{URL}{sequence.pk}/stats/?metric=mql").json()["splits"][0]["winner"] == "2:1"
    assert marketer.get(f"{URL}{sequence.pk}/stats/?metric=bananas").status_code == 400
    assert marketer.get(f"{URL}{sequence.pk}/stats/?version=7").status_code == 400
    assert marketer.get(f"{URL}{sequence.pk}/stats/?version=1").json()["version"] == 1


def test_stats_count_only_the_leads_a_seller_sees(people, auth_client, templates):
    sequence = make_sequence(people, templates)
    mine = LeadFactory(owner=people.sdr_a, consent_status="opt_in")
    other = LeadFactory(owner=people.sdr_b, consent_status="opt_in")
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[mine.pk, other.pk])
    _messages(list(Enrollment.objects.all()), step="0", variant="", sent=2)
    report = auth_client(people.sdr_a).get(f"{URL}{sequence.pk}/stats/").json()
    assert report["enrollments"]["enrolled"] == 1 and report["steps"][0]["counts"]["sent"] == 1


def test_messages_filter_by_sequence(people, marketer, templates):
    sequence = make_sequence(people, templates)
    lead = LeadFactory(consent_status="opt_in")
    services.sequence_enroll(actor=Actor(people.marketing), sequence_id=sequence.pk, lead_ids=[lead.pk])
    _messages(list(Enrollment.objects.all()), step="0", variant="", sent=1)
    Message.objects.create(lead=lead, kind="marketing", idempotency_key="one-off", queued_at=timezone.now())
    rows = marketer.get(f"/api/v1/messages/?sequence={sequence.pk}").json()["results"]
    assert len(rows) == 1 and rows[0]["step"] == "0" and rows[0]["enrollment"]
    assert marketer.get("/api/v1/messages/?sequence=abc").status_code == 400


# --- arbitrary JSON never makes a 5xx -------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["wait", "email", "split", "branch", "task", "after_days:3", "\x00", "steps", "variants"])
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["type", "days", "template", "variants", "weight", "steps", "if", "then", "else", "x"]),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(
    steps=_json,
    extra=st.dictionaries(st.sampled_from(["active", "exit_on", "reentry", "move_running", "name"]), _json, max_size=3),
    enroll=st.dictionaries(st.sampled_from(["leads", "segment"]), _json, max_size=2),
)
def test_arbitrary_json_is_never_a_server_error(people, marketer, templates, steps, extra, enroll):
    sequence = Sequence.objects.filter(name="Fixed").first() or make_sequence(people, templates, name="Fixed")
    with transaction.atomic():
        made = marketer.post(URL, {"name": "Fuzz", "steps": steps, **extra}, format="json")
        assert made.status_code in (201, 400), made.content
        patched = marketer.patch(f"{URL}{sequence.pk}/", {"steps": steps, **extra}, format="json")
        assert patched.status_code in (200, 400), patched.content
        enrolled = marketer.post(f"{URL}{sequence.pk}/enroll/", enroll, format="json")
        assert enrolled.status_code in (200, 400), enrolled.content
        transaction.set_rollback(True)

"""Limits, each written once: custom fields (`properties`: keys, key length, value size,
numbers, total JSON size) by leads.normalize.normalize_properties for the API, bulk, the CSV
import and the admin (issue 14)."""

from __future__ import annotations

import json

import pytest

from leads.admin import LeadAdminForm
from leads.csv_import import parse, validate_line
from leads.models import Lead
from leads.normalize import MAX_PROPERTIES, MAX_PROPERTIES_BYTES
from tests.bad_input import assert_json_4xx, post_json

pytestmark = pytest.mark.django_db

TOO_BIG = {
    "too-many-keys": {f"k{i}": 1 for i in range(MAX_PROPERTIES + 1)},
    "key-too-long": {"k" * 101: 1},
    "blank-key": {" ": 1},
    "value-too-long": {"k": "v" * 2001},
    "total-too-big": {f"k{i}": "v" * 1700 for i in range(10)},  # 17 KB
    "number-too-big": {"k": 10**16},
    "float-too-big": {"k": 1e300},
    "nested": {"k": {"a": 1}},
}
FITS = {
    "max-keys": {f"k{i}": i for i in range(MAX_PROPERTIES)},
    "near-max-size": {f"k{i}": "é" * 800 for i in range(10)},  # 16,000 bytes of UTF-8 with the keys
    "numbers": {"a": 10**15, "b": -(10**15), "c": 0.1, "d": 1e-300, "e": True, "f": None},
}


@pytest.mark.parametrize("name", TOO_BIG)
def test_properties_over_a_limit_are_refused_by_the_api(api, name):
    r = api.post("/api/v1/leads/", {"email": "a@example.com", "properties": TOO_BIG[name]}, format="json")
    assert "properties" in assert_json_4xx(r)
    assert not Lead.objects.exists()


@pytest.mark.parametrize("name", FITS)
def test_properties_within_the_limits_are_stored_as_sent(api, name):
    sent = FITS[name]
    assert len(json.dumps(sent, ensure_ascii=False).encode()) <= MAX_PROPERTIES_BYTES
    r = api.post("/api/v1/leads/", {"email": "a@example.com", "properties": sent}, format="json")
    assert r.status_code == 201, r.content[:300]
    assert r.json()["properties"] == sent
    assert Lead.objects.get().properties == sent


@pytest.mark.parametrize("name", ["too-many-keys", "total-too-big", "float-too-big"])
def test_properties_over_a_limit_fail_their_bulk_row(api, name):
    rows = [{"email": "a@example.com", "properties": TOO_BIG[name]}, {"email": "b@example.com"}]
    r = api.post("/api/v1/leads/bulk/", {"leads": rows}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert (body["created"], body["failed"]) == (1, 1)
    assert "properties" in body["results"][0]["errors"]


def test_properties_over_a_limit_fail_their_csv_line():
    headers = ["email", *(f"c{i}" for i in range(MAX_PROPERTIES + 1))]
    data = (",".join(headers) + "\n" + "a@example.com," + ",".join("x" * (MAX_PROPERTIES + 1)) + "\n").encode()
    parsed = parse(data)
    mapping = {"email": "email", **{h: f"properties.{h}" for h in headers[1:]}}
    [(line, cells)] = parsed.rows
    result = validate_line(line, parsed.headers, cells, mapping)
    assert result.clean is None
    assert [e["message"] for e in result.errors] == [f"At most {MAX_PROPERTIES} custom fields."]


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(TOO_BIG["too-many-keys"]),
        json.dumps(TOO_BIG["total-too-big"]),
        '{"k": 1e400}',
        '{"k": NaN}',
        "[" * 5000 + "]" * 5000,
        '{"k": "\\u0000"}',
    ],
    ids=["too-many-keys", "too-big", "1e400", "nan", "deep", "nul"],
)
def test_the_admin_form_refuses_the_same_properties(text):
    form = LeadAdminForm(data={"email": "a@example.com", "stage": "NEW", "properties": text})
    assert not form.is_valid()
    assert "properties" in form.errors
    form.as_p()  # the page with the error renders (the sent text shown back as it was)


def test_the_admin_form_takes_properties_within_the_limits():
    form = LeadAdminForm(data={"email": "a@example.com", "properties": json.dumps(FITS["numbers"])})
    form.is_valid()
    assert "properties" not in form.errors
    assert form.cleaned_data["properties"] == FITS["numbers"]


def test_raw_json_numbers_in_properties(api):
    r = post_json(api, "/api/v1/leads/", '{"email": "a@example.com", "properties": {"k": 1e16}}')
    assert "properties" in assert_json_4xx(r)


def test_a_patch_may_not_grow_the_stored_properties_past_the_limits(api):
    lead = api.post("/api/v1/leads/", {"email": "a@example.com", "properties": FITS["max-keys"]}, format="json").json()
    r = api.patch(f"/api/v1/leads/{lead['id']}/", {"properties": {"one_more": 1}}, format="json")
    assert "properties" in assert_json_4xx(r)
    assert len(Lead.objects.get().properties) == MAX_PROPERTIES
    r = api.patch(f"/api/v1/leads/{lead['id']}/", {"properties": {"k0": None, "one_more": 1}}, format="json")
    assert r.status_code == 200, r.content[:300]
    assert "k0" not in r.json()["properties"] and r.json()["properties"]["one_more"] == 1

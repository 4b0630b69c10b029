"""Ids from query strings and forms are read by the kernel's one rule (leadcrm.inputs):
digits that are not ASCII ('²', '٣') pass str.isdigit() but not int(), and answered 500."""

from __future__ import annotations

import pytest

from leadcrm import inputs
from nurturing import segment_rules, sequence_tree

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("value", ["²", "٣", "-1", "0", "x", "9" * 30])
@pytest.mark.parametrize("param", ["lead", "sequence"])
def test_a_bad_id_in_the_messages_filter_is_a_400(api_client, make_user, param, value):
    api_client.force_authenticate(make_user("marketing"))
    response = api_client.get("/api/v1/messages/", {param: value})
    assert response.status_code == 400 and param in response.json()


@pytest.mark.parametrize("param", ["lead", "sequence"])
def test_a_unicode_digit_in_the_enrollments_filter_is_a_400(api_client, make_user, param):
    api_client.force_authenticate(make_user("marketing"))
    assert api_client.get("/api/v1/enrollments/", {param: "²"}).status_code == 400


def test_unicode_digits_are_no_ids_anywhere_in_nurturing():
    assert not inputs.is_id(True) and not inputs.is_id(2**63) and inputs.is_id(2**63 - 1)
    assert segment_rules._int("²", 0, 100) is None and segment_rules._int("42", 0, 100) == 42
    with pytest.raises(sequence_tree.PathError):
        sequence_tree.parse("²")

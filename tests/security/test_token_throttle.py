"""Calls with a refused token spend the anonymous quota: token guessing hits 429 instead of
an endless stream of 401s (leadcrm.authentication.TokenAuthentication)."""

from __future__ import annotations

import itertools
import uuid

import pytest
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db

LEADS = "/api/v1/leads/"
_addresses = itertools.count(1)


@pytest.fixture
def anon_rate(monkeypatch):
    """A small anonymous quota over a day, and a client address no other test (nor another
    run sharing the Redis throttle cache) uses, so the count starts at 0."""
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "anon": "5/day"}
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", rates)
    return 5


def _client() -> APIClient:
    n = uuid.uuid4().int
    return APIClient(REMOTE_ADDR=f"10.{n % 250}.{(n >> 8) % 250}.{next(_addresses) % 250 + 1}")


def test_repeated_bad_tokens_get_429_after_the_anon_rate(anon_rate):
    client = _client()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    answers = [client.get(LEADS) for _ in range(anon_rate + 3)]
    assert [r.status_code for r in answers] == [401] * anon_rate + [429] * 3
    assert int(answers[-1]["Retry-After"]) > 0
    assert answers[-1].json()["detail"]


def test_a_malformed_token_header_counts_too(anon_rate):
    client = _client()
    client.credentials(HTTP_AUTHORIZATION="Token")  # no key at all
    codes = [client.get(LEADS).status_code for _ in range(anon_rate + 1)]
    assert codes == [401] * anon_rate + [429]


def test_the_quota_is_per_client(anon_rate):
    guesser, other = _client(), _client()
    for _ in range(anon_rate):
        guesser.get(LEADS, HTTP_AUTHORIZATION="Token nope")
    assert guesser.get(LEADS, HTTP_AUTHORIZATION="Token nope").status_code == 429
    assert other.get(LEADS, HTTP_AUTHORIZATION="Token nope").status_code == 401


def test_a_forged_forwarded_for_does_not_give_a_fresh_quota(anon_rate):
    client = _client()
    codes = [
        client.get(LEADS, HTTP_AUTHORIZATION="Token nope", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
        for i in range(anon_rate + 1)
    ]
    assert codes[-1] == 429


def test_a_valid_token_is_not_throttled_as_anonymous(anon_rate, make_user):
    from rest_framework.authtoken.models import Token

    user = make_user("sdr", team="FR")
    token = Token.objects.create(user=user)
    client = _client()
    for _ in range(anon_rate):
        client.get(LEADS, HTTP_AUTHORIZATION="Token nope")
    # The guesser's address has no anonymous calls left; a real token still works from it.
    assert client.get(LEADS, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert client.get(LEADS, HTTP_AUTHORIZATION="Token nope").status_code == 429

"""Repeated failed logins lock the (username, client address) pair out, on the login page
and on the admin login alike (django-axes; settings AXES_*)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
ADMIN_LOGIN = "/admin/login/"


def _post(client: Client, path: str, username: str, password: str):
    return client.post(path, {"username": username, "password": password, "next": "/"})


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_fifty_wrong_passwords_lock_the_account_out_even_for_the_right_password(client, settings):
    UserFactory(username="sdr1", role=Role.SDR)
    answers = [_post(client, LOGIN, "sdr1", f"wrong-{i}").status_code for i in range(50)]
    limit = settings.AXES_FAILURE_LIMIT
    assert limit == 5
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, "wrong password"
    assert set(answers[limit - 1 :]) == {429}

    locked = _post(client, LOGIN, "sdr1", PASSWORD)
    assert locked.status_code == 429
    assert not _logged_in(client)
    html = locked.content.decode()
    assert "data-lockout" in html and "Try again in 15 minutes" in html
    assert 'name="username"' in html  # the styled login page, not a bare error
    assert int(locked["Retry-After"]) == 15 * 60


def test_the_lockout_ends_after_the_cool_off(client, settings):
    from axes.models import AccessAttempt

    UserFactory(username="sdr1", role=Role.SDR)
    for i in range(settings.AXES_FAILURE_LIMIT):
        _post(client, LOGIN, "sdr1", f"wrong-{i}")
    assert _post(client, LOGIN, "sdr1", PASSWORD).status_code == 429

    # The cool-off is measured from the last failure: age the attempts instead of waiting.
    from django.utils import timezone

    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME)
    response = _post(client, LOGIN, "sdr1", PASSWORD)
    assert response.status_code == 302 and _logged_in(client)


def test_the_admin_login_is_locked_out_too(client, settings):
    UserFactory(username="boss", role=Role.ADMIN, is_staff=True, is_superuser=True)
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _post(client, ADMIN_LOGIN, "boss", f"wrong-{i}").status_code == 200
    assert _post(client, ADMIN_LOGIN, "boss", "wrong-last").status_code == 429
    refused = _post(client, ADMIN_LOGIN, "boss", PASSWORD)
    assert refused.status_code == 429 and not _logged_in(client)
    # One lockout for both doors: the app's login page refuses that pair too.
    assert _post(client, LOGIN, "boss", PASSWORD).status_code == 429


def test_a_success_resets_the_count(client, settings):
    UserFactory(username="sdr1", role=Role.SDR)
    limit = settings.AXES_FAILURE_LIMIT
    for i in range(limit - 1):
        _post(client, LOGIN, "sdr1", f"wrong-{i}")
    assert _post(client, LOGIN, "sdr1", PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for i in range(limit - 1):  # a fresh allowance: the earlier failures are forgotten
        assert _post(client, LOGIN, "sdr1", f"again-{i}").status_code == 200
    assert _post(client, LOGIN, "sdr1", PASSWORD).status_code == 302


def test_other_users_and_other_addresses_are_unaffected(settings):
    UserFactory(username="victim", role=Role.SDR)
    UserFactory(username="colleague", role=Role.SDR)
    attacker = Client(REMOTE_ADDR="203.0.113.9")
    for i in range(20):
        _post(attacker, LOGIN, "victim", f"guess-{i}")
    assert _post(attacker, LOGIN, "victim", PASSWORD).status_code == 429

    # Another account from the same address still signs in ...
    assert _post(attacker, LOGIN, "colleague", PASSWORD).status_code == 302
    # ... and the victim, from their own address, is not locked out by the attacker.
    own = Client(REMOTE_ADDR="198.51.100.7")
    assert _post(own, LOGIN, "victim", PASSWORD).status_code == 302


def test_the_api_still_authenticates_by_token(auth_client, make_user, settings):
    user = make_user("sdr", team="FR")
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT + 2):
        _post(client, LOGIN, user.username, f"wrong-{i}")
    # A locked-out web login does not stop the tokens the user already holds.
    assert auth_client(user).get("/api/v1/leads/").status_code == 200

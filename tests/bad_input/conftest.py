"""Callers of the bad-input tests: an API client per role and a logged-in browser."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture
def marketing(make_user):
    return make_user("marketing")


@pytest.fixture
def api(auth_client, marketing):
    return auth_client(marketing)


@pytest.fixture
def admin_api(auth_client, make_user):
    return auth_client(make_user("admin"))


@pytest.fixture
def browser(make_user):
    client = Client()
    client.force_login(make_user("admin"))
    return client

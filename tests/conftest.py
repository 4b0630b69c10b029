"""Fixtures shared by every test: API clients and users with a role."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tests.browser.fixtures import browser, page  # noqa: F401 - the browser fixtures, once for every directory


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    engine = db["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        where = "SQLite (in-memory test database)"
    else:
        where = f"{engine} {db.get('HOST') or 'localhost'}:{db.get('PORT') or ''} test_{db['NAME']}"
    broker = settings.CELERY_BROKER_URL
    eager = "eager" if settings.CELERY_TASK_ALWAYS_EAGER else "not eager"
    return [f"leadcrm database: {where}", f"leadcrm celery broker: {broker} (tasks {eager})"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Every test user gets a password; the production hasher makes that ~0.3 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


_cache_prefixes = itertools.count(1)


@pytest.fixture(autouse=True)
def _own_cache_keys(settings, worker_id):
    """Throttle counters (and every other cache entry) live in the shared Redis: each test
    gets keys of its own, so one test's anonymous or refused-token calls never spend
    another's quota, whatever ran before it or runs beside it (other runs, xdist workers)."""
    prefix = f"test-{os.getpid()}-{worker_id}-{next(_cache_prefixes)}"
    settings.CACHES = {name: {**conf, "KEY_PREFIX": prefix} for name, conf in settings.CACHES.items()}


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


_usernames = itertools.count(1)


@pytest.fixture
def make_user(db) -> Callable[..., object]:
    """`make_user(role="sdr", team=None, **fields)`: a saved accounts.User. `team` is a Team
    or a team name (created when new). The password is "password"."""
    from accounts.models import Team, User

    def make(role: str = "sdr", team: Team | str | None = None, **fields):
        if isinstance(team, str):
            team, _ = Team.objects.get_or_create(name=team)
        username = fields.pop("username", None) or f"{role}{next(_usernames)}"
        password = fields.pop("password", "password")
        fields.setdefault("email", f"{username}@example.com")
        user = User(username=username, role=role, team=team, **fields)
        user.set_password(password)
        user.save()
        return user

    return make


@pytest.fixture
def auth_client(db) -> Callable[[object], object]:
    """`auth_client(user)`: an APIClient sending `Authorization: Token <key>` for that user."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def make(user):
        token, _ = Token.objects.get_or_create(user=user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def people(make_user):
    """Team A (manager_a, sdr_a, sdr_a2), team B (manager_b, sdr_b), an admin and marketing."""
    from accounts.models import Team

    team_a = Team.objects.create(name="Team A")
    team_b = Team.objects.create(name="Team B")
    org = SimpleNamespace(
        team_a=team_a,
        team_b=team_b,
        admin=make_user("admin"),
        marketing=make_user("marketing"),
        manager_a=make_user("manager", team_a),
        manager_b=make_user("manager", team_b),
        sdr_a=make_user("sdr", team_a),
        sdr_a2=make_user("sdr", team_a),
        sdr_b=make_user("sdr", team_b),
    )
    team_a.manager, team_b.manager = org.manager_a, org.manager_b
    team_a.save()
    team_b.save()
    return org

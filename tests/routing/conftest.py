"""Fixtures for routing: a team of sellers, a manager, a clock the tests move."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from accounts.models import Role
from tests.factories import LeadFactory, TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def org(db):
    """Team FR (manager + three SDRs, weights 1/2/3, capacity 10 each), team DE (one SDR),
    an admin and marketing."""
    fr = TeamFactory(name="Inside Sales FR", timezone="Europe/Paris")
    de = TeamFactory(name="Inside Sales DE", timezone="Europe/Berlin")
    o = SimpleNamespace(
        fr=fr,
        de=de,
        admin=UserFactory(role=Role.ADMIN),
        marketing=UserFactory(role=Role.MARKETING),
        manager=UserFactory(role=Role.MANAGER, team=fr),
        s1=UserFactory(role=Role.SDR, team=fr, weight=1, capacity=10),
        s2=UserFactory(role=Role.SDR, team=fr, weight=2, capacity=10),
        s3=UserFactory(role=Role.SDR, team=fr, weight=3, capacity=10),
        de_sdr=UserFactory(role=Role.SDR, team=de, capacity=10),
    )
    fr.manager = o.manager
    fr.save()
    return o


@pytest.fixture
def mql():
    """`mql(**fields)`: an unowned lead in MQL."""

    def make(**fields):
        fields.setdefault("stage", "MQL")
        fields.setdefault("grade", "A")
        fields.setdefault("score", 70)
        return LeadFactory(**fields)

    return make


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, *args, tz="Europe/Paris") -> dt.datetime:
        import zoneinfo

        self.now = dt.datetime(*args, tzinfo=zoneinfo.ZoneInfo(tz)).astimezone(dt.UTC)
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """`clock.set(2026, 11, 27, 17, 30)` (Paris time): what timezone.now() answers."""
    c = Clock(dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    monkeypatch.setattr("django.utils.timezone.now", c)
    return c

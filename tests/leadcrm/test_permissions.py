"""The kernel's role rules: who may own leads, and the DRF role permission (list and detail)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIRequestFactory

from accounts.models import Role
from leadcrm.permissions import has_role, may_own_leads, roles
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("role", "active", "owns"),
    [
        (Role.SDR, True, True),
        (Role.MANAGER, True, True),
        (Role.ADMIN, True, True),
        (Role.MARKETING, True, False),
        (Role.SDR, False, False),
    ],
)
def test_only_active_sellers_own_leads(role, active, owns):
    assert may_own_leads(UserFactory(role=role, is_active=active)) is owns


def test_nobody_owns_without_a_user():
    assert may_own_leads(None) is False


def test_admins_have_every_role_and_inactive_users_none():
    assert has_role(UserFactory(role=Role.ADMIN), (Role.MARKETING,))
    assert not has_role(UserFactory(role=Role.SDR), (Role.MARKETING,))
    assert not has_role(UserFactory(role=Role.MARKETING, is_active=False), (Role.MARKETING,))


def _request(method: str, user):
    request = getattr(APIRequestFactory(), method)("/x/")
    request.user = user
    return request


def test_reads_need_a_read_or_write_role_and_writes_a_write_role():
    permission = roles(read=(Role.MANAGER,), write=(Role.MARKETING,))()
    manager, marketing, sdr = (UserFactory(role=r) for r in (Role.MANAGER, Role.MARKETING, Role.SDR))
    assert permission.has_permission(_request("get", manager), None)
    assert permission.has_permission(_request("get", marketing), None)
    assert not permission.has_permission(_request("get", sdr), None)
    assert not permission.has_permission(_request("post", manager), None)
    assert permission.has_permission(_request("post", marketing), None)


def test_a_detail_write_is_refused_on_the_object_not_before_the_lookup():
    """A reader may reach the lookup (so a hidden object answers 404); the write role is
    asked of the object."""
    permission = roles(read=(Role.MANAGER,), detail=True)()
    manager, sdr, admin = (UserFactory(role=r) for r in (Role.MANAGER, Role.SDR, Role.ADMIN))
    assert permission.has_permission(_request("patch", manager), None)
    assert not permission.has_object_permission(_request("patch", manager), None, object())
    assert permission.has_object_permission(_request("get", manager), None, object())
    assert not permission.has_permission(_request("patch", sdr), None)
    assert permission.has_object_permission(_request("patch", admin), None, object())

"""The admin shows nurturing's data for support, read-only: writes go through the services
(checked, audited, versioned), so the admin offers no add, change or delete."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from tests.factories import UserFactory

MODELS = (
    "emailtemplate",
    "senderidentity",
    "topic",
    "message",
    "suppression",
    "sequence",
    "enrollment",
    "workflow",
    "workflowrun",
)


@pytest.mark.django_db
@pytest.mark.parametrize("model", MODELS)
def test_an_admin_reads_nurturing_in_the_admin_without_writing(client, model):
    client.force_login(UserFactory(role=Role.ADMIN, is_staff=True, is_superuser=True))
    assert client.get(reverse(f"admin:nurturing_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:nurturing_{model}_add")).status_code == 403

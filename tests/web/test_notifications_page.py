"""In-app notifications in the navigation: the unread count, the list, marking read."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Notification
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_the_bell_counts_unread_and_the_page_marks_them_read(make_user, client):
    sdr = make_user("sdr", team="A")
    lead = LeadFactory(owner=sdr)
    first = services.notify(user=sdr, kind="lead", text="New lead for you", lead_id=lead.pk, email=False)
    services.notify(user=sdr, kind="sla", text="SLA due soon", email=False)
    services.notify(user=make_user("sdr", team="A"), kind="lead", text="Not yours", email=False)
    client.force_login(sdr)
    page = client.get(reverse("queue")).content.decode()
    assert 'id="nav-notifications"' in page and '<span class="count" aria-label="2 unread">2</span>' in page
    listing = client.get(reverse("notifications")).content.decode()
    assert "New lead for you" in listing and "Not yours" not in listing
    assert reverse("lead-detail", args=[lead.pk]) in listing
    client.post(reverse("notifications"), {"id": str(first.pk)})
    assert Notification.objects.filter(user=sdr, read_at__isnull=True).count() == 1
    client.post(reverse("notifications"))
    assert not Notification.objects.filter(user=sdr, read_at__isnull=True).exists()
    assert 'class="count"' not in client.get(reverse("queue")).content.decode()


def test_anonymous_visitors_are_sent_to_the_login(client):
    answer = client.get(reverse("notifications"))
    assert answer.status_code == 302 and reverse("login") in answer["Location"]

"""The per-provider sending rate: every worker takes its share of a provider's messages per
second from one counter in the shared cache, and waits for the next second when it is used."""

from __future__ import annotations

import pytest

from nurturing import sending_rate

# Each test has cache keys of its own (tests/conftest.py), so counters start at zero.


def test_provider_names_from_back_ends():
    assert sending_rate.provider_of("anymail.backends.amazon_ses.EmailBackend") == "amazon_ses"
    assert sending_rate.provider_of("django.core.mail.backends.smtp.EmailBackend") == "smtp"


@pytest.mark.parametrize("text", ["smtp", "smtp=", "smtp=0", "=5", "smtp=fast"])
def test_a_bad_limit_is_refused(text):
    with pytest.raises(ValueError):
        sending_rate.parse_limits(text)


def test_limits_parse():
    assert sending_rate.parse_limits(" smtp=50, amazon_ses=14 ,") == {"smtp": 50, "amazon_ses": 14}
    assert sending_rate.parse_limits("") == {}


def test_shares_of_one_second_add_up_to_the_limit(settings):
    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=10"
    now = 1_000_000.25
    first = sending_rate.take(provider="smtp", wanted=6, now=now)
    second = sending_rate.take(provider="smtp", wanted=6, now=now + 0.1)  # another worker, same second
    third = sending_rate.take(provider="smtp", wanted=3, now=now + 0.2)
    assert first == (6, 0.0)
    assert second[0] == 4 and second[1] == pytest.approx(0.65)
    assert third[0] == 0
    assert sending_rate.take(provider="smtp", wanted=3, now=now + 1) == (3, 0.0)  # the next second


def test_an_unlimited_provider_is_not_paced(settings):
    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=10"
    assert sending_rate.take(provider="amazon_ses", wanted=500) == (500, 0.0)


def test_pacing_waits_for_the_next_second(settings):
    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=2"
    clock = [2_000_000.5]
    waits = []

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    sent = [sending_rate.paced(provider="smtp", wanted=2, sleep=sleep, clock=lambda: clock[0]) for _ in range(3)]
    assert sent == [2, 2, 2] and len(waits) == 2 and all(0 < w <= 1 for w in waits)


def test_a_cache_outage_paces_nobody(settings, monkeypatch):
    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=1"

    class Down:
        def add(self, *args, **kwargs):
            raise ConnectionError("redis is down")

    monkeypatch.setattr(sending_rate, "cache", Down())
    assert sending_rate.take(provider="smtp", wanted=50) == (50, 0.0)


def test_a_mistyped_limit_is_said_at_start_up(settings):
    from nurturing.apps import check_rate_limits

    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=fast"
    assert [e.id for e in check_rate_limits()] == ["nurturing.E001"]
    settings.LEADCRM_EMAIL_RATE_LIMITS = "smtp=50"
    assert check_rate_limits() == []


@pytest.mark.django_db
def test_the_sender_paces_each_message_by_its_provider(settings, monkeypatch, make_user):
    from leadcrm.actors import Actor
    from leads.models import ConsentStatus
    from nurturing import services
    from tests.factories import LeadFactory

    settings.LEADCRM_EMAIL_RATE_LIMITS = "locmem=2"  # the tests' e-mail back end
    settings.LEADCRM_EMAIL_FREQUENCY_CAP = "10/7"
    actor = Actor(make_user("marketing"))
    template = services.email_template_create(actor=actor, name="Paced", subject="Hi", text="Hello")
    leads = [LeadFactory(consent_status=ConsentStatus.OPT_IN) for _ in range(5)]
    requests = [services.MessageRequest(lead.pk, template.pk, f"paced-{lead.pk}") for lead in leads]
    ids = [o.message_id for o in services.messages_queue(actor=actor, requests=requests)]
    asked = []
    real = sending_rate.paced
    monkeypatch.setattr(sending_rate, "paced", lambda **kw: asked.append(kw) or real(**kw))
    assert services.messages_send(message_ids=ids)["sent"] == 5
    assert asked and {a["provider"] for a in asked} == {"locmem"} and len(asked) == 5

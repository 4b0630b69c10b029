"""The export and the erasure cover every table that can hold a person's data: checked
against Django's app registry, independently of the discovery they use, and shown to fail
for a new model that is not covered."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from compliance import registry
from leads.models import Lead


def _pointing_at(targets: set[type[models.Model]]) -> set[type[models.Model]]:
    """Concrete models with a forward FK/OneToOne to one of `targets`."""
    found = set()
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for f in model._meta.get_fields():
            if f.concrete and f.is_relation and (f.many_to_one or f.one_to_one) and f.related_model in targets:
                found.add(model)
    return found - {Lead}


def test_every_model_with_a_lead_foreign_key_is_covered():
    """Direct FKs to Lead, and FKs to those (two hops), read from the app registry."""
    direct = _pointing_at({Lead})
    second = _pointing_at(direct | {Lead})
    assert direct, "the check reads nothing"
    labels = {m._meta.label for m in direct | second}
    missing = labels - registry.covered()
    assert not missing, f"models holding lead data that the GDPR export/erasure does not cover: {sorted(missing)}"


def test_no_model_looks_personal_without_being_covered_or_exempt():
    """A lead id, an e-mail, an IP, a user agent or a payload column outside the covered
    models must be registered (compliance.services.personal_data_register) or exempted
    with a reason (personal_data_exempt)."""
    assert registry.uncovered() == {}


def test_every_exemption_says_why():
    assert all(reason.strip() for reason in registry.exemptions().values())


@isolate_apps("compliance")
def test_a_new_model_is_caught_until_it_is_covered():
    """The checks can fail: a model with a plain lead id and an e-mail is reported until it
    is registered; a model with a lead FK (or an FK to such a model) is discovered."""

    class WebhookLog(models.Model):
        lead_id = models.BigIntegerField()
        contact_email = models.EmailField()

        class Meta:
            app_label = "compliance"

    class FormAnswer(models.Model):
        lead = models.ForeignKey(Lead, on_delete=models.CASCADE)

        class Meta:
            app_label = "compliance"

    class FormAnswerFile(models.Model):
        answer = models.ForeignKey(FormAnswer, on_delete=models.CASCADE)
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "compliance"

    world = [*apps.get_models(), WebhookLog, FormAnswer, FormAnswerFile]
    assert registry.uncovered(world) == {"compliance.WebhookLog": ["lead_id", "contact_email"]}
    found = registry.discover(world)
    assert found["compliance.FormAnswer"] == ("lead",)
    assert found["compliance.FormAnswerFile"] == ("answer__lead",)
    registry.register("compliance.WebhookLog", lead_id_field="lead_id", email_fields=("contact_email",))
    try:
        assert registry.uncovered(world) == {}
        source = next(s for s in registry.sources(world) if s.label == "compliance.WebhookLog")
        assert source.lead_id_field == "lead_id"
    finally:
        registry._registered.pop("compliance.WebhookLog")


def test_registration_needs_no_import_of_internals():
    """Other apps register through compliance.services (a public module)."""
    from compliance import services

    assert services.personal_data_register is registry.register
    assert services.personal_data_exempt is registry.exempt
    with pytest.raises(ValueError):
        registry.exempt("compliance.Nothing", reason=" ")

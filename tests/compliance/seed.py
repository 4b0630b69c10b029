"""A person with rows in every table that holds their data, built from the same app registry
the export reads: every model reaching `leads.Lead` by FK gets one row of the person, with
every text, JSON, e-mail, URL and IP column filled with the person's identifiers. So a table
another app adds tomorrow is seeded (and checked) without touching this file; a model the
generic builder cannot fill fails loudly with its name.

The tables no FK reaches (the registered ones) are seeded by hand below, the consent log
through its service (its text and source are the form's words, not the person's)."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import uuid
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Notification, User
from compliance import registry
from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.models import AuditEntry, OutboxMessage
from leads import services as lead_services
from leads.models import ConsentRecord, ImportJob, Lead
from nurturing.models import Suppression

# Built by hand (service or meaning), never by the generic builder.
NOT_GENERIC = {"leads.ConsentRecord", "compliance.Erasure"}
_n = itertools.count(1)


@dataclass
class Person:
    email: str
    first_name: str
    last_name: str
    phone: str
    ip: str
    user_agent: str
    lead: Lead | None = None
    rows: dict[str, set[int]] = field(default_factory=dict)  # label -> pks seeded for the person

    @property
    def tokens(self) -> list[str]:
        return [self.email, self.first_name, self.last_name, self.phone, self.ip, self.user_agent]

    @property
    def text(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}> {self.phone} {self.ip}"


def make_person(tag: str) -> Person:
    """Identifiers unlikely to appear anywhere else in the database."""
    n = next(_n)
    return Person(
        email=f"{tag}.quistberg{n}@example.org",
        first_name=f"Zel{tag}quine",
        last_name=f"Quistberg{tag}",
        phone=f"+3361234{n:04d}",
        ip=f"203.0.113.{70 + n % 100}",
        user_agent=f"{tag.capitalize()}Browser/{n}.0",
    )


def _value(f: models.Field, person: Person | None, n: int):
    if isinstance(f, models.GenericIPAddressField):
        return person.ip if person else "198.51.100.1"
    if isinstance(f, models.EmailField):
        return person.email if person else f"neutral{n}@example.net"
    if isinstance(f, models.JSONField):
        if person is None:
            return f.get_default()
        return {
            "email": person.email,
            "name": f"{person.first_name} {person.last_name}",
            "phone": person.phone,
            "ip": person.ip,
            "ua": person.user_agent,
        }
    if isinstance(f, models.URLField):
        return f"https://www.example.com/p?email={person.email}" if person else "https://www.example.com/"
    if isinstance(f, (models.CharField, models.TextField)):
        if f.choices:
            return f.choices[0][0]
        text = f"{person.text} {person.user_agent} #{n}" if person else f"neutral-{n}-{uuid.uuid4().hex[:8]}"
        limit = f.max_length
        if limit and len(text) > limit:
            short = [t for t in (person.text, person.email, person.last_name) if person and len(t) <= limit]
            text = short[0] if short else f"v{n}"[:limit]
        return text
    if isinstance(f, models.BooleanField):
        return False
    if isinstance(f, (models.IntegerField, models.BigIntegerField, models.SmallIntegerField)):
        return 1
    if isinstance(f, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(f, models.FloatField):
        return 1.0
    if isinstance(f, models.DateTimeField):
        return timezone.now()
    if isinstance(f, models.DateField):
        return timezone.localdate()
    if isinstance(f, models.TimeField):
        return dt.time(9, 0)
    if isinstance(f, models.DurationField):
        return dt.timedelta(hours=1)
    if isinstance(f, models.UUIDField):
        return uuid.uuid4()
    if isinstance(f, models.BinaryField):
        return b"x"
    return f.get_default()


class Builder:
    """One row per model: the person's rows for discovered models, neutral ones for the
    configuration they point at (a segment, a sequence, a webhook...)."""

    def __init__(self, person: Person, user: User, personal: set[str]):
        self.person, self.user, self.personal = person, user, personal
        self.made: dict[str, models.Model] = {}

    def row(self, model: type[models.Model]) -> models.Model:
        label = model._meta.label
        if label in self.made:
            return self.made[label]
        if model is Lead:
            return self.person.lead
        if model is User:
            return self.user
        personal = label in self.personal
        values = {}
        for f in model._meta.concrete_fields:
            if f.primary_key or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                continue
            if f.is_relation:
                target = f.related_model
                if target is Lead or target._meta.label in self.personal or target is User:
                    if target._meta.label != label:
                        values[f.name] = self.row(target)
                elif not f.null:
                    values[f.name] = self.row(target)
                continue
            if personal or (not f.null and not f.has_default() and not f.blank):
                values[f.attname] = _value(f, self.person if personal else None, next(_n))
            elif not f.null and not f.has_default():
                values[f.attname] = _value(f, None, next(_n))
        try:
            with transaction.atomic():
                obj = model._base_manager.create(**values)
        except Exception as exc:  # noqa: BLE001 - the message names the model to seed by hand
            raise AssertionError(f"seed: cannot build a {label} row generically ({exc}); seed it by hand") from exc
        self.made[label] = obj
        if personal:
            self.person.rows.setdefault(label, set()).add(obj.pk)
        return obj


def seed_person(person: Person, *, user: User) -> Person:
    """The person's lead and a row of theirs in every table that can hold their data."""
    person.lead = Lead.objects.create(
        email=person.email,
        first_name=person.first_name,
        last_name=person.last_name,
        phone=person.phone,
        job_title="Head of Data",
        city="Lyon",
        country="FR",
        source="seo",
        properties={"nickname": person.first_name, "contact": person.email},
        stage_changed_at=timezone.now(),
    )
    actor = Actor(user=user, kind="user")
    lead_services.lead_consent_set(
        lead_id=person.lead.pk,
        status="opt_in",
        source="form:newsletter",
        actor=actor,
        text="Yes, send me the newsletter.",
        ip=person.ip,
        user_agent=person.user_agent,
    )
    lead_services.lead_consent_set(
        lead_id=person.lead.pk, status="opt_in", source="double_opt_in:confirmed:message:1", actor=actor
    )
    labels = {s.label for s in registry.sources()}
    discovered = set(registry.discover())
    builder = Builder(person, user, discovered - NOT_GENERIC)
    for label in sorted(discovered - NOT_GENERIC):
        builder.row(apps.get_model(label))
    # Tables no FK reaches (compliance.services.register_builtin_sources): by hand.
    lead = person.lead
    by_hand = {
        "accounts.Notification": Notification.objects.create(
            user=user, kind="lead_recaptured", text=f"{person.email} sent again", lead_id=lead.pk
        ),
        "admin.LogEntry": LogEntry.objects.create(
            user=user,
            content_type=ContentType.objects.get_for_model(Lead),
            object_id=str(lead.pk),
            object_repr=person.email,
            action_flag=CHANGE,
            change_message=f"Changed name to {person.first_name}",
        ),
        "nurturing.Suppression": Suppression.objects.create(email=person.email, reason="hard_bounce", source="test"),
        "leads.ImportJob": ImportJob.objects.create(
            filename="people.csv",
            data=f"email,first_name,phone\nkeep@example.net,Keep,\n{person.email.upper()},{person.first_name},{person.phone}\n".encode(),
            errors=[{"line": 2, "column": "phone", "message": f"{person.phone} for {person.email}"}],
        ),
        "leadcrm.AuditEntry": audit.record(
            actor=actor,
            action="segment.note",
            target=("nurturing.segment", 1, "Segment"),
            details={"about": person.email},
        ),
        "leadcrm.OutboxMessage": OutboxMessage.objects.create(
            event="lead.updated",
            task="scoring.tasks.leads_rescore",
            payload={"lead_ids": [lead.pk], "note": person.email},
            created_at=timezone.now(),
            available_at=timezone.now(),
        ),
    }
    for label, obj in by_hand.items():
        assert label in labels, f"{label} is no longer a registered source"
        person.rows.setdefault(label, set()).add(obj.pk)
    about_lead = AuditEntry.objects.filter(target_type="leads.lead", target_id=str(lead.pk))
    person.rows["leadcrm.AuditEntry"].update(about_lead.values_list("pk", flat=True))
    person.rows["leads.ConsentRecord"] = set(ConsentRecord.objects.filter(lead=lead).values_list("pk", flat=True))
    return person

"""Partner offers: a partner accepts a lead offered to it, or declines it (the lead is
routed again, never to that partner), or lets the deadline pass (the beat job recalls it).
Offers are made by the routing (`assignment`)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from leadcrm import audit
from leadcrm.actors import Actor
from leadcrm.errors import Conflict
from routing.models import OfferStatus, PartnerOffer
from routing.services.assignment import lead_route
from routing.services.context import Context


def _pending_offer(offer_id: int, actor: Actor) -> PartnerOffer:
    offer = PartnerOffer.objects.select_for_update().select_related("partner").get(pk=offer_id)
    user = actor.user
    if user is not None and not user.is_admin_role and user.pk != offer.partner.user_id:
        # A permission, not a state the offer is in: 403 (marketing sees every offer, as it
        # sees every lead, but answers none of them).
        raise PermissionDenied("Only the partner or an admin answers this offer.")
    if offer.status != OfferStatus.PENDING:
        raise Conflict("offer_closed", f"This offer is already {offer.status}.", status=offer.status)
    return offer


def _audit_offer(offer: PartnerOffer, actor: Actor) -> None:
    """On the lead (its timeline shows the partner's answer)."""
    audit.record(
        actor=actor,
        action=f"lead.partner_offer.{offer.status}",
        target=("leads.lead", offer.lead_id, ""),
        changes={"offer_status": [OfferStatus.PENDING, offer.status]},
        details={"offer": offer.pk, "partner": offer.partner.name, "reason": offer.reason},
    )


def partner_offer_accept(*, offer_id: int, actor: Actor) -> PartnerOffer:
    with transaction.atomic():
        offer = _pending_offer(offer_id, actor)
        offer.status, offer.answered_at, offer.answered_by = OfferStatus.ACCEPTED, timezone.now(), actor.user
        offer.save(update_fields=["status", "answered_at", "answered_by"])
        _audit_offer(offer, actor)
    return offer


def partner_offer_decline(*, offer_id: int, actor: Actor, reason: str = "") -> PartnerOffer:
    """The partner passes: the lead is recalled and routed again, never to that partner."""
    with transaction.atomic():
        offer = _pending_offer(offer_id, actor)
        offer.status, offer.answered_at, offer.answered_by = OfferStatus.DECLINED, timezone.now(), actor.user
        offer.reason = reason
        offer.save(update_fields=["status", "answered_at", "answered_by", "reason"])
        _audit_offer(offer, actor)
        lead_route(lead_id=offer.lead_id, actor=actor, reason=f"Declined by partner {offer.partner.name}")
    return offer


def partner_offers_expire(*, now: dt.datetime | None = None) -> int:
    """Offers past their deadline: recalled and routed again (beat job; what is due is in
    the database). Each offer in its own transaction; a concurrent run skips locked rows."""
    now = now or timezone.now()
    done = 0
    ids = list(
        PartnerOffer.objects.filter(status=OfferStatus.PENDING, deadline__lte=now).values_list("pk", flat=True)[:1000]
    )
    ctx = Context.load() if ids else None
    for pk in ids:
        with transaction.atomic():
            offer = (
                PartnerOffer.objects.select_for_update(skip_locked=True)
                .select_related("partner")
                .filter(pk=pk, status=OfferStatus.PENDING)
                .first()
            )
            if offer is None:
                continue
            offer.status, offer.answered_at = OfferStatus.EXPIRED, now
            offer.reason = "No answer before the deadline"
            offer.save(update_fields=["status", "answered_at", "reason"])
            lead_route(
                lead_id=offer.lead_id,
                actor=Actor.automation(),
                reason=f"Recalled from partner {offer.partner.name}: no answer in time",
                context=ctx,
            )
            done += 1
    return done

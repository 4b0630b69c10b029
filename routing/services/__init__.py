"""Every write of routing, by business area (each module reads alone):

- `context`: what the router knows (configuration, locked sellers); reads and locks only;
- `assignment`: routing leads, one or a batch, through one write path (`route_leads`),
  and a manager's bulk reassignment;
- `sla`: first-touch clocks (opened in one place, `sla_clocks_open`) and first touches;
- `breaches`: the SLA beat job (alerts, reassignment after the second delay);
- `partners`: partner offers answered or expired;
- `route_job`: routing the unassigned leads as a resumable job;
- `configuration`: rules, territories, partners, SLA policies, settings, seller profiles.

Decisions come from the pure `routing.engine`. The names below are the public ones.
"""

from routing.services.assignment import (
    RouteResult,
    lead_route,
    leads_bulk_reassign,
    leads_route_batch,
    route_leads,
)
from routing.services.breaches import sla_check
from routing.services.configuration import (
    RULE_FIELDS,
    config_delete,
    config_save,
    routing_rule_create,
    routing_rule_delete,
    routing_rule_update,
    routing_settings_update,
    seller_profile_update,
)
from routing.services.context import ROUND_ROBIN_ROLES, Context
from routing.services.partners import partner_offer_accept, partner_offer_decline, partner_offers_expire
from routing.services.route_job import (
    ROUTE_CHUNK,
    ROUTE_KIND,
    ROUTE_LANE,
    route_job_chunks,
    route_unassigned_start,
)
from routing.services.sla import sla_clocks_open, sla_clocks_sync, sla_first_touch_record

__all__ = [
    "ROUND_ROBIN_ROLES",
    "ROUTE_CHUNK",
    "ROUTE_KIND",
    "ROUTE_LANE",
    "RULE_FIELDS",
    "Context",
    "RouteResult",
    "config_delete",
    "config_save",
    "lead_route",
    "leads_bulk_reassign",
    "leads_route_batch",
    "partner_offer_accept",
    "partner_offer_decline",
    "partner_offers_expire",
    "route_job_chunks",
    "route_leads",
    "route_unassigned_start",
    "routing_rule_create",
    "routing_rule_delete",
    "routing_rule_update",
    "routing_settings_update",
    "seller_profile_update",
    "sla_check",
    "sla_clocks_open",
    "sla_clocks_sync",
    "sla_first_touch_record",
]

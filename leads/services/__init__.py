"""Every write on leads, one keyword-only function per business action, by business area:

- `capture`: create or update one lead (`lead_capture`, `lead_update`), the field lists;
- `bulk`: many rows at once (`leads_bulk_upsert`: the bulk API, CSV imports);
- `activity`: events, visitors, logged activities, the activity rollup;
- `lifecycle`: stage moves (`lead_promote` … `lead_transition`) and BANT;
- `assignment`: owners (`leads_assign`, `lead_assign` a batch of one);
- `scores`: scores written by the scoring app (`lead_scores_set`) and the promotions they cause;
- `saved_filters`: users' saved list filters;
- `tasks`: tasks on leads (`tasks_create` for many leads, `task_update`).

Each runs in a transaction, checks its own guards, writes its audit row and emits its domain
event (dispatched after commit). Callers import this package (`from leads import services`).
"""

from leadcrm.errors import ServiceError
from leads.services.activity import events_record, lead_activity_refresh, lead_log_activity, visitor_identify
from leads.services.assignment import lead_assign, leads_assign
from leads.services.bulk import BulkRowResult, leads_bulk_capture, leads_bulk_upsert
from leads.services.capture import (
    AUDITED_FIELDS,
    UTM_FIELDS,
    WRITABLE_FIELDS,
    lead_capture,
    lead_consent_set,
    lead_update,
    leads_consent_record,
)
from leads.services.lifecycle import (
    lead_accept,
    lead_bant_set,
    lead_create_opportunity,
    lead_disqualify,
    lead_lose,
    lead_promote,
    lead_qualify,
    lead_recycle,
    lead_transition,
    lead_win,
)
from leads.services.saved_filters import saved_filter_delete, saved_filter_save
from leads.services.scores import PROMOTE_ONE_BY_ONE, ScoresSetResult, ScoreUpdate, lead_scores_set
from leads.services.tasks import task_update, tasks_create
from leads.validation import clean_lead_row  # the API's input rules, for automation's field updates

__all__ = [
    "AUDITED_FIELDS",
    "PROMOTE_ONE_BY_ONE",
    "UTM_FIELDS",
    "WRITABLE_FIELDS",
    "BulkRowResult",
    "ScoreUpdate",
    "ScoresSetResult",
    "ServiceError",
    "clean_lead_row",
    "events_record",
    "lead_accept",
    "lead_activity_refresh",
    "lead_assign",
    "leads_assign",
    "lead_bant_set",
    "lead_capture",
    "lead_consent_set",
    "leads_consent_record",
    "lead_create_opportunity",
    "lead_disqualify",
    "lead_log_activity",
    "lead_lose",
    "lead_promote",
    "lead_qualify",
    "lead_recycle",
    "lead_scores_set",
    "lead_transition",
    "lead_update",
    "lead_win",
    "task_update",
    "tasks_create",
    "leads_bulk_capture",
    "leads_bulk_upsert",
    "saved_filter_delete",
    "saved_filter_save",
    "visitor_identify",
]

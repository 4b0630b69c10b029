"""Every write on scoring, by business area:

- `validation`: what a rule set and its rules may hold (field errors, stored fields);
- `rulesets`: rule-set configuration (versions, rules, activation), audited;
- `reader`: the SQL reader of lead facts (leads with their events, a chunk at a time);
- `rescore`: the rescore pipeline (one lead's events or every lead, streamed);
- `rescore_job`: the full rescore as a resumable job (activation, nightly decay);
- `backtest`: a version scored against the closed history;
- `training`: the predictive model, trained and applied.

Scores land on the leads through `leads.services.lead_scores_set`, which owns the lead's
audit trail (ScoreChange), the `lead.score_changed` event and the promotion to MQL. Import
the public names from here (`from scoring import services`)."""

from scoring.services.backtest import ruleset_backtest
from scoring.services.reader import CHUNK, LeadRead, LeadState
from scoring.services.rescore import RescoreStats, leads_rescore, leads_rescore_all, leads_to_rescore
from scoring.services.rescore_job import (
    JOB_CHUNK,
    RESCORE_KIND,
    RESCORE_LANE,
    rescore_job_chunks,
    rescore_nightly,
    rescore_start,
)
from scoring.services.rulesets import (
    rule_create,
    rule_delete,
    rule_update,
    ruleset_activate,
    ruleset_copy,
    ruleset_create,
    ruleset_update,
)
from scoring.services.training import leads_predict_open, predictive_train
from scoring.services.validation import (
    ENGAGEMENT_RULE_FIELDS,
    EVENT_TYPES,
    FIT_FIELDS,
    FIT_RULE_FIELDS,
    RULESET_FIELDS,
    validate_engagement_rule,
    validate_fit_rule,
    validate_ruleset,
)

__all__ = [
    "CHUNK",
    "ENGAGEMENT_RULE_FIELDS",
    "EVENT_TYPES",
    "FIT_FIELDS",
    "FIT_RULE_FIELDS",
    "JOB_CHUNK",
    "RESCORE_KIND",
    "RESCORE_LANE",
    "RULESET_FIELDS",
    "LeadRead",
    "LeadState",
    "RescoreStats",
    "leads_predict_open",
    "leads_rescore",
    "leads_rescore_all",
    "leads_to_rescore",
    "predictive_train",
    "rescore_job_chunks",
    "rescore_nightly",
    "rescore_start",
    "rule_create",
    "rule_delete",
    "rule_update",
    "ruleset_activate",
    "ruleset_backtest",
    "ruleset_copy",
    "ruleset_create",
    "ruleset_update",
    "validate_engagement_rule",
    "validate_fit_rule",
    "validate_ruleset",
]

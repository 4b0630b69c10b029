"""Predictive training: a model learnt from the closed history (won = 1, lost or
disqualified = 0), stored as a new active version, and the open leads' conversion
probabilities filled with it. The model itself is `scoring.predictive` (no database)."""

from __future__ import annotations

import time

from django.db import transaction
from django.db.models import Max

from leadcrm.actors import Actor
from leadcrm.errors import ServiceError
from leads import services as lead_services
from leads.models import CLOSED_STAGES, Stage
from scoring import predictive, selectors
from scoring.models import PredictiveModel
from scoring.services.reader import CHUNK, needs_for, read_leads, stage_in


def active_model():
    """The active predictive model, loaded (None when there is none)."""
    record = selectors.predictive_model_active()
    return predictive.loads(record.blob) if record is not None else None


def predictive_train(*, actor: Actor, test_size: float = 0.25, seed: int = 0, fill: bool = True) -> PredictiveModel:
    """Train on the closed history (WO = 1, LOST / DISQUALIFIED = 0), store the model as a
    new version (the only active one) and fill `conversion_probability` of open leads."""
    where, params = stage_in(s.value for s in (Stage.WO, Stage.LOST, Stage.DISQUALIFIED))
    rows, labels = [], []
    for chunk in read_leads(needs_for([], model=True), where=where, params=params, with_closed_at=True):
        for state, facts, evs in chunk:
            rows.append(predictive.features(facts, evs, state.closed_at or time.time()))
            labels.append(1 if state.stage == Stage.WO else 0)
    try:
        trained = predictive.train(rows, labels, test_size=test_size, seed=seed)
    except ValueError as exc:
        raise ServiceError({"history": [str(exc)]}) from exc
    with transaction.atomic():
        version = (PredictiveModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        PredictiveModel.objects.filter(is_active=True).update(is_active=False)
        record = PredictiveModel.objects.create(
            version=version,
            algorithm=predictive.ALGORITHM,
            is_active=True,
            auc=trained["auc"],
            n_train=trained["n_train"],
            n_test=trained["n_test"],
            positives=trained["positives"],
            calibration=trained["calibration"],
            top_features=trained["top_features"],
            blob=predictive.dumps(trained["model"]),
            trained_by=actor.user,
        )
    if fill:
        leads_predict_open(model=trained["model"])
    return record


def leads_predict_open(*, model=None, chunk_size: int = CHUNK) -> int:
    """Fill `conversion_probability` of every open lead with the active model (streamed)."""
    model = model if model is not None else active_model()
    if model is None:
        return 0
    where, params = stage_in(s for s in Stage.values if s not in CLOSED_STAGES)
    now_ts, written = time.time(), 0
    for chunk in read_leads(needs_for([], model=True), where=where, params=params, chunk_size=chunk_size):
        preds = predictive.predict(model, [predictive.features(lead.facts, lead.events, now_ts) for lead in chunk])
        updates = [
            lead_services.ScoreUpdate(
                lead_id=state.id,
                score=state.score,
                fit_score=state.fit_score,
                engagement_score=state.engagement_score,
                grade=state.grade,
                conversion_probability=p,
                expected=state.expected,
            )
            for (state, _, _), p in zip(chunk, preds, strict=True)
            if state.conversion_probability is None or abs(state.conversion_probability - p) > 1e-4
        ]
        lead_services.lead_scores_set(updates=updates, actor=Actor.automation(), with_probability=True)
        written += len(updates)
    return written

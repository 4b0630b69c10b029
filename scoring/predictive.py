"""Predictive conversion model: features as pure functions, training and prediction with
scikit-learn. No database here; `scoring.services` feeds rows and stores the model.

Features of a lead: its standard fields (categorical one-hot; company size as a log),
custom `properties` (strings and booleans one-hot, numbers as values), engagement (event
counts by type, days since the last event, time on site from `properties.duration`).
A `DictVectorizer` names the columns and ignores values never seen in training.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence

import joblib
import numpy as np
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler

from scoring.engine import DAY, LeadFacts

ALGORITHM = "DictVectorizer + MaxAbsScaler + LogisticRegression (scikit-learn)"
CATEGORICAL_FIELDS = ("industry", "country", "source", "job_title", "utm_source", "utm_medium", "utm_campaign")
MIN_TRAINING_LEADS = 20


def features(lead: LeadFacts, events: Iterable[Sequence], now: float) -> dict[str, float | str]:
    """One lead's features at `now` (events after `now` are ignored: a closed lead is seen
    as it was when it closed)."""
    f: dict[str, float | str] = {}
    for name in CATEGORICAL_FIELDS:
        value = lead.fields.get(name)
        if value not in (None, ""):
            f[name] = str(value).strip().lower()
    size = lead.fields.get("company_size")
    if isinstance(size, (int, float)) and not isinstance(size, bool):
        f["company_size_log"] = math.log1p(max(size, 0))
    for key, value in (lead.properties or {}).items():
        if isinstance(value, bool) or isinstance(value, str):
            f[f"prop.{key}"] = str(value).strip().lower()
        elif isinstance(value, (int, float)) and math.isfinite(value):
            f[f"prop.{key}"] = float(value)
    counts: dict[str, int] = {}
    last, duration = None, 0.0
    for ev in events:
        if ev[1] > now:
            continue
        counts[ev[0]] = counts.get(ev[0], 0) + 1
        last = ev[1] if last is None or ev[1] > last else last
        props = ev[3] or {}
        d = props.get("duration") if isinstance(props, dict) else None
        if isinstance(d, (int, float)) and not isinstance(d, bool) and d > 0:
            duration += d
    for kind, n in counts.items():
        f[f"events.{kind}"] = math.log1p(n)
    f["events.total"] = math.log1p(sum(counts.values()))
    f["days_since_last_event"] = min((now - last) / DAY, 365.0) if last is not None else 365.0
    f["time_on_site_log"] = math.log1p(duration)
    return f


def _pipeline(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("vec", DictVectorizer(sparse=True)),
            ("scale", MaxAbsScaler()),
            ("clf", LogisticRegression(max_iter=2000, C=0.5, random_state=seed)),
        ]
    )


def train(rows: list[dict], labels: list[int], *, test_size: float = 0.25, seed: int = 0) -> dict:
    """Fit on a stratified split, report the hold-out AUC, a calibration table and the
    strongest features, then refit on everything. Raises ValueError when the history is
    too small or has one class only."""
    y = np.asarray(labels, dtype=int)
    if len(rows) < MIN_TRAINING_LEADS:
        raise ValueError(f"Need at least {MIN_TRAINING_LEADS} closed leads to train; have {len(rows)}.")
    if y.min() == y.max():
        raise ValueError("The closed history has only one outcome (won, or lost/disqualified); need both.")
    idx = np.arange(len(rows))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    model = _pipeline(seed).fit([rows[i] for i in train_idx], y[train_idx])
    proba = model.predict_proba([rows[i] for i in test_idx])[:, 1]
    holdout_auc = float(roc_auc_score(y[test_idx], proba))
    calibration = calibration_table(proba, y[test_idx])
    final = _pipeline(seed).fit(rows, y)
    return {
        "model": final,
        "auc": holdout_auc,
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "positives": int(y.sum()),
        "calibration": calibration,
        "top_features": top_features(final),
    }


def calibration_table(proba: Sequence[float], labels: Sequence[int], bins: int = 10) -> list[dict]:
    rows = []
    proba, labels = np.asarray(proba), np.asarray(labels)
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        mask = (proba >= low) & ((proba < high) if b < bins - 1 else (proba <= high))
        n = int(mask.sum())
        if n:
            rows.append(
                {
                    "bin": f"{low:.1f}–{high:.1f}",
                    "leads": n,
                    "predicted": round(float(proba[mask].mean()), 4),
                    "observed": round(float(labels[mask].mean()), 4),
                }
            )
    return rows


def top_features(model: Pipeline, n: int = 15) -> list[dict]:
    names = model.named_steps["vec"].get_feature_names_out()
    weights = model.named_steps["clf"].coef_[0] / np.where(
        model.named_steps["scale"].max_abs_ == 0, 1, model.named_steps["scale"].max_abs_
    )
    order = np.argsort(-np.abs(model.named_steps["clf"].coef_[0]))[:n]
    return [
        {"feature": str(names[i]), "weight": round(float(model.named_steps["clf"].coef_[0][i]), 4)}
        for i in order
        if weights[i] != 0
    ]


def dumps(model: Pipeline) -> bytes:
    buf = io.BytesIO()
    joblib.dump(model, buf, compress=3)
    return buf.getvalue()


def loads(blob: bytes) -> Pipeline:
    return joblib.load(io.BytesIO(bytes(blob)))


def predict(model: Pipeline, rows: list[dict]) -> list[float]:
    if not rows:
        return []
    return [round(float(p), 4) for p in model.predict_proba(rows)[:, 1]]

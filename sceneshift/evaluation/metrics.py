"""Accuracy and log loss, overall and per device, device group and class."""
from __future__ import annotations

import numpy as np

from ..data.domain import device_order

EPS = 1e-15  # probabilities are clipped like scikit-learn's log_loss


def _acc(pred, y):
    return float(np.mean(pred == y)) if len(y) else float("nan")


def _logloss(proba, y):
    if not len(y):
        return float("nan")
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))))


def summarize(proba: np.ndarray, y: np.ndarray, devices: list[str], classes: list[str],
              groups: dict[str, list[str]]) -> dict:
    """``proba`` (N, C) rows summing to 1, ``y`` true class indices, ``devices`` per clip."""
    proba = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y)
    devices = np.asarray(devices)
    pred = proba.argmax(1)
    per_class = {c: {"accuracy": _acc(pred[y == i], y[y == i]), "n": int(np.sum(y == i))}
                 for i, c in enumerate(classes)}
    present = [v["accuracy"] for v in per_class.values() if v["n"]]
    report = {
        "overall": {"accuracy": _acc(pred, y), "macro_accuracy": float(np.mean(present)) if present else float("nan"),
                    "log_loss": _logloss(proba, y), "n": int(len(y))},
        "devices": {},
        "groups": {},
        "classes": per_class,
    }
    for d in sorted(set(devices.tolist()), key=device_order):
        m = devices == d
        report["devices"][d] = {"accuracy": _acc(pred[m], y[m]), "log_loss": _logloss(proba[m], y[m]), "n": int(m.sum())}
    for g, members in groups.items():
        m = np.isin(devices, members)
        if m.any():
            report["groups"][g] = {"accuracy": _acc(pred[m], y[m]), "log_loss": _logloss(proba[m], y[m]),
                                   "n": int(m.sum()), "devices": [d for d in members if d in report["devices"]]}
    cm = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    report["confusion"] = {"labels": list(classes), "matrix": cm.tolist()}
    return report

"""Per-device, per-group and per-class metrics on a hand-computed example."""
import math

import numpy as np

from sceneshift.evaluation.metrics import summarize


def test_summarize_hand_example():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    y = np.array([0, 1, 1, 1])
    devices = ["a", "a", "s4", "b"]
    r = summarize(proba, y, devices, ["x", "y"], {"source": ["a"], "seen": ["b"], "unseen": ["s4"]})
    assert r["overall"]["accuracy"] == 0.75 and r["overall"]["n"] == 4
    assert r["overall"]["macro_accuracy"] == (1.0 + 2 / 3) / 2
    assert math.isclose(r["overall"]["log_loss"], -np.mean(np.log([0.9, 0.8, 0.4, 0.7])))
    assert r["devices"]["a"] == {"accuracy": 1.0, "log_loss": r["devices"]["a"]["log_loss"], "n": 2}
    assert r["devices"]["s4"]["accuracy"] == 0.0
    assert r["groups"]["unseen"]["n"] == 1 and r["groups"]["source"]["accuracy"] == 1.0
    assert list(r["devices"]) == ["a", "b", "s4"]
    assert r["confusion"]["matrix"] == [[1, 0], [1, 2]]
    assert r["classes"]["y"]["n"] == 3

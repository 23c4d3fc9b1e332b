"""Networks: the deployable modules a run saves - waveform -> front end -> backbone -> head(s) -> logits.

A network builder takes the resolved recipe and the run's domain and assembles the registered
front end, backbone and head; it knows nothing of training. Evaluation, prediction, CAMs and
export rebuild a run's network from its ``config.yaml`` (section ``network``) and ``domain.json``
through this registry alone, never through a training system.
"""
from __future__ import annotations

from ..registry import Registry

NETWORKS = Registry("network", __name__, injected=("cfg", "domain"),
                    injected_from={"cfg": "the recipe", "domain": "the dataset (the run's domain)"})


def build_network(cfg: dict, domain):
    """The network named by ``cfg['network']`` for ``domain``."""
    opts = dict(cfg.get("network") or {"name": "classifier"})
    return NETWORKS.build(opts.pop("name"), opts, where="network", cfg=cfg, domain=domain)

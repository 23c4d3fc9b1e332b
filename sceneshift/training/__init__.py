"""Training systems: one Lightning module per way of training, selected by the recipe's ``system`` key.

A system owns its training: it builds its network (through the network registry), its
augmentations and its losses, and it declares the data it needs through Lightning's own hooks
(``setup``, ``train_dataloader``, ``val_dataloader``), reading splits from the
:class:`~sceneshift.data.splits.DataSource` it is given. So a multi-stage or teacher/student
system is one new file here plus a recipe, with no edit to ``run.py``, the recipe schema or the
command line. A system's constructor takes ``cfg``, ``domain`` and ``data`` (injected) and its
keyword parameters are the recipe's ``system_options``. What a system declares:

* ``monitors``: the validation metrics it logs (``train.monitor`` must name one);
* ``trained_devices()``: the devices whose clips it trains on (``evaluate --adapt`` adapts the
  others by default);
* ``network_spec(options)``: the network section it trains (saved in the run's config.yaml,
  so evaluation rebuilds the network without the system).
"""
from ..registry import Registry

SYSTEMS = Registry("system", __name__, injected=("cfg", "domain", "data"),
                   injected_from={"cfg": "the recipe", "domain": "the dataset", "data": "the dataset"})

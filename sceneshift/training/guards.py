"""What every training run needs besides its system: exact resumption, a stop on non-finite loss,
and, in a run on several processes, stops that every process takes at the same step.

Exact resumption: a checkpoint holds the weights, optimiser, scheduler and epoch, but not where
the random streams were. Instead of saving those states, every stream is set at the start of each
epoch from (seed, epoch) alone - the global torch/numpy/random streams (dropout, ...), each
augmentation's private generator and the batch order (``EpochShuffle``, or a batch sampler with
``set_epoch``) - so a run resumed at epoch k draws exactly what the uninterrupted run drew there.
In a run on several processes, process ``r > 0`` mixes its global rank into the seeds of the
global streams and of the augmentations (process 0 keeps the single-process seeds), so the
processes draw different dropout masks and augmentations; the batch order is the same stream in
every process (each takes its share of it, ``ShardedBatches``). A resumed run on the same number
of processes draws what the uninterrupted one drew.

Non-finite loss: a NaN in the loss poisons every weight within one step, after which training
would go on for hours and report chance accuracy with exit status 0. The first non-finite
training loss stops the run with a message instead.

Several processes: a process that stops on its own while the others go on leaves them waiting
in the next collective operation (the gradient all-reduce) forever. So the decisions to stop
are collective: after every training step each process contributes two flags - its loss is not
finite, it received a stop signal (:attr:`RunGuard.stop_signal`, set by the signal handlers of
``run.py``) - to one all-reduce (maximum), and all processes act on the result at the same step.
Validation batches carry the stop flag the same way (every process validates the whole split).
"""
from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch

from ..augment.base import Augmentation


class NonFiniteLoss(FloatingPointError):
    pass


class StopRequested(SystemExit):
    """Every process of a distributed run stops here at the same step (a stop signal reached one of them).

    A ``SystemExit``, as Lightning's own ``SIGTERMException``: Lightning marks the trainer interrupted
    and tears down, and ``run.py`` turns it into :class:`~sceneshift.training.run.TrainingInterrupted`.
    """


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of the global random streams in ``epoch``; process 0's is the single-process one."""
    s = seed * 1_000_003 + 7_919 * epoch
    return (s + 104_729 * rank) % 2 ** 32 if rank else s % 2 ** 32


def _distributed(trainer) -> bool:
    return (trainer.world_size > 1 and torch.distributed.is_available()
            and torch.distributed.is_initialized())


class RunGuard(L.Callback):
    def __init__(self, seed: int):
        self.seed = int(seed)
        self.stop_signal: str | None = None      # a signal's name, set by run.py's handlers (several processes)
        self.in_training = False                 # between on_train_start and on_train_end

    def on_train_start(self, trainer, pl_module):
        self.in_training = True

    def on_train_end(self, trainer, pl_module):
        self.in_training = False

    def on_train_epoch_start(self, trainer, pl_module):
        epoch, rank = trainer.current_epoch, int(trainer.global_rank)
        s = epoch_seed(self.seed, epoch, rank)
        torch.manual_seed(s)
        np.random.seed(s)
        random.seed(s)
        for module in pl_module.modules():
            if isinstance(module, Augmentation):
                module.start_epoch(epoch)
                if rank:        # the epoch's stream of this augmentation, moved by the rank
                    module.generator.manual_seed((module.generator.initial_seed() + 104_729 * rank) % 2 ** 64)
        batches = getattr(trainer.train_dataloader, "batch_sampler", None)
        if callable(getattr(batches, "set_epoch", None)):      # e.g. seed 000's source/target batches
            batches.set_epoch(epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        loss = loss if isinstance(loss, torch.Tensor) else None
        if not _distributed(trainer):
            if loss is not None and not torch.isfinite(loss).all():
                raise NonFiniteLoss(self._message(f"training loss is {loss.item()}", trainer, batch_idx))
            return
        # one all-reduce per step: [1 + rank of a process whose loss is not finite (0: none), a stop signal]
        device = trainer.strategy.root_device
        bad = (~torch.isfinite(loss.detach())).any().to(device) if loss is not None else torch.tensor(False, device=device)
        flags = torch.stack([bad.float() * (trainer.global_rank + 1),
                             torch.tensor(float(self.stop_signal is not None), device=device)])
        torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        bad_rank, stop = (int(v) for v in flags.tolist())
        if bad_rank:
            what = (f"training loss is {loss.item()}" if bad_rank == trainer.global_rank + 1
                    else f"training loss of process {bad_rank - 1} is not finite")
            raise NonFiniteLoss(self._message(what, trainer, batch_idx))
        if stop:
            raise StopRequested()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        """A stop during validation (several processes): all stop at the same batch; the last one completes the epoch."""
        if not _distributed(trainer) or trainer.state.fn != "fit":
            return
        if batch_idx + 1 >= trainer.num_val_batches[dataloader_idx]:
            return
        flag = torch.tensor([float(self.stop_signal is not None)], device=trainer.strategy.root_device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item():
            raise StopRequested()

    @staticmethod
    def _message(what: str, trainer, batch_idx: int) -> str:
        return (f"{what} at epoch {trainer.current_epoch}, batch {batch_idx}: the weights are no longer usable; "
                f"lower train.lr, or check the inputs for extreme values (the last complete epoch's checkpoint "
                f"is kept)")

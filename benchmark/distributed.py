"""One protocol run trained by several processes: ``bench run --launcher pytorch`` under
``torchrun`` (one process per GPU; on the CPU, gloo).

The run is still one run: process 0 alone locks the run folder, writes its state, results and
artifacts and talks to MLflow; every process trains and tests its shard of each batch, and the
stages' metrics are gathered by MMEngine's evaluator. ``batch_size`` in a config stays the
global batch: each process loads ``batch_size / world_size`` clips, and with MMEngine's samplers
(each process takes every world_size-th index of one shared permutation) the processes' shards
of step k together are the one-process batch of step k.

Two parts of MMEngine's own distributed path do not fit, and are replaced here:

- ``init_dist('pytorch')`` calls ``torch.cuda.set_device``, so it cannot start a CPU (gloo) run.
  ``init`` starts the process group (nccl on CUDA, gloo on the CPU) before any Runner, which
  then finds it and starts none.
- MMEngine wraps models in ``DistributedDataParallel``, which synchronizes gradients only
  through the wrapped module's ``forward`` (and refuses CPU modules with ``device_ids``). The
  adversarial models (RAPrivacy and the learned baselines) call their parts' methods directly
  and step three optimizers an iteration; ``MMSeparateDistributedDataParallel`` would wrap
  those parts and hide the methods (``anonymizer.transfer``) the models call.
  ``GradientAveraging`` instead averages each optimizer's gradients across processes just
  before it steps (one all-reduce per step): the update DistributedDataParallel gives, for any
  ``train_step``. Floating-point buffers (batch-norm statistics) are taken from process 0 at
  every step, so all processes hold the same model.

What differs from one process: batch-norm layers normalize over each process's shard in
training, and losses over the batch (NT-Xent negatives) see the shard, as under DDP without
SyncBatchNorm.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS
from torch import nn

from benchmark.errors import ProtocolError

LAUNCHERS = ('none', 'pytorch')
TORCHRUN_VARIABLES = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def init(launcher: str, device: str) -> None:
    """Start the process group of a ``torchrun`` launch (a no-op for ``'none'``)."""
    if launcher == 'none' or is_distributed():
        return
    missing = [v for v in TORCHRUN_VARIABLES if v not in os.environ]
    if missing:
        raise ProtocolError(f'--launcher {launcher} needs torchrun\'s {", ".join(missing)}: start it as '
                            f'`torchrun --nproc-per-node N -m benchmark.cli run ... --launcher pytorch`')
    if device == 'cuda':
        torch.cuda.set_device(int(os.environ['LOCAL_RANK']))
    dist.init_process_group('nccl' if device == 'cuda' else 'gloo')


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def broadcast(value):
    """Process 0's ``value`` (any picklable object) on every process."""
    if not is_distributed():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def shard_batch(batch_size: int, what: str) -> int:
    """Each process's share of a global batch; one line when it does not divide."""
    world = world_size()
    if batch_size % world:
        raise ProtocolError(f'{what}={batch_size} does not divide among {world} processes: the batch is '
                            f'global, each process loads batch / processes clips')
    return batch_size // world


def average_gradients(optimizer: torch.optim.Optimizer) -> None:
    """Replace every gradient the optimizer holds by its mean over the processes."""
    grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


# In MMEngine's root registry: the Runner looks wrapper types up there alone (Registry.get
# searches only the root's direct children for a scope, and the suite's are grandchildren).
@MODEL_WRAPPERS.register_module()
class GradientAveraging(nn.Module):
    """Data parallelism for any MMEngine model (see the module's docstring).

    Args:
        module (nn.Module): The model, on this process's device.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        with torch.no_grad():
            for tensor in (*module.parameters(), *module.buffers()):
                dist.broadcast(tensor, 0)  # one start, whatever each process drew
        self._synced: set[int] = set()

    def _sync_steps(self, optim_wrapper) -> None:
        wrappers = (optim_wrapper.optim_wrappers.values() if isinstance(optim_wrapper, OptimWrapperDict)
                    else [optim_wrapper])
        for wrapper in wrappers:
            if id(wrapper) in self._synced:
                continue
            step = wrapper.step

            def synced_step(*args, _step=step, _wrapper=wrapper, **kwargs):
                average_gradients(_wrapper.optimizer)
                return _step(*args, **kwargs)
            wrapper.step = synced_step  # update_params calls self.step()
            self._synced.add(id(wrapper))

    def train_step(self, data, optim_wrapper):
        self._sync_steps(optim_wrapper)
        with torch.no_grad():
            for buffer in self.module.buffers():
                if buffer.is_floating_point():
                    dist.broadcast(buffer, 0)
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

"""bf16 autocast (``--amp``): on the GPU, and on a CPU with bf16 matrix units.

``--amp`` runs every training forward pass (the fit and both target models) and the
anonymize-once pass under ``torch.autocast(dtype=bfloat16)``; weights, optimizer state and
losses stay float32, and bf16 needs no loss scaling. On CUDA the optimizer wrapper is MMEngine's
``AmpOptimWrapper``; MMEngine's refuses the CPU, so there it is ``CPUBf16OptimWrapper`` below.
A CPU without bf16 support in oneDNN (AVX512-BF16 or AMX) would run bf16 slower than float32,
so ``--amp`` is refused there (``bf16_problem``). The precision is a run's tag
(``bench.precision``) and part of its state: a run folder is never resumed, nor a fit reused,
at another precision.

Under autocast a recognizer's classification head returns bf16 scores, and mmaction2's
``BaseHead.loss_by_feat`` turns them into a NumPy array for its batch accuracy, which NumPy
refuses (``TypeError: Got unsupported ScalarType BFloat16``): every target model's first
training step failed under ``--amp``. The scores are cast back to float32 as the head returns
them; the loss is then computed in float32, as autocast does for cross-entropy anyway.
"""
from __future__ import annotations

import contextlib

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from torch import nn

from benchmark.registry import HOOKS, OPTIM_WRAPPERS

BF16, FP32 = 'bf16', 'fp32'  # values of the bench.precision tag


def precision(amp: bool) -> str:
    return BF16 if amp else FP32


def stored_precision(state: dict) -> str:
    """The precision a run folder's state was started at (``fp32`` for states before the key)."""
    return state.get('precision', FP32)


def bf16_problem(device: str) -> str | None:
    """Why ``--amp`` cannot run on ``device`` ('cpu' or 'cuda'), or None when it can."""
    if device == 'cuda':
        return None if torch.cuda.is_bf16_supported() else 'this GPU has no bf16 support'
    if not torch.backends.mkldnn.is_available():
        return 'this torch build has no oneDNN for bf16 on the CPU'
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return 'this CPU has no bf16 units (AVX512-BF16 or AMX), where bf16 runs slower than float32'
    return None


def autocast(device: str | torch.device, enabled: bool = True):
    """bf16 autocast on ``device``'s type when ``enabled``, else nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@OPTIM_WRAPPERS.register_module()
class CPUBf16OptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose ``optim_context`` runs the forward pass under CPU bf16 autocast
    (MMEngine's ``AmpOptimWrapper`` asserts a GPU). No loss scaler: bf16 has float32's range."""

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), autocast('cpu'):
            yield


def flush_denormals(device: str) -> bool:
    """On the CPU, treat denormal floats as zero from here on (this thread and the threads it
    starts); whether the CPU could. Denormals (below 1.2e-38) are a thousand times below any value
    that changes a weight or a pixel, but some x86 CPUs compute with them through slow microcode:
    on one of this suite's 2-core machines (a Xeon with AMX), RAPrivacy's adversarial fit
    iteration took about 6 times as long with them, and anonymizing about 3 times
    (``scripts/bench_raprivacy_step.py --keep-denormals`` against the default; figures in
    results/precision_cpu/). GPUs flush them in most kernels anyway. Every CPU run of the
    protocol calls this first; the run's tag ``bench.denormals`` records the state it ran in."""
    if device != 'cpu':
        return False
    return bool(torch.set_flush_denormal(True))


def denormals_flushed() -> bool:
    """Whether this thread flushes denormal floats to zero, read off a product that is denormal
    unless flushed."""
    return (torch.tensor([1e-39]) * torch.tensor([1.0])).item() == 0.0


def optim_wrapper_type(amp: bool, device: str) -> dict:
    """The ``type`` (and dtype) of an optimizer wrapper at the run's precision."""
    if not amp:
        return dict(type='OptimWrapper')
    if device == 'cpu':
        return dict(type='CPUBf16OptimWrapper')
    return dict(type='AmpOptimWrapper', dtype='bfloat16')


def float_head_outputs(model: nn.Module) -> None:
    """Make ``model.cls_head`` return float32 scores (a no-op for float32 ones); once per model."""
    if getattr(model.cls_head, '_float_outputs', False):
        return
    model.cls_head._float_outputs = True

    def to_float(module, args, output):
        return output.float() if torch.is_tensor(output) and output.is_floating_point() else output
    model.cls_head.register_forward_hook(to_float)


@HOOKS.register_module()
class FloatHeadOutputHook(Hook):
    """``float_head_outputs`` on the Runner's model before it trains (the protocol adds it under ``--amp``)."""

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        float_head_outputs(model)

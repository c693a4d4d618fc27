"""bf16 autocast (``--amp``) for mmaction2's recognizers.

Under autocast a recognizer's classification head returns bf16 scores, and mmaction2's
``BaseHead.loss_by_feat`` turns them into a NumPy array for its batch accuracy, which NumPy
refuses (``TypeError: Got unsupported ScalarType BFloat16``): every target model's first
training step failed under ``--amp``. The scores are cast back to float32 as the head returns
them; the loss is then computed in float32, as autocast does for cross-entropy anyway.
"""
from __future__ import annotations

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import nn

from benchmark.registry import HOOKS


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

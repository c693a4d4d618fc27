"""One optimizer wrapper per named submodule, for models trained with several optimizers.

MMEngine 0.10.7 builds an ``OptimWrapperDict`` only from a constructor that knows the model's
parts. This one reads ``fit.optim_wrapper`` as ``{submodule name: optim wrapper config}``:

    optim_wrapper = dict(
        constructor='MultiOptimWrapperConstructor',
        anonymizer=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)),
        action_branch=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4)))

Each entry may carry its own ``paramwise_cfg``; MMEngine's default constructor builds it over
that submodule's parameters.
"""
from __future__ import annotations

from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from torch import nn

from benchmark.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Build an ``OptimWrapperDict`` with one wrapper per submodule named in the config.

    Args:
        optim_wrapper_cfg (dict): ``{submodule name: optim wrapper config}``.
        paramwise_cfg (dict, optional): Must be None: give ``paramwise_cfg`` per submodule.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: dict | None = None) -> None:
        if paramwise_cfg is not None:
            raise ValueError('MultiOptimWrapperConstructor: put paramwise_cfg inside each '
                             'submodule entry of optim_wrapper, not at its top level')
        if not optim_wrapper_cfg:
            raise ValueError('MultiOptimWrapperConstructor: optim_wrapper names no submodule')
        self.cfgs = {name: dict(cfg) for name, cfg in optim_wrapper_cfg.items()}

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        children = dict(model.named_children())
        wrappers = {}
        for name, cfg in self.cfgs.items():
            if name not in children:
                raise KeyError(f'optim_wrapper names submodule {name!r} that {type(model).__name__} '
                               f'does not have: its submodules are {", ".join(children)}')
            paramwise = cfg.pop('paramwise_cfg', None)
            cfg.setdefault('type', 'OptimWrapper')
            wrappers[name] = DefaultOptimWrapperConstructor(cfg, paramwise)(children[name])
        return OptimWrapperDict(**wrappers)

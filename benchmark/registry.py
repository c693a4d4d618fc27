"""Registries of the suite, children of mmaction2's (which are children of MMEngine's).

Every component is found by its ``type=`` name in a config. The suite's scope is
``benchmark``; a name not registered here is looked up in mmaction2 and then MMEngine,
so ``dict(type='Recognizer3D')`` and ``dict(type='VPSynthSource')`` both resolve.

``ANONYMIZERS`` has no parent: an anonymizer is the thing being benchmarked, and the
list of them (``bench ls methods``) must hold exactly the suite's methods.
"""
from __future__ import annotations

import difflib

from mmaction import registry as mmaction_registry
from mmengine.registry import Registry

_SCOPE = 'benchmark'


def _child(name: str, parent: Registry, locations: list[str]) -> Registry:
    return Registry(name, parent=parent, scope=_SCOPE, locations=locations)


MODELS = _child('model', mmaction_registry.MODELS,
                ['benchmark.data', 'benchmark.anonymizer', 'raprivacy'])
DATASETS = _child('dataset', mmaction_registry.DATASETS, ['benchmark.datasets'])
TRANSFORMS = _child('transform', mmaction_registry.TRANSFORMS, ['benchmark.datasets'])
DATA_SAMPLERS = _child('data sampler', mmaction_registry.DATA_SAMPLERS, [])
METRICS = _child('metric', mmaction_registry.METRICS, ['benchmark.metrics'])
EVALUATOR = _child('evaluator', mmaction_registry.EVALUATOR, [])
HOOKS = _child('hook', mmaction_registry.HOOKS, ['benchmark.tracking'])
LOOPS = _child('loop', mmaction_registry.LOOPS, [])
OPTIMIZERS = _child('optimizer', mmaction_registry.OPTIMIZERS, [])
OPTIM_WRAPPERS = _child('optim_wrapper', mmaction_registry.OPTIM_WRAPPERS, [])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    mmaction_registry.OPTIM_WRAPPER_CONSTRUCTORS, ['raprivacy'])
PARAM_SCHEDULERS = _child('parameter scheduler', mmaction_registry.PARAM_SCHEDULERS, [])
LOG_PROCESSORS = _child('log_processor', mmaction_registry.LOG_PROCESSORS, [])
VISBACKENDS = _child('vis_backend', mmaction_registry.VISBACKENDS, [])
VISUALIZERS = _child('visualizer', mmaction_registry.VISUALIZERS, [])
RUNNERS = _child('runner', mmaction_registry.RUNNERS, [])
WEIGHT_INITIALIZERS = _child('weight initializer', mmaction_registry.WEIGHT_INITIALIZERS, [])

ANONYMIZERS = Registry('anonymizer', scope=_SCOPE,
                       locations=['baselines', 'raprivacy'])


class UnknownNameError(KeyError):
    """A name that is not registered; the message names the closest valid ones."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the plain sentence
        return str(self.args[0])


def closest(name: str, valid: list[str] | tuple[str, ...], kind: str,
            show_valid: bool = True) -> str:
    """One-line message for an unknown ``name`` among ``valid``, with near misses."""
    valid = sorted(valid)
    near = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(n) for n in near)}?" if near else 'no close match.'
    listing = f" valid {kind}s: {', '.join(valid)}" if show_valid else ''
    return f"unknown {kind} {name!r}: {hint}{listing}"


def import_all() -> None:
    """Import every module that registers components, so registries are complete."""
    for reg in (MODELS, DATASETS, METRICS, HOOKS, ANONYMIZERS):
        reg.import_from_location()
    mmaction_registry.MODELS.import_from_location()
    mmaction_registry.DATASETS.import_from_location()

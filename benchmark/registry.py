"""Registries of the suite, children of mmaction2's (which are children of MMEngine's).

Every component is found by its ``type=`` name in a config. The suite's scope is
``benchmark``; a name not registered here is looked up in mmaction2 and then MMEngine,
so ``dict(type='Recognizer3D')`` and ``dict(type='VPSynthSource')`` both resolve.

``ANONYMIZERS`` has no parent: an anonymizer is the thing being benchmarked, and the
list of them (``bench ls methods``) must hold exactly the suite's methods.
"""
from __future__ import annotations

from mmaction import registry as mmaction_registry
from mmengine.registry import Registry

from benchmark.errors import UnknownNameError, closest  # noqa: F401 (re-exported)

_SCOPE = 'benchmark'


def _child(name: str, parent: Registry, locations: list[str]) -> Registry:
    return Registry(name, parent=parent, scope=_SCOPE, locations=locations)


MODELS = _child('model', mmaction_registry.MODELS,
                ['benchmark.data', 'benchmark.anonymizer', 'raprivacy', 'baselines'])
DATASETS = _child('dataset', mmaction_registry.DATASETS, ['benchmark.datasets'])
TRANSFORMS = _child('transform', mmaction_registry.TRANSFORMS, ['benchmark.datasets'])
DATA_SAMPLERS = _child('data sampler', mmaction_registry.DATA_SAMPLERS, [])
METRICS = _child('metric', mmaction_registry.METRICS, ['benchmark.metrics'])
EVALUATOR = _child('evaluator', mmaction_registry.EVALUATOR, [])
HOOKS = _child('hook', mmaction_registry.HOOKS, ['benchmark.tracking', 'benchmark.checkpoints', 'benchmark.amp',
                                                'benchmark.runner', 'benchmark.target_pretrain'])
LOOPS = _child('loop', mmaction_registry.LOOPS, [])
OPTIMIZERS = _child('optimizer', mmaction_registry.OPTIMIZERS, [])
OPTIM_WRAPPERS = _child('optim_wrapper', mmaction_registry.OPTIM_WRAPPERS, ['benchmark.amp'])
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


def import_all() -> None:
    """Import every module that registers components, so registries are complete."""
    for reg in (MODELS, DATASETS, METRICS, HOOKS, ANONYMIZERS):
        reg.import_from_location()
    mmaction_registry.MODELS.import_from_location()
    mmaction_registry.DATASETS.import_from_location()


OWN_PACKAGES = ('benchmark', 'baselines', 'raprivacy')


def constructor_arguments(name: str) -> list[str] | None:
    """The keyword arguments of the component registered as ``name`` in any of the suite's
    registries (or their parents); None when it is not found or takes any keyword.

    The ``**kwargs`` of the suite's own constructors are followed up the class's bases, since
    they pass them on to ``super().__init__``: a model's ``**schedule`` takes
    ``AdversarialModel``'s arguments, not any keyword. Another package's ``**kwargs`` is taken
    at its word (None)."""
    import inspect

    from torch import nn

    from raprivacy.styles import STYLE_SETS
    import_all()
    registries = [r for r in globals().values() if isinstance(r, Registry)] + [STYLE_SETS]
    cls = next((c for c in (r.get(name) for r in registries) if c is not None), None)
    if cls is None:
        return None
    if not inspect.isclass(cls):
        parameters = inspect.signature(cls).parameters.values()
        if any(p.kind is p.VAR_KEYWORD for p in parameters):
            return None
        return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    arguments: list[str] = []
    given_first, given = 0, set()  # what the class below passes to this one's __init__ itself
    for klass in cls.__mro__:
        if klass in (object, nn.Module):
            break  # they take no keyword
        if '__init__' not in klass.__dict__:
            continue
        init = klass.__dict__['__init__']
        parameters = list(inspect.signature(init).parameters.values())[1:]
        positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
        given |= set(positional[:given_first])
        arguments += [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                      and p.name not in arguments and p.name not in given]
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
        if klass.__module__.split('.')[0] not in OWN_PACKAGES:
            return None
        given_first, keywords = _super_init_call(init)
        given |= keywords
    return arguments


def _super_init_call(init) -> tuple[int, set[str]]:
    """How many positional arguments and which keywords ``init`` passes to
    ``super().__init__`` itself (a subclass fixing its base's ``branches``, ``chance``)."""
    import ast
    import inspect
    import textwrap
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return 0, set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == '__init__' and isinstance(node.func.value, ast.Call)
                and getattr(node.func.value.func, 'id', None) == 'super'):
            return (sum(not isinstance(a, ast.Starred) for a in node.args),
                    {k.arg for k in node.keywords if k.arg})
    return 0, set()

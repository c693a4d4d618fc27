"""Compose a run's config from its layers: runtime, dataset, profile, method, overrides.

``resolve_config('raw', 'vp_synth', 'cpu')`` merges, in order:

1. ``configs/_base_/default_runtime.py``
2. ``configs/_base_/datasets/<dataset>.py`` (``dataset``; for a transfer run also
   ``fit_dataset`` from ``--train-dataset``)
3. ``configs/_base_/profiles/<profile>.py`` (target models, clip size, schedule)
4. ``configs/methods/<method>.py`` (``anonymizer``, and ``fit`` for learning methods)
5. the ``profiles[<profile>]`` entries of the dataset and method layers (what a profile
   changes for that dataset or method only)
6. ``--cfg-options key=value`` from the command line, except the keys that name the run
   (``IDENTITY_KEYS``: method, profile, seed, variant, dataset names), which only their own
   flags set.

Every layer is a plain MMEngine config file; a profile is a layer, never a code path.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import Bound, ConfigError, ProtocolError, UnknownNameError, closest, near_misses

if TYPE_CHECKING:
    from mmengine.config import Config

# mmengine (with mmaction2 and torch behind it, ~1.5 s) is imported where a config is built,
# so that listing names (`bench ls`, `bench report`) stays fast.

CONFIG_DIR = Path(__file__).resolve().parent / 'configs'
BASE_DIR = CONFIG_DIR / '_base_'


def _names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob('*.py') if not p.stem.startswith('_'))


def available_methods() -> list[str]:
    return _names(CONFIG_DIR / 'methods')


def available_datasets() -> list[str]:
    return _names(BASE_DIR / 'datasets')


def available_profiles() -> list[str]:
    return _names(BASE_DIR / 'profiles')


def _layer(folder: Path, name: str, kind: str, valid: list[str]) -> Config:
    if name not in valid:
        raise UnknownNameError(closest(name, valid, kind))
    from mmengine.config import Config
    return Config.fromfile(str(folder / f'{name}.py'))


def _merge(cfg: Config, layer: Config | dict) -> None:
    cfg.merge_from_dict(layer.to_dict() if hasattr(layer, 'to_dict') else dict(layer))


def _drop_private(d):
    if isinstance(d, dict):
        return {k: _drop_private(v) for k, v in d.items() if not str(k).startswith('_')}
    if isinstance(d, (list, tuple)):
        return type(d)(_drop_private(v) for v in d)
    return d


def _valid_keys(d: dict, prefix: str = '') -> list[str]:
    keys = []
    for k, v in d.items():
        keys.append(prefix + k)
        if isinstance(v, dict):
            keys.extend(_valid_keys(v, prefix + k + '.'))
    return keys


#: Keys that name a run (its folder, its MLflow run, its table row), with the flag that sets each.
IDENTITY_KEYS = {'method': '--method', 'profile': '--profile', 'seed': '--seed or --seeds',
                 'variant': 'bench sweep --grid', 'dataset.name': '--dataset',
                 'fit_dataset': '--train-dataset', 'fit_dataset.name': '--train-dataset'}


def _dotted(key: str, value) -> list[str]:
    """``dataset={'name': x}`` -> ``['dataset.name']``: the keys an override sets."""
    if isinstance(value, dict) and value:
        return [k for sub, v in value.items() for k in _dotted(f'{key}.{sub}', v)]
    return [key]


def check_identity(options: dict) -> None:
    """Refuse ``--cfg-options`` that would rename the run: its folder and its row follow the name."""
    for key, value in options.items():
        for dotted in _dotted(key, value):
            named = next((k for k in IDENTITY_KEYS if dotted == k or k.startswith(dotted + '.')), None)
            if named:
                raise ProtocolError(f'--cfg-options {key}: {named} names the run (its folder, its MLflow '
                                    f'run, its table row); set it with {IDENTITY_KEYS[named]} instead')


def _node(tree: dict, dotted: str):
    """The value at a dotted key of a nested dict; None where the path does not exist."""
    node = tree
    for part in dotted.split('.') if dotted else []:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def check_overrides(cfg: Config, options: dict) -> None:
    """Refuse ``--cfg-options`` keys that change nothing the config has.

    A new key is allowed only inside an existing component dict (one with ``type``), where it
    becomes a constructor argument, and only when that constructor takes it; anything else is
    a typo and gets a near-miss message.
    """
    tree = cfg.to_dict()
    valid = _valid_keys(tree)
    hint = (f' (`bench config --method {cfg.method} --dataset {cfg.dataset.name} --profile '
            f'{cfg.profile}` prints every key)')
    for key in options:
        if key in valid:
            continue
        parent, _, argument = key.rpartition('.')
        component = _node(tree, parent) if parent else None
        if not (isinstance(component, dict) and 'type' in component):
            raise UnknownNameError(closest(key, valid, 'config key', show_valid=False) + hint)
        from benchmark.registry import constructor_arguments
        arguments = constructor_arguments(component['type'])
        if arguments is None or argument in arguments:
            continue  # a constructor that takes any keyword judges the value itself
        if argument == 'data_root':
            raise ConfigError(_no_data_root(tree, parent))
        raise UnknownNameError(f'unknown config key {key!r}: {near_misses(argument, arguments)} '
                               f'({component["type"]} takes {", ".join(arguments) or "nothing"})')


def _no_data_root(tree: dict, source_key: str) -> str:
    """Why a dataset refuses a data root, and which datasets take one."""
    from mmengine.config import Config
    name = _node(tree, source_key.rpartition('.')[0] + '.name')
    real = [d for d in available_datasets()
            if 'data_root' in Config.fromfile(str(BASE_DIR / 'datasets' / f'{d}.py')).dataset.source]
    flag = '--train-data-root' if source_key.startswith('fit_dataset') else '--data-root'
    return (f'{flag}: {name} takes no data root (it is generated on first use); '
            f'a data root is for {", ".join(real)}')


# Values the protocol reads from the config (its schedules, clips and fit): checked when a config
# is resolved, so a bad `--cfg-options` value is one line before anything is built. Parameters
# of components (anonymizers, datasets, models) are checked by their own constructors.
_BOUNDS = {
    'sample_videos': Bound(int, 1),
    'log_interval': Bound(int, 1),
    'clip.clip_len': Bound(int, 1),
    'clip.crop_size': Bound(int, 1),
    'clip.num_clips': Bound(int, 1),
    'clip.num_crops': Bound(int, 1),
    'clip.resize_short': Bound(int, 1, optional=True),
    'dataset.clip.frame_interval': Bound(int, 1),
    'target_schedule.max_epochs': Bound(int, 1),
    'target_schedule.batch_size': Bound(int, 1),
    'target_schedule.lr': Bound(float, 0, strict=True),
    'target_schedule.weight_decay': Bound(float, 0),
    'target_schedule.warmup_epochs': Bound(int, 0),
    'target_schedule.num_workers': Bound(int, 0),
    'target_schedule.checkpoint_interval': Bound(int, 1),
    'target_pretrain.max_epochs': Bound(int, 1),
    'target_pretrain.batch_size': Bound(int, 1),
    'target_pretrain.lr': Bound(float, 0, strict=True),
    'target_pretrain.weight_decay': Bound(float, 0),
    'target_pretrain.warmup_epochs': Bound(int, 0),
    'target_pretrain.seed': Bound(int, 0),
    'privacy_pretrain.max_epochs': Bound(int, 1),
    'privacy_pretrain.batch_size': Bound(int, 1),
    'privacy_pretrain.lr': Bound(float, 0, strict=True),
    'privacy_pretrain.weight_decay': Bound(float, 0),
    'privacy_pretrain.warmup_epochs': Bound(int, 0),
    'privacy_pretrain.seed': Bound(int, 0),
    'fit.max_iters': Bound(int, 1),
    'fit.batch_size': Bound(int, 1),
    'fit.clip_len': Bound(int, 1, optional=True),
    'fit.num_workers': Bound(int, 0),
    'fit.checkpoint_interval': Bound(int, 1),
}


def check_values(cfg: Config) -> None:
    """Refuse a schedule, clip or fit value of the wrong type or out of range (ConfigError)."""
    tree = cfg.to_dict()
    for key, bound in _BOUNDS.items():
        parent, _, leaf = key.rpartition('.')
        node = _node(tree, parent)
        if not isinstance(node, dict) or leaf not in node:
            continue  # e.g. fit of a fixed method
        bound.check(key, node[leaf])


def resolve_config(method: str, dataset: str, profile: str = 'cpu',
                   train_dataset: str | None = None, options: dict | None = None,
                   seed: int = 0, variant: str = '') -> Config:
    """The full, resolved config of one run (see the module docstring for the order).

    ``variant`` names a point of a sweep (``bench sweep``): the run is then reported as the
    method ``<method>@<variant>`` beside the method itself.
    """
    from mmengine.config import Config
    methods, datasets, profiles = available_methods(), available_datasets(), available_profiles()
    cfg = Config.fromfile(str(BASE_DIR / 'default_runtime.py'))
    data_layer = _layer(BASE_DIR / 'datasets', dataset, 'dataset', datasets)
    fit_layer = (_layer(BASE_DIR / 'datasets', train_dataset, 'dataset', datasets)
                 if train_dataset and train_dataset != dataset else None)
    profile_layer = _layer(BASE_DIR / 'profiles', profile, 'profile', profiles)
    method_layer = _layer(CONFIG_DIR / 'methods', method, 'method', methods)

    _merge(cfg, data_layer)
    _merge(cfg, profile_layer)
    _merge(cfg, method_layer)
    for layer in (data_layer, method_layer):
        per_profile = layer.to_dict().get('profiles', {}).get(profile)
        if per_profile:
            _merge(cfg, per_profile)
    # fit_dataset: where the anonymizer is fitted; None means the evaluation dataset.
    fit_dataset = None
    if fit_layer is not None:
        fit_cfg = Config(dict(dataset=fit_layer.to_dict()['dataset']))
        per_profile = fit_layer.to_dict().get('profiles', {}).get(profile)
        if per_profile and 'dataset' in per_profile:
            fit_cfg.merge_from_dict(dict(dataset=per_profile['dataset']))
        fit_dataset = fit_cfg.to_dict()['dataset']
    cfg.merge_from_dict(dict(method=method, profile=profile, seed=seed, variant=variant))
    clean = _drop_private(cfg.to_dict())
    clean.pop('profiles', None)
    clean['fit_dataset'] = fit_dataset
    clean.setdefault('fit', None)
    cfg = Config(clean)
    if options:
        check_identity(options)
        check_overrides(cfg, options)
        cfg.merge_from_dict(options)
    check_values(cfg)
    return cfg


#: Config keys (dotted for nested ones) that change what a run keeps or how fast it computes, not
#: what it computes: left out of its hash. ``compile`` and the memory layouts, like the thread
#: count, may move the last bits of a float (``tests/raprivacy/test_fast_path.py`` bounds it); the
#: run records them among its params.
UNHASHED_KEYS = ('keep_checkpoints', 'compile', 'anonymizer.channels_last', 'fit.model.channels_last_3d')
# keys whose value here computes what their absence does: left out of the hash at that value, so
# that listing them in a method's config does not orphan the runs made before they were listed
NEUTRAL_VALUES = {'fit.model.loss_weights.outline': 0.0}


def _without(d: dict, dotted: str) -> dict:
    head, _, rest = dotted.partition('.')
    if head not in d:
        return d
    if not rest:
        return {k: v for k, v in d.items() if k != head}
    if not isinstance(d[head], dict):
        return d
    return {**d, head: _without(d[head], rest)}


def config_hash(cfg: Config) -> str:
    """Stable hash of what a run computes (seed included), for resume and caching."""
    computed = cfg.to_dict()
    for key in UNHASHED_KEYS:
        computed = _without(computed, key)
    for key, neutral in NEUTRAL_VALUES.items():
        if _node(computed, key) == neutral:
            computed = _without(computed, key)
    text = json.dumps(_jsonable(computed), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _jsonable(d):
    if isinstance(d, dict):  # mmengine's ConfigDict is a dict
        return {str(k): _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    return d


def flatten(d: dict, prefix: str = '') -> dict[str, str]:
    """Dotted keys to string values, for MLflow params."""
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f'{prefix}{k}'
        if isinstance(v, dict):
            out.update(flatten(v, key + '.'))
        else:
            out[key] = json.dumps(_jsonable(v)) if isinstance(v, (list, tuple)) else str(v)
    return out

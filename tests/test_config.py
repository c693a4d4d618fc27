"""Config resolution: every (method, dataset, profile) resolves; layers apply in order."""
import pytest

from benchmark.config import (available_datasets, available_methods, available_profiles,
                              config_hash, resolve_config)
from benchmark.errors import ProtocolError
from benchmark.registry import UnknownNameError


@pytest.mark.parametrize('profile', available_profiles())
@pytest.mark.parametrize('dataset', available_datasets())
@pytest.mark.parametrize('method', available_methods())
def test_every_combination_resolves(method, dataset, profile):
    cfg = resolve_config(method, dataset, profile)
    assert cfg.method == method and cfg.profile == profile
    assert cfg.dataset['name'] == dataset
    assert cfg.anonymizer['type']
    for key in ('clip_len', 'crop_size', 'num_clips', 'num_crops'):
        assert cfg.clip[key] > 0
    assert cfg.action_model['cls_head']['num_classes'] is None  # filled from the data
    assert not [k for k in cfg.keys() if k.startswith('_')]


def test_paper_profile_has_the_papers_settings():
    cfg = resolve_config('raw', 'vp_synth', 'paper')
    assert cfg.clip.clip_len == 16 and cfg.clip.crop_size == 112
    assert cfg.clip.num_clips == 5 and cfg.clip.num_crops == 3
    assert cfg.action_model['backbone']['type'] == 'VisionTransformer'
    assert cfg.action_model['backbone']['embed_dims'] == 384
    assert cfg.privacy_model['backbone']['type'] == 'VisionTransformer'
    sched = cfg.target_schedule
    assert sched.weight_decay == 0.05
    assert sched.lr == pytest.approx(1e-3 * sched.batch_size / 512)


def test_profile_layer_of_the_dataset_applies():
    assert resolve_config('raw', 'vp_synth', 'cpu').dataset.source['size'] == 64
    assert resolve_config('raw', 'vp_synth', 'smoke').dataset.source['size'] == 32


def test_overrides_apply_last_and_change_the_hash():
    base = resolve_config('raw', 'vp_synth', 'cpu')
    cfg = resolve_config('raw', 'vp_synth', 'cpu', options={'target_schedule.max_epochs': 2})
    assert cfg.target_schedule.max_epochs == 2
    assert config_hash(cfg) != config_hash(base)
    assert config_hash(resolve_config('raw', 'vp_synth', 'cpu')) == config_hash(base)


def test_transfer_fits_on_the_train_dataset():
    cfg = resolve_config('raw', 'vp_synth_b', 'cpu', train_dataset='vp_synth')
    assert cfg.fit_dataset['name'] == 'vp_synth' and cfg.dataset.name == 'vp_synth_b'
    assert cfg.fit_dataset['source']['size'] == 64  # the profile applies to both
    assert resolve_config('raw', 'vp_synth', 'cpu').fit_dataset is None


@pytest.mark.parametrize('kwargs, near', [
    (dict(method='blackenning', dataset='vp_synth', profile='cpu'), 'blackening'),
    (dict(method='raw', dataset='vp_synt', profile='cpu'), 'vp_synth'),
    (dict(method='raw', dataset='vp_synth', profile='cpus'), 'cpu'),
    (dict(method='raw', dataset='vp_synth', profile='cpu',
          options={'target_schedule.max_epoch': 1}), 'target_schedule.max_epochs'),
])
def test_unknown_names_get_one_line_near_misses(kwargs, near):
    with pytest.raises(UnknownNameError) as err:
        resolve_config(**kwargs)
    assert f"did you mean '{near}'" in str(err.value)
    assert '\n' not in str(err.value)


def test_new_constructor_argument_is_allowed_inside_a_component():
    cfg = resolve_config('strong_blur', 'vp_synth', 'cpu', options={'anonymizer.sigma': 3.0})
    assert cfg.anonymizer.sigma == 3.0
    cfg = resolve_config('raw', 'vp_synth', 'cpu', options={'dataset.source.correlation': 0.5})
    assert cfg.dataset.source.correlation == 0.5  # not in the config, but VPSynthSource takes it
    # a learned model's **schedule is AdversarialModel's arguments (SPAct's through two classes)
    for method in ('raprivacy', 'spact'):
        cfg = resolve_config(method, 'vp_synth', 'smoke', options={'fit.model.branch_steps': 2})
        assert cfg.fit.model.branch_steps == 2


@pytest.mark.parametrize('method, key, near', [
    ('strong_blur', 'anonymizer.sigmaa', "did you mean 'sigma'? (RegionBlur takes sigma, dilate, name)"),
    ('raprivacy', 'anonymizer.style_set.sise', "did you mean 'size'"),
    ('raw', 'dataset.source.train_per_clas', "did you mean 'train_per_class'"),
    ('raprivacy', 'fit.model.branch_step', "did you mean 'branch_steps'"),
    ('raprivacy', 'fit.model.outline_detial', "did you mean 'outline_detail'"),
    ('spact', 'fit.model.anonymiser_start_iter', "did you mean 'anonymizer_start_iter'"),
])
def test_a_new_key_inside_a_component_must_be_a_constructor_argument(method, key, near):
    with pytest.raises(UnknownNameError) as err:
        resolve_config(method, 'vp_synth', 'smoke', options={key: 1})
    assert near in str(err.value) and '\n' not in str(err.value)


def test_a_data_root_for_a_generated_dataset_is_refused():
    from benchmark.errors import ConfigError
    with pytest.raises(ConfigError, match='vp_synth takes no data root .* vp_hmdb51, vp_ucf101'):
        resolve_config('raw', 'vp_synth', 'smoke', options={'dataset.source.data_root': '/x'})
    with pytest.raises(ConfigError, match='--train-data-root: vp_synth takes no data root'):
        resolve_config('raw', 'vp_synth_b', 'smoke', train_dataset='vp_synth',
                       options={'fit_dataset.source.data_root': '/x'})


@pytest.mark.parametrize('key, value', [
    ('target_schedule.max_epochs', 0), ('target_schedule.max_epochs', 'abc'),
    ('target_schedule.batch_size', 2.0), ('target_schedule.lr', -1e-3),
    ('target_schedule.weight_decay', -0.1), ('target_schedule.num_workers', -1),
    ('clip.clip_len', 0), ('clip.num_crops', None), ('sample_videos', 0),
    ('dataset.clip.frame_interval', 0), ('target_pretrain.max_epochs', 0),
    ('target_pretrain.lr', 0.0),
])
def test_schedule_and_clip_values_out_of_range_are_refused(key, value):
    from benchmark.errors import ConfigError
    with pytest.raises(ConfigError) as err:
        resolve_config('raw', 'vp_synth', 'smoke', options={key: value})
    assert str(err.value).startswith(f'{key}={value!r}') and '\n' not in str(err.value)


def test_a_learning_methods_fit_values_are_checked_too():
    from benchmark.errors import ConfigError
    with pytest.raises(ConfigError, match='fit.max_iters=0: it must be an integer >= 1'):
        resolve_config('raprivacy', 'vp_synth', 'smoke', options={'fit.max_iters': 0})
    cfg = resolve_config('raprivacy', 'vp_synth', 'smoke', options={'clip.resize_short': None})
    assert cfg.clip.resize_short is None  # None where the config allows it


@pytest.mark.parametrize('profile', available_profiles())
@pytest.mark.parametrize('dataset', ['vp_synth', 'vp_synth_b'])
def test_the_embedded_data_of_every_profile_can_be_generated(dataset, profile):
    import inspect
    from benchmark.datasets.vp_synth import VPSynthSource, check_settings
    source = dict(resolve_config('raw', dataset, profile).dataset.source)
    # domain b has a type of its own (its own data version), with VPSynthSource's arguments
    assert source.pop('type') == {'vp_synth': 'VPSynthSource', 'vp_synth_b': 'VPSynthBSource'}[dataset]
    for split in ('train', 'test'):
        # the source's own defaults fill what the config leaves out
        args = inspect.signature(VPSynthSource).bind(split=split, **source)
        args.apply_defaults()
        a = args.arguments
        check_settings(split, a['domain'], a['size'], a['num_frames'], a[f'{split}_per_class'],
                       a['privacy_rates'], a['correlation'])


@pytest.mark.parametrize('key, value, flag', [
    ('profile', 'paper', '--profile'), ('method', 'depth', '--method'), ('seed', '/..', '--seed'),
    ('dataset.name', '..', '--dataset'), ('variant', 'x', 'bench sweep --grid'),
    ('fit_dataset', {'name': 'vp_synth_b'}, '--train-dataset'),
    ('fit_dataset.name', 'vp_synth_b', '--train-dataset'),
    ('dataset', {'name': 'vp_ucf101'}, '--dataset'), ('dataset', 'elsewhere', '--dataset')])
def test_cfg_options_cannot_rename_the_run(key, value, flag):
    """Identity keys name the run's folder and table row: only their own flags set them."""
    with pytest.raises(ProtocolError) as err:
        resolve_config('raw', 'vp_synth', 'smoke', options={key: value})
    message = str(err.value)
    assert '\n' not in message and key in message and flag in message


def test_cfg_options_still_set_everything_else_of_a_dataset():
    cfg = resolve_config('raw', 'vp_synth', 'smoke', options={'dataset.source.size': 40})
    assert cfg.dataset.source['size'] == 40 and cfg.dataset.name == 'vp_synth'
    cfg = resolve_config('raw', 'vp_synth', 'smoke', options={'dataset': {'clip': {'frame_interval': 3}}})
    assert cfg.dataset.clip['frame_interval'] == 3 and cfg.dataset.name == 'vp_synth'


def test_a_run_folder_outside_the_work_dir_is_refused(tmp_path):
    from benchmark.protocol import run_folder
    cfg = resolve_config('raw', 'vp_synth', 'smoke', seed=3)
    assert run_folder(tmp_path, cfg) == tmp_path / 'vp_synth' / 'raw' / 'smoke' / 'seed3'
    for name in ('../../..', '/etc'):
        cfg.dataset.name = name  # what --cfg-options no longer allows, made by hand
        with pytest.raises(ProtocolError, match='is not inside --work-dir'):
            run_folder(tmp_path, cfg)


def test_keep_checkpoints_does_not_change_the_config_hash():
    cfg = resolve_config('raw', 'vp_synth', 'smoke')
    assert cfg.keep_checkpoints is False
    kept = resolve_config('raw', 'vp_synth', 'smoke', options={'keep_checkpoints': True})
    assert config_hash(kept) == config_hash(cfg)


def test_memory_layouts_do_not_change_the_config_hash_but_the_computation_does():
    """The layouts change how fast a run computes, not what: a run stored before the cpu profile
    turned them on keeps its hash (and resumes); a key beside them still counts."""
    cfg = resolve_config('raprivacy', 'vp_synth', 'cpu')
    assert cfg.anonymizer.channels_last is True and cfg.fit.model.channels_last_3d is True
    nchw = resolve_config('raprivacy', 'vp_synth', 'cpu', options={'anonymizer.channels_last': False,
                                                                   'fit.model.channels_last_3d': False})
    assert config_hash(nchw) == config_hash(cfg)
    for key in ('channels_last', 'channels_last_3d'):  # as configs without the keys hash
        (nchw.anonymizer if key == 'channels_last' else nchw.fit.model).pop(key)
    assert config_hash(nchw) == config_hash(cfg)
    other = resolve_config('raprivacy', 'vp_synth', 'cpu', options={'anonymizer.scale': 1})
    assert config_hash(other) != config_hash(cfg)


def test_raprivacy_outline_term_is_listed_off_without_orphaning_the_runs_made_before_it():
    """``loss_weights.outline`` at 0 computes what a config without it did: runs stored before
    it was listed keep their hash and resume; any other weight, or its pooling, is a new run."""
    cfg = resolve_config('raprivacy', 'vp_synth', 'cpu')
    assert cfg.fit.model.loss_weights.outline == 0.0
    before = resolve_config('raprivacy', 'vp_synth', 'cpu')
    before.fit.model.loss_weights.pop('outline')
    assert config_hash(before) == config_hash(cfg)
    on = resolve_config('raprivacy', 'vp_synth', 'cpu', options={'fit.model.loss_weights.outline': 1e4})
    pooled = resolve_config('raprivacy', 'vp_synth', 'cpu', options={'fit.model.loss_weights.outline': 1e4,
                                                                     'fit.model.outline_pool': 1})
    assert len({config_hash(cfg), config_hash(on), config_hash(pooled)}) == 3

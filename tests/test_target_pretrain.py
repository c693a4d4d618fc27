"""The target models' pretrained starts: their corpus, their cache and how a stage loads them."""
import hashlib
import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark import target_pretrain
from benchmark.cli import main
from benchmark.config import resolve_config
from benchmark.datasets.vp_synth import VPSynthSource
from benchmark.errors import ProtocolError
from benchmark.registry import MODELS, import_all
from benchmark.runner import init_weights_quietly
from benchmark.target_pretrain import PretrainedBackboneHook, pretrained_backbone

SMOKE_DATA = dict(size=32, num_frames=16, train_per_class=4, test_per_class=2)


def test_pretrain_split_holds_other_videos_of_the_same_actions():
    pretrain = VPSynthSource(split='pretrain', **SMOKE_DATA)
    train = VPSynthSource(split='train', **SMOKE_DATA)
    test = VPSynthSource(split='test', **SMOKE_DATA)
    assert len(pretrain) == len(train) == 40  # as many videos as train
    assert sorted({pretrain.action(i) for i in range(len(pretrain))}) == list(range(10))
    first = lambda s, i: s.read(i, [0])[..., :3]  # noqa: E731
    for other in (train, test):
        for i in range(len(other)):
            for j in range(len(pretrain)):
                assert not np.array_equal(first(pretrain, j), first(other, i))


def _smoke_cfg(section='target_pretrain', **pretrain):
    import_all()
    options = {f'{section}.{k}': v for k, v in pretrain.items()}
    return resolve_config('raw', 'vp_synth', 'smoke', options=options)


def test_the_backbone_is_trained_once_then_read_from_the_cache(monkeypatch):
    cfg = _smoke_cfg(seed=11)
    first = pretrained_backbone(cfg)
    assert first['trained'] and first['seconds'] > 0
    digest = hashlib.sha256(open(first['path'], 'rb').read()).hexdigest()
    assert first['sha256'] == digest

    def refuse(*args, **kwargs):
        raise AssertionError('trained twice')
    monkeypatch.setattr(target_pretrain, 'train_backbone', refuse)
    again = pretrained_backbone(cfg)
    assert not again['trained'] and again['path'] == first['path'] and again['sha256'] == digest
    # another schedule is another backbone
    with pytest.raises(AssertionError, match='trained twice'):
        pretrained_backbone(_smoke_cfg(seed=12))


def test_a_pretraining_that_never_leaves_chance_is_refused():
    cfg = _smoke_cfg(seed=13, check_left_chance=True)  # one epoch of 5 iterations: still at chance
    with pytest.raises(ProtocolError, match='never left chance'):
        pretrained_backbone(cfg)


def test_bad_type_and_missing_checkpoint_are_one_line_errors(tmp_path):
    with pytest.raises(ProtocolError, match='target_pretrain.type must be one of'):
        target_pretrain.wanted(_smoke_cfg(type='kinetics'))
    cfg = _smoke_cfg(type='checkpoint', checkpoint=str(tmp_path / 'r3d.pth'))
    with pytest.raises(ProtocolError, match=r"no file .*r3d\.pth"):
        pretrained_backbone(cfg)
    assert not target_pretrain.wanted(_smoke_cfg(type='none'))


def _model(cfg):
    model_cfg = cfg.action_model.to_dict()
    model_cfg['cls_head']['num_classes'] = 10
    model_cfg['data_preprocessor'] = dict(type='ClipPreprocessor')
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('benchmark'):
        model = MODELS.build(model_cfg)
    init_weights_quietly(model)
    return model


def test_weights_init_survives_a_log_file_closed_by_logging_config(tmp_path):
    """MLflow's store setup runs ``logging.config``, which closes every handler, an earlier
    runner's log file among them; MMEngine's init dump must not write into it (CI failed so)."""
    import logging.config

    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance(f'closed-{tmp_path.name}', log_file=str(tmp_path / 'run.log'))
    logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False})
    handler = next(h for h in logger.handlers if isinstance(h, logging.FileHandler))
    assert handler.stream is None  # the situation: the runner's file handler is closed
    model = _model(_smoke_cfg())  # init_weights_quietly inside
    assert handler in logger.handlers  # left as it was found
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_hook_loads_the_backbone_on_a_fresh_stage_only(tmp_path):
    cfg = _smoke_cfg()
    source, target = _model(cfg), _model(cfg)
    path = tmp_path / 'backbone.pth'
    torch.save({'backbone': source.backbone.state_dict()}, path)
    head = target.cls_head.fc_cls.weight.clone()
    hook = PretrainedBackboneHook(str(path))
    resumed = target.backbone.conv1.conv.weight.clone()
    hook.before_train(SimpleNamespace(iter=7, model=target))  # a resumed stage keeps its weights
    assert torch.equal(target.backbone.conv1.conv.weight, resumed)
    hook.before_train(SimpleNamespace(iter=0, model=target))
    for (name, a), b in zip(source.backbone.state_dict().items(), target.backbone.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(target.cls_head.fc_cls.weight, head)  # the head starts fresh


def test_a_backbone_of_another_layout_is_refused_by_name(tmp_path):
    cfg = _smoke_cfg()
    target = _model(cfg)
    path = tmp_path / 'other.pth'
    torch.save({'conv.weight': torch.zeros(3)}, path)
    with pytest.raises(ProtocolError, match=r'other\.pth: does not fit'):
        PretrainedBackboneHook(str(path)).before_train(SimpleNamespace(iter=0, model=target))
    (tmp_path / 'junk.pth').write_bytes(b'not torch')
    with pytest.raises(ProtocolError, match=r'junk\.pth: not a readable'):
        PretrainedBackboneHook(str(tmp_path / 'junk.pth')).before_train(SimpleNamespace(iter=0, model=target))


@pytest.mark.slow
def test_a_run_starts_its_target_models_from_the_pretrained_backbones(tmp_path, monkeypatch):
    """The protocol's action and privacy stages load their cached backbones; the run names them."""
    loaded = []
    real = PretrainedBackboneHook.before_train

    def spy(self, runner):
        real(self, runner)
        loaded.append((self.checkpoint, runner.model.backbone.conv1.conv.weight.detach().clone()))
    monkeypatch.setattr(PretrainedBackboneHook, 'before_train', spy)
    assert main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(tmp_path)]) == 0
    init = pretrained_backbone(_smoke_cfg())
    privacy = pretrained_backbone(_smoke_cfg(), 'privacy')
    # the action stage then the privacy stage, each from its own backbone
    assert [path for path, _ in loaded] == [init['path'], privacy['path']]
    for (_, weight), record in zip(loaded, (init, privacy)):
        state = torch.load(record['path'], weights_only=True)['backbone']
        assert torch.equal(weight, state['conv1.conv.weight'])
    from mlflow.tracking import MlflowClient
    c = MlflowClient(f'sqlite:///{tmp_path / "mlflow.db"}')
    run = c.search_runs([c.get_experiment_by_name('vp_synth').experiment_id],
                        "tags.`bench.kind` = 'parent'")[0]
    assert run.data.tags['bench.action_init'] == init['sha256'][:16]
    # the privacy stage starts from its own backbone (protocol 5), named beside it
    assert run.data.tags['bench.privacy_init'] == privacy['sha256'][:16]
    assert privacy['path'] != init['path']


def _smoke_privacy_cfg(**pretrain):
    return _smoke_cfg('privacy_pretrain', **pretrain)


def test_the_privacy_backbone_is_its_own_file_learnt_on_the_privacy_bits(monkeypatch):
    cfg = _smoke_privacy_cfg(seed=21)
    seen = {}
    real = target_pretrain.train_backbone

    def spy(spec):
        seen['target'] = spec.get('target')
        return real(spec)
    monkeypatch.setattr(target_pretrain, 'train_backbone', spy)
    privacy = pretrained_backbone(cfg, 'privacy')
    assert seen['target'] == 'privacy' and privacy['trained']
    assert '/privacy-VPSynthSource-' in privacy['path']
    state = torch.load(privacy['path'], weights_only=True)
    assert state['score'] == 'bit accuracy' and 0 <= state['final_train_score'] <= 1
    # the privacy model's head (5 bits) is not kept, only its backbone
    assert not any(k.startswith('cls_head') for k in state['backbone'])
    # the action backbone's key is the one protocol 4 cached: no target in its spec
    assert 'target' not in target_pretrain.pretrain_spec(cfg, 'action')
    assert pretrained_backbone(cfg, 'action')['path'] != privacy['path']


def test_the_privacy_loss_of_guessing_is_the_mean_binary_entropy_of_the_rates():
    bits = [(1, 0, 1, 0, 0), (1, 0, 0, 0, 0), (1, 1, 0, 0, 0), (1, 1, 1, 0, 0)]
    fake = type('Src', (), {'classes': list(range(10)), 'privacy': lambda self, i: bits[i],
                            '__len__': lambda self: len(bits)})()
    # rates 1, 0.5, 0.5, 0, 0: entropy 0, ln2, ln2, 0, 0 -> mean 2 ln2 / 5
    assert target_pretrain._chance_loss(fake, 'privacy') == pytest.approx(2 * np.log(2) / 5, abs=1e-5)
    assert target_pretrain._chance_loss(fake, 'action') == pytest.approx(np.log(10))


def test_privacy_pretrain_errors_name_their_section(tmp_path):
    with pytest.raises(ProtocolError, match='privacy_pretrain.type must be one of'):
        target_pretrain.wanted(_smoke_privacy_cfg(type='imagenet'), 'privacy')
    cfg = _smoke_privacy_cfg(type='checkpoint', checkpoint=str(tmp_path / 'r.pth'))
    with pytest.raises(ProtocolError, match=r"privacy_pretrain.checkpoint: no file .*r\.pth"):
        pretrained_backbone(cfg, 'privacy')
    with pytest.raises(ProtocolError, match='privacy pretraining never left chance'):
        pretrained_backbone(_smoke_privacy_cfg(seed=23, check_left_chance=True), 'privacy')


def test_the_backbone_does_not_depend_on_the_callers_thread_count(tmp_path, monkeypatch):
    """On one and on two threads the same recipe gave other weights (CPU kernels split their
    sums by thread): a run on two threads and a sweep worker on one must share one backbone."""
    cfg = _smoke_cfg(seed=14)
    before = torch.get_num_threads()
    files = {}
    try:
        for count in (2, 1):
            monkeypatch.setenv('BENCH_CACHE', str(tmp_path / f'threads{count}'))
            torch.set_num_threads(count)
            record = pretrained_backbone(cfg)
            assert record['trained'] and torch.get_num_threads() == count  # restored after
            files[count] = record
    finally:
        torch.set_num_threads(before)
    assert files[2]['sha256'] == files[1]['sha256']
    one = torch.load(files[1]['path'], weights_only=True)['backbone']
    two = torch.load(files[2]['path'], weights_only=True)['backbone']
    assert all(torch.equal(one[k], two[k]) for k in one)


def _both_cfg(seed: int, **privacy):
    import_all()
    options = {'target_pretrain.seed': seed, 'privacy_pretrain.seed': seed,
               **{f'privacy_pretrain.{k}': v for k, v in privacy.items()}}
    return resolve_config('raw', 'vp_synth', 'smoke', options=options)


@pytest.fixture
def two_threads():
    with target_pretrain.threads(2):
        yield


def test_the_privacy_backbone_trains_beside_the_actions_into_the_same_weights(tmp_path, monkeypatch,
                                                                              two_threads):
    """A first start trains both backbones side by side, each on one thread, in two processes:
    the files are those one process training both one after the other writes."""
    monkeypatch.setattr(target_pretrain, 'BESIDE_MIN_EPOCHS', 1)  # the smoke schedule's one epoch
    cfg = _both_cfg(seed=31)
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path / 'beside'))
    beside = target_pretrain.pretrain_beside(cfg, 'privacy', tmp_path / 'run' / 'privacy_pretrain.log')
    assert beside is not None
    outcome = beside.wait()  # before this process reads the corpus: the process may not make it
    action = pretrained_backbone(cfg, 'action')
    assert outcome['trained'] and outcome['seconds'] > 0 and outcome['pid'] != os.getpid()
    log = beside.log.read_text()
    # the corpus was generated before the process started (a daemon may start no workers)
    assert 'privacy pretraining: 1/1 epoch' in log and 'data vp_synth' not in log
    privacy = pretrained_backbone(cfg, 'privacy')
    assert action['trained'] and not privacy['trained']  # the stage reads what the process wrote
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path / 'one_process'))
    for stage, record in (('action', action), ('privacy', privacy)):
        alone = pretrained_backbone(cfg, stage)
        assert alone['trained'] and alone['sha256'] == record['sha256'], stage


def test_no_process_beside_on_one_thread_a_short_schedule_or_a_cached_backbone(tmp_path, monkeypatch,
                                                                              two_threads):
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path))
    cfg = _both_cfg(seed=32)
    log = tmp_path / 'privacy_pretrain.log'
    assert target_pretrain.pretrain_beside(cfg, 'privacy', log) is None  # one epoch: not worth it
    monkeypatch.setattr(target_pretrain, 'BESIDE_MIN_EPOCHS', 1)
    torch.set_num_threads(1)  # a sweep worker's single thread keeps to its core
    assert target_pretrain.pretrain_beside(cfg, 'privacy', log) is None
    torch.set_num_threads(2)
    import multiprocessing
    daemon = SimpleNamespace(daemon=True)  # a daemon (say, a pool's worker) may start no process
    with monkeypatch.context() as patch:
        patch.setattr(multiprocessing, 'current_process', lambda: daemon)
        assert target_pretrain.pretrain_beside(cfg, 'privacy', log) is None
    pretrained_backbone(cfg, 'action')  # this process would not be training the action's
    assert target_pretrain.pretrain_beside(cfg, 'privacy', log) is None
    assert not log.exists()


def test_a_backbone_that_fails_beside_is_trained_by_its_stage_which_meets_the_error(
        tmp_path, monkeypatch, two_threads):
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path))
    monkeypatch.setattr(target_pretrain, 'BESIDE_MIN_EPOCHS', 1)
    cfg = _both_cfg(seed=33, check_left_chance=True)  # the privacy one never leaves chance
    beside = target_pretrain.pretrain_beside(cfg, 'privacy', tmp_path / 'privacy_pretrain.log')
    pretrained_backbone(cfg, 'action')
    outcome = beside.wait()
    assert outcome == {'error': outcome['error']} and 'never left chance' in outcome['error']
    assert beside.process.exitcode == 1 and 'Traceback' in beside.log.read_text()
    with pytest.raises(ProtocolError, match='privacy pretraining never left chance'):
        pretrained_backbone(cfg, 'privacy')


@pytest.mark.slow
def test_a_first_run_trains_the_privacy_backbone_beside_and_records_its_cost(tmp_path, monkeypatch,
                                                                            two_threads):
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setattr(target_pretrain, 'BESIDE_MIN_EPOCHS', 1)
    work = tmp_path / 'work'
    assert main(['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work)]) == 0
    outcome = json.loads(next(work.rglob('action/privacy_pretrain.json')).read_text())
    assert outcome['trained'] and outcome['pid'] != os.getpid()
    privacy = pretrained_backbone(_smoke_cfg(), 'privacy')
    assert not privacy['trained']
    from mlflow.tracking import MlflowClient
    c = MlflowClient(f'sqlite:///{work / "mlflow.db"}')
    run = c.search_runs([c.get_experiment_by_name('vp_synth').experiment_id],
                        "tags.`bench.kind` = 'parent'")[0]
    assert run.data.tags['bench.privacy_init'] == privacy['sha256'][:16]
    assert run.data.metrics['time_privacy_pretrain_s'] == pytest.approx(outcome['seconds'])
    assert run.data.metrics['time_target_pretrain_s'] > 0  # the action's, in the run's process

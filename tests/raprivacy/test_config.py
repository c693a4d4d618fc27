"""The method config: its paper default and its profiles build a working model."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from benchmark.anonymizer import build_anonymizer
from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.raprivacy.helpers import STYLES, clip_batch

CONFIG = Path(__file__).resolve().parents[2] / 'benchmark' / 'configs' / 'methods' / 'raprivacy.py'


def merged(profile: str | None) -> Config:
    cfg = Config.fromfile(CONFIG)
    if profile:
        cfg.merge_from_dict(cfg.profiles[profile].to_dict())
    return cfg


def test_paper_default_needs_the_weights_file_and_says_which_option():
    cfg = merged(None)
    anonymizer = dict(cfg.anonymizer.to_dict(), style_set=dict(type='ImageStyles', images=STYLES))
    if Path(anonymizer['encoder']['weights']).expanduser().is_file():
        pytest.skip('VGG-19 weights are installed on this machine')
    with pytest.raises(FileNotFoundError, match='anonymizer.encoder.weights'):
        build_anonymizer(anonymizer)


@pytest.mark.parametrize('profile', ['smoke', 'cpu'])
def test_profile_models_train_one_step(profile):
    cfg = merged(profile)
    # the embedded profiles: ImageNet MobileNetV2 weights, never silent random ones
    assert cfg.anonymizer.encoder.to_dict() == dict(type='mobilenet_v2', weights='imagenet')
    # the weights and the VP-Synth styles do not matter here
    anonymizer = dict(cfg.anonymizer.to_dict(), style_set=dict(type='ImageStyles', images=STYLES),
                      encoder=dict(type='mobilenet_v2', weights='random'))
    model_cfg = copy.deepcopy(cfg.fit.model.to_dict())
    model_cfg.update(anonymizer=anonymizer, num_classes=3,
                     data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True))
    model = MODELS.build(model_cfg)
    optim = cfg.fit.optim_wrapper.to_dict()
    optim.pop('constructor')
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=optim))(model)
    model.fit_iter.fill_(max(model.warmup_iters.values()))  # the first adversarial iteration
    log = model.train_step(clip_batch(t=2, size=32), wrappers)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert {'loss_act', 'loss_pri', 'action_acc', 'saturated'} <= set(log)
    assert set(cfg.fit.param_scheduler) == {'anonymizer', 'action_branch', 'privacy_branch'}
    anonymizer_lr = cfg.fit.param_scheduler.anonymizer[0]
    assert (anonymizer_lr.begin, anonymizer_lr.end) == (model.anonymizer_start_iter, cfg.fit.max_iters)
    guard = cfg.fit.model.guard
    assert guard.after_iter <= cfg.fit.max_iters  # the guard gets its say in every profile
    assert guard.after_iter >= max(model.warmup_iters.values()) + guard.window

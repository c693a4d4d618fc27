"""RAPrivacyModel: the two phases of an iteration (Eq. 8, 9) and training under an MMEngine Runner."""
import math

import pytest
import torch
from mmengine.runner import Runner
from torch.utils.data import Dataset

from benchmark.checkpoints import SCHEME, load, resume_checkpoint
from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.raprivacy.helpers import clip_batch, tiny_model_cfg, tiny_optim_cfg


def build(**kwargs):
    model = MODELS.build(tiny_model_cfg(**kwargs))
    cfg = tiny_optim_cfg()
    cfg.pop('constructor')
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=cfg))(model)
    return model, wrappers


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items() if isinstance(v, torch.Tensor)}


def changed(before, module):
    after = snapshot(module)
    return any(not torch.equal(before[k], after[k]) for k in before)


def test_phase1_leaves_the_action_classifier_unchanged_phase2_changes_it():
    torch.manual_seed(0)
    model, wrappers = build()
    data = model.data_preprocessor(clip_batch(), True)
    clips = data['inputs'][:, 0]
    actions, videos = model.labels(data['data_samples'], clips.device)
    style = model.anonymizer.style_index(len(clips), clips.device)
    action0, anon0 = snapshot(model.action_branch), snapshot(model.anonymizer)
    log, first = model.style_phase(clips, style, wrappers)
    assert not changed(action0, model.action_branch)  # weights and BN statistics alike
    assert changed(anon0, model.anonymizer)
    assert torch.isfinite(log['loss_st'])
    anon1, privacy1 = snapshot(model.anonymizer), snapshot(model.privacy_branch)
    log = model.adversarial_phase(clips, style, actions, videos, wrappers, encoded=first)
    assert changed(action0, model.action_branch)
    assert changed(anon1, model.anonymizer)
    assert changed(privacy1, model.privacy_branch)
    assert {'loss_gs', 'loss_lf', 'loss_act', 'loss_pri', 'loss_total'} <= set(log)


def test_classifier_step_uses_l_act_alone():
    # With la = 0 the anonymizer ignores the action loss, yet the classifier still learns from it.
    torch.manual_seed(0)
    model, wrappers = build(loss_weights=dict(action=0.0))
    action0 = snapshot(model.action_branch)
    model.train_step(clip_batch(), wrappers)
    assert changed(action0, model.action_branch)


def test_fixed_privacy_extractor_option():
    torch.manual_seed(0)
    model, wrappers = build(train_privacy=False)
    privacy0 = snapshot(model.privacy_branch)
    model.train_step(clip_batch(), wrappers)
    params = dict(model.privacy_branch.named_parameters())
    assert all(torch.equal(privacy0[k], p) for k, p in params.items())


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(tiny_model_cfg(num_classes=None))
    with pytest.raises(ValueError, match="'contrastive' or 'info_nce'"):
        MODELS.build(tiny_model_cfg(privacy_loss='nce'))
    model, wrappers = build()
    del wrappers.optim_wrappers['action_branch']
    with pytest.raises(KeyError, match='action_branch'):
        model.train_step(clip_batch(), wrappers)


def test_info_nce_option_trains():
    torch.manual_seed(0)
    model, wrappers = build(privacy_loss='info_nce')
    log = model.train_step(clip_batch(), wrappers)
    assert torch.isfinite(log['loss_pri']) and log['loss_pri'] > 0


class TinyClips(Dataset):
    def __init__(self):
        self.batch = clip_batch(actions=(0, 0, 1, 2, 1, 2), videos='abcdef', t=2)

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return dict(inputs=self.batch['inputs'][i], data_samples=self.batch['data_samples'][i])


def make_runner(work_dir, max_iters, resume):
    resume_from = resume_checkpoint(work_dir) if resume else None
    return Runner(
        model=tiny_model_cfg(), work_dir=str(work_dir), default_scope='benchmark',
        train_dataloader=dict(dataset=TinyClips(), batch_size=3, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=tiny_optim_cfg(),
        param_scheduler=[dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=4, T_max=4, eta_min=0.0)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume_from is not None,
        load_from=f'{SCHEME}{resume_from}' if resume_from else None)


def test_runner_trains_and_resumes(tmp_path):
    """Through the protocol's own resume path: the checkpoint (three optimizers, schedulers,
    message hub) loads weights-only through the suite's allow-list."""
    first = make_runner(tmp_path, 2, resume=False)
    first.train()
    assert first.iter == 2 and (tmp_path / 'iter_2.pth').is_file()
    saved = load(tmp_path / 'iter_2.pth', map_location='cpu')
    assert set(saved['optimizer']) == {'anonymizer', 'action_branch', 'privacy_branch'}

    second = make_runner(tmp_path, 4, resume=True)
    second.train()
    assert second.iter == 4 and (tmp_path / 'iter_4.pth').is_file()
    final = load(tmp_path / 'iter_4.pth', map_location='cpu')
    # the cosine schedule continued from iteration 2 rather than restarting (its last step,
    # the 3rd, sets 0.01 * (1 + cos(3 pi / 4)) / 2; a restart would stop at the 1st step's value)
    lr = final['optimizer']['anonymizer']['param_groups'][0]['lr']
    assert lr == pytest.approx(0.01 * (1 + math.cos(3 * math.pi / 4)) / 2)
    assert final['meta']['iter'] == 4
    assert 'anonymizer.style_bank' in final['state_dict']

"""RAPrivacyModel: the sign and route of every term (Eq. 8, 9), the phases, the guard, and
training under an MMEngine Runner."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import Runner
from torch.utils.data import Dataset

from benchmark.checkpoints import SCHEME, load, resume_checkpoint
from benchmark.errors import FitCollapsed
from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.raprivacy.helpers import clip_batch, live, tiny_model_cfg, tiny_optim_cfg
from tests.adversarial_checks import assert_same, grads_of, record_steps

# deterministic apart from the style draw: no dropout, the NT-Xent views are the clips themselves
EXACT = dict(dropout=0.0, views=dict(min_scale=1.0, flip=False))


def build(lr=1e-2, optimizer='AdamW', **kwargs):
    """A tiny model whose output starts near mid-grey, inside [0, 1] (the clamp's own gradient is
    tested apart), with this optimizer for every part."""
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(**kwargs))
    live(model.anonymizer)
    with torch.no_grad():
        model.anonymizer.decoder.stage1[1][0].weight.mul_(0.1)
    cfg = tiny_optim_cfg(lr)
    cfg.pop('constructor')
    for part in cfg.values():
        part['optimizer'] = dict(type=optimizer, lr=lr)
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=cfg))(model)
    return model, wrappers


def replay(model, data, seed):
    """The batch and phase-2 pass of a ``train_step`` run after ``torch.manual_seed(seed)``
    (with lr 0 nothing moved; the style draw is the step's first random number)."""
    torch.manual_seed(seed)
    batch = model.fit_batch(model.data_preprocessor(data, True))
    out, stylized = model.stylize(batch)
    return batch, out, stylized


def trainable(module):
    return [p for p in module.parameters() if p.requires_grad]


def anonymizer_grads(loss, model):
    names = [n for n, p in model.anonymizer.named_parameters() if p.requires_grad]
    return dict(zip(names, torch.autograd.grad(loss, trainable(model.anonymizer))))


@pytest.mark.parametrize('term, privacy_loss', [
    ('global_style', 'ntxent_views'), ('local_feature', 'ntxent_views'), ('outline', 'ntxent_views'),
    ('action', 'ntxent_views'), ('privacy', 'ntxent_views'), ('privacy', 'eq9_action_pairs')])
def test_anonymizer_gradient_is_the_one_weighted_term_with_its_sign(term, privacy_loss):
    weights = dict(global_style=0.0, local_feature=0.0, outline=0.0, action=0.0, privacy=0.0) | {term: 0.7}
    model, wrappers = build(lr=0.0, optimizer='SGD', loss_weights=weights, privacy_loss=privacy_loss, **EXACT)
    steps = record_steps(model, wrappers)
    data = clip_batch()
    torch.manual_seed(3)
    model.train_step(data, wrappers)
    batch, out, stylized = replay(model, data, 3)
    assert 0 < stylized.min() and stylized.max() < 1  # nothing clamped: every gradient passes
    l_gs, l_lf = model.style_losses(out)
    value = dict(global_style=l_gs, local_feature=l_lf, outline=model.outline_term(stylized, batch['clips']),
                 action=F.cross_entropy(model.action_branch(stylized), batch['actions']),
                 privacy=model.privacy_term(stylized, batch))[term]
    sign = -1 if term == 'privacy' else 1  # Eq. 9: + lg L_gs + ll L_lf + la L_act - lp L_pri
    phase1, phase2 = [s for s in steps if s[0] == 'anonymizer']
    assert_same(phase2[1], anonymizer_grads(sign * 0.7 * value, model), 'anonymizer.')
    if term in ('action', 'privacy'):  # phase 1 (Eq. 8) holds no adversarial term
        assert all(g.abs().max() == 0 for g in phase1[1].values())
    else:  # a style-side term is in Loss_st too, with the same sign
        assert any(g.abs().max() > 0 for g in phase1[1].values())


def test_outline_term_is_off_in_the_papers_objective_and_logged_when_on():
    torch.manual_seed(0)
    model, wrappers = build()
    assert model.weights['outline'] == 0.0
    log = model.train_step(clip_batch(), wrappers)
    assert 'loss_ol' not in log  # not computed at all at weight 0
    model, wrappers = build(loss_weights=dict(outline=50.0), outline_pool=1)
    log = model.train_step(clip_batch(), wrappers)
    assert torch.isfinite(log['loss_ol']) and log['loss_ol'] > 0
    # the term compares the frames the branches see with the input clips: zero for the input itself
    clips = model.fit_batch(model.data_preprocessor(clip_batch(), True))['clips']
    assert model.outline_term(clips, clips) == 0
    # with detail removed, the input's own texture finer than the pooling costs (the test clips are noise)
    model, wrappers = build(loss_weights=dict(outline=50.0), outline_pool=2, outline_detail='removed')
    assert model.outline_term(clips, clips) > 0
    assert torch.isfinite(model.train_step(clip_batch(), wrappers)['loss_ol'])


def test_each_branch_steps_on_its_own_loss_of_phase2_clips():
    model, wrappers = build(lr=0.0, optimizer='SGD', **EXACT)
    steps = record_steps(model, wrappers)
    data = clip_batch()
    torch.manual_seed(5)
    model.train_step(data, wrappers)
    batch, _, stylized = replay(model, data, 5)
    clips = stylized.detach()
    assert [s[0] for s in steps] == ['anonymizer', 'anonymizer', 'action_branch', 'privacy_branch']
    # L_act alone, whatever la is; the privacy branch on +L_pri, the term the anonymizer raises
    assert_same(steps[2][1], grads_of(F.cross_entropy(model.action_branch(clips), batch['actions']),
                                      model.action_branch), 'action_branch.')
    assert_same(steps[3][1], grads_of(model.privacy_term(clips, batch), model.privacy_branch),
                'privacy_branch.')


def test_each_optimizer_changes_only_its_own_parameters():
    torch.manual_seed(0)
    model, wrappers = build()
    steps = record_steps(model, wrappers)
    model.train_step(clip_batch(), wrappers)
    assert [s[0] for s in steps] == ['anonymizer', 'anonymizer', 'action_branch', 'privacy_branch']
    for name, _, changed in steps:
        assert changed and all(p.startswith(name + '.') for p in changed), (name, sorted(changed)[:3])


def test_warmup_runs_phase1_and_trains_the_branches_on_raw_clips():
    torch.manual_seed(0)
    model, wrappers = build(warmup_iters=dict(action_branch=1, privacy_branch=1), ramp_iters=dict(privacy=2))
    steps = record_steps(model, wrappers)
    log = model.train_step(clip_batch(), wrappers)
    assert [s[0] for s in steps] == ['anonymizer', 'action_branch', 'privacy_branch']  # phase 1 only
    assert {'warmup_action_acc', 'warmup_loss_action_branch', 'warmup_loss_privacy_branch', 'saturated'} <= set(log)
    assert log['factor_action'] == 0.0 and log['factor_privacy'] == 0.0
    log = model.train_step(clip_batch(seed=1), wrappers)
    assert {'loss_act', 'loss_pri', 'action_acc', 'saturated'} <= set(log)
    assert log['factor_action'] == 1.0 and log['factor_privacy'] == 0.5


def test_restart_reinitializes_the_privacy_branch():
    torch.manual_seed(0)
    model, wrappers = build(restart=dict(branch='privacy_branch', every=1, rewarm_iters=1))
    model.train_step(clip_batch(), wrappers)
    before = {k: v.clone() for k, v in model.privacy_branch.state_dict().items()}
    log = model.train_step(clip_batch(seed=1), wrappers)
    assert log['restart_privacy_branch'] == 1.0 and log['factor_privacy'] == 0.0
    moved = [k for k, v in model.privacy_branch.state_dict().items() if v.dtype.is_floating_point
             and not torch.allclose(v, before[k], atol=1e-2)]
    assert any(k.endswith('project.2.weight') for k in moved)


def test_guard_stops_a_fit_whose_output_saturates():
    torch.manual_seed(0)
    model, wrappers = build(guard=dict(after_iter=2, window=2, chance_margin=None))
    last = model.anonymizer.decoder.stage1[1][0]
    with torch.no_grad():
        last.bias.fill_(1e3)
    last.bias.requires_grad_(False)
    model.train_step(clip_batch(), wrappers)
    with pytest.raises(FitCollapsed, match=r'^fit collapsed at iteration 2: 100% of output values saturated'):
        model.train_step(clip_batch(seed=1), wrappers)


def test_bounded_losses_let_the_style_gradient_reach_saturated_values_back_into_range():
    torch.manual_seed(0)
    for bounded in (True, False):
        model, _ = build(bounded_losses=bounded, **EXACT)
        last = model.anonymizer.decoder.stage1[1][0]
        with torch.no_grad():  # every value far above 1: a saturated white frame
            last.weight.mul_(0.01)
            last.bias.fill_(3.0)
        batch = model.fit_batch(model.data_preprocessor(clip_batch(), True))
        out, stylized = model.stylize(batch)
        assert torch.equal(stylized, torch.ones_like(stylized))  # the branches see the clamped frame
        assert torch.equal(out.images.max() <= 1, torch.tensor(bounded))  # the style losses too, if bounded
        model.style_losses(out)[0].backward()
        assert last.bias.grad.abs().max() > 0  # the style gradient reaches the saturated frame
    # a plain clamp would give that frame no gradient at all
    model.zero_grad()
    out, _ = model.stylize(batch)
    model.style_losses(out._replace(images=out.images.clamp(0, 1)))[0].backward()
    assert last.bias.grad.abs().max() == 0


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(tiny_model_cfg(num_classes=None))
    with pytest.raises(ValueError, match="privacy_loss must be one of ntxent_views, eq9_action_pairs"):
        MODELS.build(tiny_model_cfg(privacy_loss='contrastive'))
    with pytest.raises(ValueError, match=r'^fit.model.outline_pool must be a whole number of pixels >= 1, got 0$'):
        MODELS.build(tiny_model_cfg(outline_pool=0))
    with pytest.raises(ValueError, match=r"^fit.model.outline_detail must be one of free, removed, got 'none'$"):
        MODELS.build(tiny_model_cfg(outline_detail='none'))
    with pytest.raises(ValueError, match='warmup_iters'):
        MODELS.build(tiny_model_cfg(train_privacy=False, warmup_iters=dict(privacy_branch=2)))
    model, wrappers = build()
    del wrappers.optim_wrappers['action_branch']
    with pytest.raises(KeyError, match='action_branch'):
        model.train_step(clip_batch(), wrappers)


@pytest.mark.parametrize('privacy_loss', ['eq9_action_pairs', 'info_nce_action_pairs'])
def test_action_pair_readings_train(privacy_loss):
    torch.manual_seed(0)
    model, wrappers = build(privacy_loss=privacy_loss)
    log = model.train_step(clip_batch(), wrappers)
    assert torch.isfinite(log['loss_pri']) and log['loss_pri'] > 0


def test_fixed_privacy_extractor_option():
    torch.manual_seed(0)
    model, wrappers = build(train_privacy=False)
    del wrappers.optim_wrappers['privacy_branch']  # not needed when it does not learn
    privacy0 = {k: v.clone() for k, v in model.privacy_branch.named_parameters()}
    log = model.train_step(clip_batch(), wrappers)
    assert 'loss_pri' in log and 'loss_privacy_branch' not in log
    assert all(torch.equal(privacy0[k], p) for k, p in model.privacy_branch.named_parameters())


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
        model=tiny_model_cfg(warmup_iters=dict(action_branch=1)), work_dir=str(work_dir),
        default_scope='benchmark',
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
    assert int(saved['state_dict']['fit_iter']) == 2  # the schedule's clock travels with the model

    second = make_runner(tmp_path, 4, resume=True)
    second.train()
    assert second.iter == 4 and (tmp_path / 'iter_4.pth').is_file()
    final = load(tmp_path / 'iter_4.pth', map_location='cpu')
    # the cosine schedule continued from iteration 2 rather than restarting (its last step,
    # the 3rd, sets 0.01 * (1 + cos(3 pi / 4)) / 2; a restart would stop at the 1st step's value)
    lr = final['optimizer']['anonymizer']['param_groups'][0]['lr']
    assert lr == pytest.approx(0.01 * (1 + math.cos(3 * math.pi / 4)) / 2)
    assert final['meta']['iter'] == 4 and int(final['state_dict']['fit_iter']) == 4
    assert 'anonymizer.style_bank' in final['state_dict']


def test_both_phases_of_an_iteration_share_one_computation_of_the_local_feature_targets(monkeypatch):
    """Phase 2 reuses phase 1's encoder features, so L_lf's AdaAttN* targets are computed once
    per adversarial iteration, and they are those of the pass phase 2 reads."""
    model, wrappers = build(lr=0.0, optimizer='SGD', **EXACT)
    made = []
    real = model.style_targets
    monkeypatch.setattr(model, 'style_targets', lambda out: made.append(real(out)) or made[-1])
    data = clip_batch()
    torch.manual_seed(4)
    log = model.train_step(data, wrappers)
    assert 'loss_act' in log and len(made) == 1  # an adversarial iteration, one computation
    _, out, _ = replay(model, data, 4)
    for cached, fresh in zip(made[0], real(out)):
        assert torch.equal(cached, fresh)

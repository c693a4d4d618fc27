"""SPAct and VITA: the sign and route of every term, each optimizer on its own parameters, VITA's
worst case over the budget ensemble and its restarts, the anonymizers, and the method configs.

Tiny models (4-8 base channels, 4 clips of 2 frames at 32 px) keep each check exact and fast.
"""
import copy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.structures import LabelData

from baselines.learned import frame_backbone, video_backbone
from baselines.vita import worst_case_budget_loss
from benchmark.adversarial import frozen
from benchmark.anonymizer import build_anonymizer
from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.adversarial_checks import assert_same, grads_of, record_steps

CONFIGS = Path(__file__).resolve().parents[2] / 'benchmark' / 'configs' / 'methods'
PREPROCESSOR = dict(type='ClipPreprocessor', normalize=False, keep_aux=True)
SPACT = dict(type='SPActModel', anonymizer=dict(type='SPActUNet', width=4, depth=2), num_classes=3,
             action_backbone=video_backbone(18, 4), privacy_backbone=frame_backbone(18, 4), embed_dim=8,
             views=dict(min_scale=1.0, flip=False),  # identity views: the step can be replayed
             data_preprocessor=PREPROCESSOR)
VITA = dict(type='VITAModel', anonymizer=dict(type='VITADegradation', width=4, residual_blocks=1), num_classes=3,
            action_backbone=video_backbone(18, 4), budget_backbones=[frame_backbone(18, 4), frame_backbone(18, 8)],
            data_preprocessor=PREPROCESSOR)
PRIVACY = {'SPActModel': 'privacy_branch', 'VITAModel': 'budget_branch'}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the work
    yield
    torch.set_num_threads(threads)


def clip_batch(seed=0, with_privacy=True, t=2, size=32):
    """A collated batch as ClipDataset gives it for the fit (action labels; privacy bits in the
    metainfo); clips 0 and 1 come from one video."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i, (action, video) in enumerate(zip((0, 0, 1, 2), ('a', 'a', 'b', 'c'))):
        inputs.append(torch.randint(0, 256, (1, 3, t, size, size), generator=gen, dtype=torch.uint8))
        sample = ActionDataSample()
        sample.gt_labels = LabelData(item=torch.tensor([action]))
        meta = dict(video_id=video, action=action)
        if with_privacy:
            meta['privacy'] = [float(b) for b in torch.randint(0, 2, (5,), generator=gen)]
        sample.set_metainfo(meta)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def build(cfg, lr=0.0, optimizer='SGD', **kwargs):
    torch.manual_seed(0)
    model = MODELS.build({**cfg, **kwargs})
    parts = ('anonymizer', 'action_branch', PRIVACY[cfg['type']])
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='MultiOptimWrapperConstructor',
        optim_wrapper_cfg={p: dict(type='OptimWrapper', optimizer=dict(type=optimizer, lr=lr)) for p in parts}))(model)
    return model, wrappers


def replay(model, data, seed):
    """The batch and the anonymizer's output of a ``train_step`` run after ``manual_seed(seed)``
    with lr 0 (nothing moved)."""
    torch.manual_seed(seed)
    batch = model.fit_batch(model.data_preprocessor(data, True))
    return batch, model.anonymizer(batch['clips'])


@pytest.mark.parametrize('cfg, term, sign', [
    (SPACT, 'reconstruction', 1), (SPACT, 'action', 1), (SPACT, 'privacy', -1),  # -NT-Xent + CE
    (VITA, 'reconstruction', 1), (VITA, 'action', 1), (VITA, 'budget', 1)])  # CE + 0.5 max budget CE
def test_anonymizer_gradient_is_the_one_weighted_term_with_its_sign(cfg, term, sign):
    weights = {t: 0.0 for t in ('reconstruction', 'action', 'privacy' if cfg is SPACT else 'budget')}
    model, wrappers = build(cfg, loss_weights={**weights, term: 0.7}, reconstruction_iters=1)
    steps = record_steps(model, wrappers)
    data = clip_batch()
    torch.manual_seed(3)
    log = model.train_step(data, wrappers)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    # the branches frozen as in the step: CPU convolutions that also owe weight gradients
    # differ from it in the last digits
    with frozen(model.action_branch, getattr(model, PRIVACY[cfg['type']])):
        batch, out = replay(model, data, 3)
        want = grads_of(sign * 0.7 * model.terms(dict(clips=out), batch)[term], model.anonymizer)
    assert steps[0][0] == 'anonymizer'
    assert_same(steps[0][1], want, 'anonymizer.')


@pytest.mark.parametrize('cfg', [SPACT, VITA])
def test_each_branch_steps_on_its_own_loss_of_the_detached_output(cfg):
    model, wrappers = build(cfg)
    steps = record_steps(model, wrappers)
    data = clip_batch()
    torch.manual_seed(5)
    model.train_step(data, wrappers)
    batch, out = replay(model, data, 5)
    clips = out.detach()
    privacy = PRIVACY[cfg['type']]
    assert [s[0] for s in steps] == ['anonymizer', 'action_branch', privacy]
    assert_same(steps[1][1], grads_of(F.cross_entropy(model.action_branch(clips), batch['actions']),
                                      model.action_branch), 'action_branch.')
    if cfg is SPACT:  # fB lowers the NT-Xent the anonymizer raises
        want = model.privacy_term('privacy', clips, batch)
    else:  # each budget model learns the true privacy labels, frame by frame
        logits = model.budget_branch(clips)
        want = F.binary_cross_entropy_with_logits(logits, batch['privacy'][None, :, None].expand_as(logits))
    assert_same(steps[2][1], grads_of(want, getattr(model, privacy)), privacy + '.')


@pytest.mark.parametrize('cfg', [SPACT, VITA])
def test_each_optimizer_changes_only_its_own_parameters(cfg):
    model, wrappers = build(cfg, lr=1e-2, optimizer='Adam', reconstruction_iters=1)
    steps = record_steps(model, wrappers)
    for seed in range(2):
        model.train_step(clip_batch(seed), wrappers)
    for name, _, changed in steps:
        assert changed and all(p.startswith(name + '.') for p in changed), (name, sorted(changed)[:3])


@pytest.mark.parametrize('cfg', [SPACT, VITA])
def test_reconstruction_warmup_then_adversarial_phase(cfg):
    privacy = PRIVACY[cfg['type']]
    term = 'privacy' if cfg is SPACT else 'budget'
    model, wrappers = build(cfg, lr=1e-3, optimizer='Adam', reconstruction_iters=2,
                            warmup_iters={'action_branch': 2, privacy: 2})
    logs = [model.train_step(clip_batch(i), wrappers) for i in range(3)]
    # warm-up: the anonymizer learns the identity alone, the branches learn on raw clips
    assert {'loss_reconstruction', 'warmup_loss_action_branch', f'warmup_loss_{privacy}'} <= set(logs[0])
    assert 'loss_action' not in logs[0] and f'loss_{term}' not in logs[0]
    # then the adversarial terms and no reconstruction
    assert {'loss_action', f'loss_{term}', 'action_acc', f'loss_{privacy}'} <= set(logs[2])
    assert 'loss_reconstruction' not in logs[2] and logs[2][f'factor_{term}'] == 1.0


def test_spact_uses_no_privacy_labels_and_vita_reads_them():
    spact, wrappers = build(SPACT)
    data = clip_batch(with_privacy=False)
    assert 'privacy' not in spact.fit_batch(spact.data_preprocessor(data, True))
    log = spact.train_step(data, wrappers)
    assert torch.isfinite(log['loss_privacy'])
    vita, _ = build(VITA)
    data = clip_batch()
    batch = vita.fit_batch(vita.data_preprocessor(data, True))
    assert batch['privacy'].tolist() == [s.metainfo['privacy'] for s in data['data_samples']]


def test_worst_case_is_the_max_over_models_per_clip():
    # model 0 is sure of clip 1 only, model 1 of clip 0 only: the worst case per clip is the
    # unsure model on each, ln 2, where the max over models of the batch mean would be ~0.35
    logits = torch.tensor([[[0.0], [5.0]], [[5.0], [0.0]]], requires_grad=True)  # (M=2, N=2, A=1)
    loss, which = worst_case_budget_loss(logits, 1.0)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert which.tolist() == [0, 1]
    loss.backward()
    assert logits.grad[0, 1].abs().max() == 0 and logits.grad[1, 0].abs().max() == 0
    assert logits.grad[0, 0] < 0 and logits.grad[1, 1] < 0  # lowering it raises those logits toward 1
    sure = torch.tensor([[[9.0]], [[-9.0]]])  # uniform target: a confident model either way is far from it
    assert worst_case_budget_loss(sure, 0.5)[0] > worst_case_budget_loss(torch.zeros(2, 1, 1), 0.5)[0]


def test_vita_budget_term_reads_the_worst_model_of_each_clip():
    model, _ = build(VITA)
    batch, out = replay(model, clip_batch(), 0)
    clip_logits = model.budget_branch(out).mean(2)
    want = torch.stack([F.binary_cross_entropy_with_logits(m, torch.ones_like(m), reduction='none').mean(1)
                        for m in clip_logits]).max(0).values.mean()
    assert torch.allclose(model.terms(dict(clips=out), batch)['budget'], want)


def test_vita_budget_models_restart_at_the_configured_step():
    model, wrappers = build(VITA, lr=1e-2, optimizer='Adam', warmup_iters=dict(action_branch=2, budget_branch=2),
                            restart=dict(branch='budget_branch', every=3, rewarm_iters=1))
    state = wrappers['budget_branch'].optimizer.state
    restarted, factors = [], []
    for i in range(9):
        before = model.budget_branch.heads[0].weight.detach().clone()
        log = model.train_step(clip_batch(i), wrappers)
        factors.append(log['factor_budget'])
        if 'restart_budget_branch' in log:
            restarted.append(i)
            assert all(s['step'] == 1 for s in state.values())  # its Adam moments were cleared
            assert (model.budget_branch.heads[0].weight - before).abs().max() > 0.05  # new weights, not a step
    assert restarted == [5, 8]  # every 3 iterations after its 2-iteration warm-up
    assert factors == [0, 0, 1, 1, 1, 0, 1, 1, 0]  # off while warming and re-warming


def test_vita_paper_config_restarts_every_200_adversarial_steps():
    cfg = Config.fromfile(CONFIGS / 'vita.py')
    model, _ = build(VITA, restart=cfg.fit.model.restart.to_dict(), warmup_iters=cfg.fit.model.warmup_iters.to_dict())
    start = cfg.fit.model.warmup_iters.budget_branch
    assert [i for i in range(start, start + 700) if model.restarts_at(i)] == [start + 200, start + 400, start + 600]
    # after the warm-up, VITA's learning rates: Adam 1e-4 for fd and fb, 1e-5 for fT
    for part, lr in dict(anonymizer=1e-4, action_branch=1e-5, budget_branch=1e-4).items():
        base = cfg.fit.optim_wrapper[part].optimizer.lr
        drop = cfg.fit.param_scheduler[part][0]
        assert (drop.type, drop.step_size, drop.end) == ('StepLR', start, start + 1)  # one drop, at the start
        assert base * drop.gamma == pytest.approx(lr)
    assert cfg.fit.model.loss_weights.budget == 0.5


@pytest.mark.parametrize('anonymizer', [dict(type='SPActUNet', width=4, depth=3),
                                        dict(type='VITADegradation', width=4, residual_blocks=2)])
def test_anonymizers_work_frame_by_frame_in_range(anonymizer):
    net = build_anonymizer(anonymizer).eval()
    clips = torch.rand(2, 3, 3, 30, 22)  # sides that no stride divides
    with torch.no_grad():
        out = net(clips)
        changed = clips.clone()
        changed[:, :, 1:] = torch.rand(2, 3, 2, 30, 22)
        again = net(changed)
    assert out.shape == clips.shape and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out[:, :, 0], again[:, :, 0])  # per_frame: frame 0 depends on frame 0 alone


@pytest.mark.parametrize('cfg, says', [
    (dict(type='SPActUNet', depth=0), 'width and depth must be whole numbers >= 1'),
    (dict(type='VITADegradation', width=2.5), 'width must be a whole number >= 1'),
])
def test_anonymizer_arguments_out_of_range_are_one_line(cfg, says):
    with pytest.raises(ValueError) as err:
        build_anonymizer(cfg)
    assert says in str(err.value) and '\n' not in str(err.value)


def test_model_config_errors_are_one_line():
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build({**SPACT, 'num_classes': None})
    with pytest.raises(ValueError, match="reconstruction_loss must be one of l1, mse"):
        MODELS.build({**SPACT, 'reconstruction_loss': 'l2'})
    with pytest.raises(ValueError, match="budget_target must be 'ones' or 'uniform'"):
        MODELS.build({**VITA, 'budget_target': 'zeros'})
    with pytest.raises(ValueError, match=r"loss_weights names \['privacy'\]"):
        MODELS.build({**VITA, 'loss_weights': dict(privacy=1.0)})


@pytest.mark.parametrize('method', ['spact', 'vita'])
@pytest.mark.parametrize('profile', ['smoke', 'cpu'])
def test_profile_models_train_one_adversarial_step(method, profile):
    cfg = Config.fromfile(CONFIGS / f'{method}.py')
    cfg.merge_from_dict(cfg.profiles[profile].to_dict())
    model_cfg = copy.deepcopy(cfg.fit.model.to_dict())
    model_cfg.update(anonymizer=cfg.anonymizer.to_dict(), num_classes=3, data_preprocessor=PREPROCESSOR)
    model = MODELS.build(model_cfg)
    optim = cfg.fit.optim_wrapper.to_dict()
    optim.pop('constructor')
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=optim))(model)
    start = max(model.warmup_iters.values())
    assert model.early_iters['reconstruction'] == start  # the anonymizer learns the identity meanwhile
    model.fit_iter.fill_(start)  # the first adversarial iteration
    log = model.train_step(clip_batch(), wrappers)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert {'loss_action', 'action_acc', 'saturated'} <= set(log) and 'loss_reconstruction' not in log
    assert set(cfg.fit.param_scheduler) == set(optim)
    guard = cfg.fit.model.guard
    assert start + guard.window <= guard.after_iter <= cfg.fit.max_iters  # the guard gets its say


def test_loss_mode_gives_each_term_weighted_and_signed():
    model, _ = build(SPACT, loss_weights=dict(reconstruction=2.0, action=1.0, privacy=0.5))
    data = clip_batch()
    clips = model.data_preprocessor(data, True)['inputs']
    torch.manual_seed(1)
    losses = model(clips, data['data_samples'], mode='loss')
    torch.manual_seed(1)
    batch, out = replay(model, data, 1)
    terms = model.terms(dict(clips=out), batch)
    assert torch.allclose(losses['loss_reconstruction'], 2.0 * terms['reconstruction'])
    assert torch.allclose(losses['loss_privacy'], -0.5 * terms['privacy'])  # raised: negative
    assert torch.equal(model(clips, mode='tensor'), model.anonymizer(clips[:, 0]))


class TinyClips(torch.utils.data.Dataset):
    def __init__(self):
        self.batch = clip_batch()

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=self.batch['inputs'][i], data_samples=self.batch['data_samples'][i])


def make_runner(work_dir, max_iters, resume):
    from mmengine.runner import Runner

    from benchmark.checkpoints import SCHEME, resume_checkpoint
    cfg = Config.fromfile(CONFIGS / 'vita.py')
    cfg.merge_from_dict(cfg.profiles['smoke'].to_dict())  # StepLR schedulers, a restart at iteration 3
    resume_from = resume_checkpoint(work_dir) if resume else None
    return Runner(
        model=dict(VITA, warmup_iters=dict(action_branch=1, budget_branch=1), reconstruction_iters=1,
                   restart=dict(branch='budget_branch', every=2)),
        work_dir=str(work_dir), default_scope='benchmark',
        train_dataloader=dict(dataset=TinyClips(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=cfg.fit.optim_wrapper.to_dict(), param_scheduler=cfg.fit.param_scheduler.to_dict(),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume_from is not None,
        load_from=f'{SCHEME}{resume_from}' if resume_from else None)


def test_fit_checkpoint_loads_through_the_allow_list_and_resumes(tmp_path):
    from benchmark.checkpoints import load
    make_runner(tmp_path, 2, resume=False).train()
    saved = load(tmp_path / 'iter_2.pth', map_location='cpu')  # refused if it held anything else
    assert set(saved['optimizer']) == {'anonymizer', 'action_branch', 'budget_branch'}
    second = make_runner(tmp_path, 4, resume=True)
    second.train()
    final = load(tmp_path / 'iter_4.pth', map_location='cpu')
    assert second.iter == 4 and int(final['state_dict']['fit_iter']) == 4  # the schedule's clock travelled

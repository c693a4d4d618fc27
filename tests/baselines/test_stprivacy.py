"""STPrivacy: the sign and route of every term, the Gumbel top-k selection in training and
the top-k by token ratio at test (counted on the output), zero fill, attention among the kept
tubelets only."""
import pytest
import torch
import torch.nn.functional as F

from baselines.stprivacy import Block, keep_count, select
from benchmark.anonymizer import build_anonymizer
from tests.adversarial_checks import assert_same, grads_of, record_steps
from tests.baselines.labelled_helpers import (PREPROCESSOR, assert_branches_step_on_their_own_losses,
                                             assert_each_part_changed_only_itself, build_with_optim,
                                             labelled_batch, tiny_backbone)

PARTS = ('anonymizer', 'action_branch', 'privacy_branch')
TINY = dict(type='STPrivacyAnonymizer', patch_size=8, embed_dim=24, depth=2, num_heads=2, prune_layer=1,
            token_ratio=0.5, skip=True)


def cfg(**kwargs):
    return dict(type='STPrivacyModel', anonymizer=TINY, num_classes=3, action_backbone=tiny_backbone(),
                privacy_backbone=tiny_backbone(frame=True), data_preprocessor=PREPROCESSOR) | kwargs


def build(lr=1e-2, optimizer='AdamW', **kwargs):
    """A model whose pixel head already draws (with skip it starts at zero, which would leave
    the transformer without gradient)."""
    model, wrappers = build_with_optim(cfg(**kwargs), PARTS, lr, optimizer)
    with torch.no_grad():
        model.anonymizer.head.weight.normal_(0, 0.02)
    return model, wrappers


def replay(model, data, seed):
    """The batch and anonymizer pass of a ``train_step`` run after ``torch.manual_seed(seed)``
    (the Gumbel noise is the step's first random draw)."""
    torch.manual_seed(seed)
    batch = model.fit_batch(model.data_preprocessor(data, True))
    return batch, model.output(batch)


@pytest.mark.parametrize('term', ['action', 'privacy', 'reconstruction'])
def test_anonymizer_gradient_is_the_one_weighted_term_with_its_sign(term):
    weights = dict(action=0.0, privacy=0.0, reconstruction=0.0) | {term: 0.7}
    model, wrappers = build(lr=0.0, optimizer='SGD', loss_weights=weights)
    steps = record_steps(model, wrappers)
    data = labelled_batch()
    torch.manual_seed(3)
    model.train_step(data, wrappers)
    batch, out = replay(model, data, 3)
    value = model.terms(out, batch)[term]
    sign = -1 if term == 'privacy' else 1  # the privacy branch's BCE is raised, the others lowered
    name, grads, _ = steps[0]
    assert name == 'anonymizer'
    assert_same(grads, grads_of(sign * 0.7 * value, model.anonymizer), 'anonymizer.')
    if term == 'privacy':  # raised: the opposite of what the privacy branch's own loss asks
        batch, out = replay(model, data, 3)
        own = grads_of(F.binary_cross_entropy_with_logits(model.privacy_branch(out['clips']), batch['privacy']),
                       model.anonymizer)
        assert all(torch.allclose(grads['anonymizer.' + n], -0.7 * g, atol=1e-6) for n, g in own.items())


def test_each_branch_steps_on_its_own_loss_of_the_detached_output():
    model, wrappers = build(lr=0.0, optimizer='SGD')
    steps = record_steps(model, wrappers)
    data = labelled_batch()
    torch.manual_seed(5)
    model.train_step(data, wrappers)
    batch, out = replay(model, data, 5)
    assert_branches_step_on_their_own_losses(model, steps, batch, out['clips'].detach(), 'privacy_branch')


def test_each_optimizer_changes_only_its_own_parameters_and_logs_are_finite():
    model, wrappers = build()
    steps = record_steps(model, wrappers)
    log = model.train_step(labelled_batch(), wrappers)
    assert_each_part_changed_only_itself(steps, PARTS, log, (
        'loss_action', 'loss_privacy', 'loss_reconstruction', 'loss_anonymizer', 'action_acc', 'privacy_acc',
        'loss_privacy_branch'))
    # 32 px / 8 px tubelets: 16 per slot, ratio 0.5 -> 8 kept
    assert float(log['kept_fraction']) == 0.5


def test_the_guard_counts_saturation_on_kept_tubelets_only():
    # half the tubelets dropped (zero-filled by design) is no saturated output; kept tubelets
    # drawn at 0 or 255 are. The guard stops on the logged value.
    model, wrappers = build(lr=0.0, optimizer='SGD', guard=dict(after_iter=1, window=1, max_saturated=0.5,
                                                                    chance_margin=None))
    data = labelled_batch()
    log = model.train_step(data, wrappers)
    assert float(log['kept_fraction']) == 0.5
    assert float(log['saturated']) < 0.25  # the test clips' own 0 and 255 values, about 8 %
    from benchmark.adversarial import saturated_fraction
    from benchmark.errors import FitCollapsed
    out = model.output(model.fit_batch(model.data_preprocessor(data, True)))
    assert float(saturated_fraction(out['clips'])) >= 0.5  # what the whole frame would have said
    with torch.no_grad():  # the pixel head now draws every kept pixel far out of range
        model.anonymizer.head.bias.fill_(5.0)
    with pytest.raises(FitCollapsed, match='saturated'):
        model.train_step(data, wrappers)


def _kept_tubelets(out, patch=8, tubelet=2):
    """Per clip and slot, how many tubelets of ``out`` hold any nonzero pixel."""
    n, _, t, h, w = out.shape
    cells = F.pad(out, (0, (-w) % patch, 0, (-h) % patch)).abs().sum(1)
    cells = cells.view(n, t // tubelet, tubelet, -(-h // patch), patch, -(-w // patch), patch)
    return (cells.sum((2, 4, 6)) > 0).flatten(2).sum(-1)


@pytest.mark.parametrize('size, ratio, per_slot', [(32, 0.5, 16), (30, 0.7, 16), (56, 0.7, 49)])
def test_test_time_keeps_the_top_k_by_token_ratio_counted_on_the_output(size, ratio, per_slot):
    anonymizer = build_anonymizer(dict(TINY, token_ratio=ratio)).eval()
    clips = torch.rand(3, 3, 4, size, size) * 0.8 + 0.1  # no pixel is 0: a zero pixel was dropped
    with torch.no_grad():
        out = anonymizer(clips)
        again = anonymizer(clips)
    k = keep_count(per_slot, ratio)
    assert torch.equal(out, again)
    assert (_kept_tubelets(out) == k).all()
    # zero fill: every pixel is the input (kept, head at zero) or exactly 0 (dropped)
    assert ((out == clips) | (out == 0)).all()
    assert abs(k - ratio * per_slot) <= 0.5  # round(ratio x tubelets per slot)


def test_selection_top_k_at_test_and_gumbel_top_k_straight_through_in_training():
    scores = torch.tensor([[[0.3, 2.0, -1.0, 0.9, 0.1, 1.5]]], requires_grad=True)
    keep = select(scores, 2, noise=False)
    assert keep.tolist() == [[[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]]]
    draws = []
    for seed in range(20):
        torch.manual_seed(seed)
        keep = select(scores, 2, noise=True)
        assert set(keep.detach().unique().tolist()) <= {0.0, 1.0} and keep.detach().sum() == 2
        draws.append(tuple(keep.detach().flatten().tolist()))
        keep[0, 0, 0].backward()  # straight-through: the hard keep carries the soft keep's gradient
        assert scores.grad[0, 0, 0] > 0 and (scores.grad[0, 0, 1:] == 0).all()
        scores.grad = None
    assert len(set(draws)) > 1  # the noise changes which tubelets are kept


def test_training_pass_keeps_exactly_k_and_the_gradient_reaches_the_predictor():
    anonymizer = build_anonymizer(TINY).train()
    with torch.no_grad():
        anonymizer.head.weight.normal_(0, 0.02)
    clips = torch.rand(2, 3, 4, 32, 32) * 0.8 + 0.1
    out = anonymizer.sparsify(clips)
    assert (out.keep.detach().sum(-1) == 8).all()
    assert torch.equal(out.images.detach() == 0, (out.keep_pixels.detach() == 0).expand_as(out.images))
    out.images.square().sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in anonymizer.predictor.parameters())


def test_attention_with_a_keep_mask_equals_attention_among_the_kept_tokens():
    torch.manual_seed(0)
    block = Block(8, 2).eval()
    x = torch.randn(1, 6, 8)
    keep = torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 1.0]])
    kept = keep[0].bool()
    with torch.no_grad():
        masked = block(x, keep)
        alone = block(x[:, kept])
    assert torch.allclose(masked[:, kept], alone, atol=1e-6)


def test_errors_are_one_line():
    with pytest.raises(ValueError, match=r'token_ratio=1.5: it must be in \(0, 1\]'):
        build_anonymizer(dict(TINY, token_ratio=1.5))
    with pytest.raises(ValueError, match='prune_layer=2'):
        build_anonymizer(dict(TINY, prune_layer=2))
    with pytest.raises(ValueError, match='num_classes'):
        build(num_classes=None)


@pytest.mark.parametrize('profile', ['smoke', 'cpu', 'paper'])
def test_the_tubelet_scales_with_the_frame_at_every_profile(profile):
    """2x16x16 at the paper's 112 px crops; at the smaller crops of the other profiles the
    tubelet shrinks with the frame, so every slot has the paper's 7x7 tubelets."""
    from benchmark.config import resolve_config
    cfg = resolve_config('stprivacy', 'vp_synth', profile)
    patch, crop = cfg.anonymizer.patch_size, cfg.clip.crop_size
    assert cfg.anonymizer.tubelet_size == 2 and patch * 112 == 16 * crop and crop // patch == 7
    assert not cfg.get('anonymize_once')  # tubelets and attention mix frames: never per frame

"""Collective: the sign and route of every term, one inference model per attribute, the
transformation's start and per-frame contract."""
import pytest
import torch
import torch.nn.functional as F

from benchmark.anonymizer import build_anonymizer
from tests.adversarial_checks import assert_same, grads_of, record_steps
from tests.baselines.labelled_helpers import (PREPROCESSOR, assert_branches_step_on_their_own_losses,
                                             assert_each_part_changed_only_itself, build_with_optim,
                                             labelled_batch, tiny_backbone)

PARTS = ('anonymizer', 'action_branch', 'inference_models')


def cfg(**kwargs):
    return dict(type='CollectiveModel', anonymizer=dict(type='CollectiveTransform', width=4, blocks=1),
                num_classes=3, action_backbone=tiny_backbone(), inference_backbone=tiny_backbone(frame=True),
                data_preprocessor=PREPROCESSOR) | kwargs


def build(lr=1e-2, optimizer='AdamW', **kwargs):
    """A model whose transformation already departs from the identity (its last convolution
    starts at zero, which would leave every other layer without gradient)."""
    model, wrappers = build_with_optim(cfg(**kwargs), PARTS, lr, optimizer)
    with torch.no_grad():
        model.anonymizer.decode[-1].weight.normal_(0, 0.05)
    return model, wrappers


def prepared(model, data):
    return model.fit_batch(model.data_preprocessor(data, True))


@pytest.mark.parametrize('term', ['action', 'privacy', 'fidelity'])
def test_anonymizer_gradient_is_the_one_weighted_term_with_its_sign(term):
    weights = dict(action=0.0, privacy=0.0, fidelity=0.0) | {term: 0.7}
    model, wrappers = build(lr=0.0, optimizer='SGD', loss_weights=weights)
    steps = record_steps(model, wrappers)
    data = labelled_batch()
    model.train_step(data, wrappers)
    batch = prepared(model, data)
    out = model.output(batch)
    value = model.terms(out, batch)[term]
    name, grads, _ = steps[0]
    assert name == 'anonymizer'
    # every term is lowered: action kept, predictions pushed to 1/2, frames kept close
    assert_same(grads, grads_of(0.7 * value, model.anonymizer), 'anonymizer.')


def test_privacy_term_pushes_every_model_to_one_half_whatever_the_labels():
    model, _ = build()
    data = labelled_batch()
    batch = prepared(model, data)
    out = model.output(batch)
    flipped = dict(batch, privacy=1 - batch['privacy'])
    assert torch.equal(model.terms(out, batch)['privacy'], model.terms(out, flipped)['privacy'])
    logits = torch.linspace(-3, 3, 7, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.5))
    loss.backward()  # the form terms() uses: lowest at logit 0 (probability 1/2)
    assert (torch.sign(logits.grad) == torch.sign(logits.detach())).all()


def test_each_branch_steps_on_its_own_loss_of_the_detached_output():
    model, wrappers = build(lr=0.0, optimizer='SGD')
    steps = record_steps(model, wrappers)
    data = labelled_batch()
    model.train_step(data, wrappers)
    batch = prepared(model, data)
    # the adversaries learn the true attributes (+BCE), the term the anonymizer confuses
    assert_branches_step_on_their_own_losses(model, steps, batch, model.output(batch)['clips'].detach(),
                                             'inference_models')


def test_each_inference_model_learns_its_own_attribute_only():
    model, _ = build()
    batch = prepared(model, labelled_batch())
    clips = model.output(batch)['clips'].detach()
    assert len(model.inference_models) == 5
    changed = batch['privacy'].clone()
    changed[:, 2] = 1 - changed[:, 2]

    def grads(labels):
        loss = F.binary_cross_entropy_with_logits(model.inference_models(clips), labels)
        per_model = [list(m.parameters()) for m in model.inference_models]
        flat = iter(torch.autograd.grad(loss, [p for params in per_model for p in params]))
        return [[next(flat) for _ in params] for params in per_model]
    before, after = grads(batch['privacy']), grads(changed)
    for i in range(5):
        same = all(torch.allclose(a, b) for a, b in zip(before[i], after[i]))
        assert same == (i != 2), i


def test_each_optimizer_changes_only_its_own_parameters():
    model, wrappers = build()
    steps = record_steps(model, wrappers)
    log = model.train_step(labelled_batch(), wrappers)
    assert_each_part_changed_only_itself(steps, PARTS, log, (
        'loss_action', 'loss_privacy', 'loss_fidelity', 'loss_anonymizer', 'loss_action_branch',
        'loss_inference_models', 'action_acc', 'privacy_acc'))


def test_warmup_trains_the_branches_on_raw_clips_while_the_transformation_waits():
    model, wrappers = build(anonymizer_start_iter=1, warmup_iters=dict(action_branch=1, inference_models=1),
                            ramp_iters=dict(privacy=2))
    steps = record_steps(model, wrappers)
    log = model.train_step(labelled_batch(), wrappers)
    assert [s[0] for s in steps] == ['action_branch', 'inference_models']
    assert {'warmup_loss_action_branch', 'warmup_loss_inference_models', 'warmup_action_acc'} <= set(log)
    log = model.train_step(labelled_batch(seed=1), wrappers)
    assert log['factor_action'] == 1.0 and log['factor_privacy'] == 0.5 and 'loss_privacy' in log


def test_restart_reinitializes_every_inference_model():
    model, wrappers = build(restart=dict(branch='inference_models', every=1))
    model.train_step(labelled_batch(), wrappers)
    before = [m.head.weight.detach().clone() for m in model.inference_models]
    log = model.train_step(labelled_batch(seed=1), wrappers)
    assert log['restart_inference_models'] == 1.0
    assert all((m.head.weight - b).abs().max() > 1e-2 for m, b in zip(model.inference_models, before))


def test_transformation_starts_as_the_identity_and_treats_frames_alone():
    transform = build_anonymizer(dict(type='CollectiveTransform', width=4, blocks=1)).eval()
    clips = torch.rand(2, 3, 4, 20, 18)
    assert torch.equal(transform(clips), clips)
    with torch.no_grad():
        transform.decode[-1].weight.normal_(0, 0.1)
    out = transform(clips)
    assert not torch.equal(out, clips) and 0 <= out.min() and out.max() <= 1
    changed = clips.clone()
    changed[:, :, 1] = torch.rand_like(changed[:, :, 1])
    again = transform(changed)
    assert torch.equal(again[:, :, [0, 2, 3]], out[:, :, [0, 2, 3]])  # per_frame, as declared
    assert transform.per_frame and transform.learns


def test_resynthesizing_transformation_has_no_identity_path_and_learns_it_in_the_warmup():
    transform = build_anonymizer(dict(type='CollectiveTransform', width=4, blocks=1, residual=False)).eval()
    clips = torch.rand(2, 3, 4, 20, 18)
    assert not torch.allclose(transform(clips), clips, atol=0.05)  # not the identity by construction
    with torch.no_grad():  # no path adds the frame itself: zero weights give the bias alone
        for module in transform.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
                module.bias.zero_()
        transform.decode[-1].bias.fill_(0.5)
    assert torch.equal(transform(clips), torch.full_like(clips, 0.5))
    # in the warm-up only the fidelity term (an early term) moves the transformation
    model, wrappers = build(anonymizer=dict(type='CollectiveTransform', width=4, blocks=1, residual=False),
                            early_iters=dict(fidelity=1), warmup_iters=dict(action_branch=1, inference_models=1))
    log = model.train_step(labelled_batch(), wrappers)
    assert set(k for k in log if k.startswith('loss_') and k != 'loss_anonymizer') == {'loss_fidelity'}
    log = model.train_step(labelled_batch(seed=1), wrappers)
    assert {'loss_action', 'loss_privacy'} <= set(log) and 'loss_fidelity' not in log


def test_errors_are_one_line():
    with pytest.raises(ValueError, match='num_classes'):
        build(num_classes=None)
    model, wrappers = build(num_attributes=4)
    with pytest.raises(ValueError, match='num_attributes=4 but the dataset has 5 privacy attributes'):
        model.train_step(labelled_batch(), wrappers)
    with pytest.raises(ValueError, match='width >= 1'):
        build_anonymizer(dict(type='CollectiveTransform', width=0))

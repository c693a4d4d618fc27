"""The shared adversarial trainer: routing and sign of every term, schedule, restarts, guard.

A toy method (linear anonymizer, two linear branches) keeps each check exact and fast; the
method tests (tests/raprivacy/test_model.py) run the same checks on RAPrivacy's own model.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from benchmark.adversarial import (AdversarialModel, CollapseGuard, clamp_inward, frozen,
                                   saturated_fraction)
from benchmark.errors import FitCollapsed
from tests.adversarial_checks import assert_same, grads_of, record_steps


class Toy(AdversarialModel):
    """x -> clamp(A x): kept close to x (fidelity), readable by the utility branch (utility, as
    an action), unreadable by the privacy branch (privacy, raised)."""

    term_signs = dict(fidelity=1, utility=1, privacy=-1)
    term_branches = dict(utility='utility_branch', privacy='privacy_branch')
    default_weights = dict(fidelity=1.0, utility=1.0, privacy=1.0)
    guard_accuracy = 'utility_acc'

    def __init__(self, **kwargs):
        super().__init__(('utility_branch', 'privacy_branch'), chance=0.5, **kwargs)
        torch.manual_seed(0)
        self.anonymizer = nn.Linear(4, 4)
        self.utility_branch = nn.Linear(4, 2)
        self.privacy_branch = nn.Linear(4, 2)
        with torch.no_grad():
            self.anonymizer.weight.copy_(torch.eye(4) * 0.5)
            self.anonymizer.bias.fill_(0.25)

    def fit_batch(self, data):
        return data

    def output(self, batch):
        return clamp_inward(self.anonymizer(batch['clips']))

    def terms(self, out, batch):
        return dict(fidelity=F.mse_loss(out, batch['clips']),
                    utility=F.cross_entropy(self.utility_branch(out), batch['utility']),
                    privacy=F.cross_entropy(self.privacy_branch(out), batch['private']))

    def anonymizer_update(self, batch, optim_wrapper, factors):
        with self.stepping('anonymizer', optim_wrapper):
            out = self.output(batch)
            loss = self.objective(self.terms(out, batch), factors)
        optim_wrapper['anonymizer'].update_params(loss)
        return out.detach(), dict(loss_total=loss.detach())

    def anonymize(self, batch):
        return self.anonymizer(batch['clips']).clamp(0, 1)

    def branch_loss(self, name, clips, batch):
        logits = getattr(self, name)(clips)
        target = batch['utility'] if name == 'utility_branch' else batch['private']
        log = dict(utility_acc=(logits.argmax(1) == target).float().mean()) if name == 'utility_branch' else {}
        return F.cross_entropy(logits, target), log

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.anonymizer(inputs)


def batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return dict(clips=torch.rand(8, 4, generator=gen), utility=torch.randint(0, 2, (8,), generator=gen),
                private=torch.randint(0, 2, (8,), generator=gen))


def wrappers(model, lr=0.0, optimizer=torch.optim.SGD):
    return OptimWrapperDict(**{name: OptimWrapper(optimizer(getattr(model, name).parameters(), lr=lr))
                               for name in ('anonymizer', 'utility_branch', 'privacy_branch')})


@pytest.mark.parametrize('term', ['fidelity', 'utility', 'privacy'])
def test_anonymizer_gradient_is_the_one_weighted_term_with_its_sign(term):
    weights = {t: 0.0 for t in Toy.term_signs} | {term: 0.7}
    model = Toy(loss_weights=weights)
    optim = wrappers(model)
    steps = record_steps(model, optim)
    data = batch()
    model.train_step(data, optim)
    sign = Toy.term_signs[term]
    want = grads_of(sign * 0.7 * model.terms(model.output(data), data)[term], model.anonymizer)
    name, grads, _ = steps[0]
    assert name == 'anonymizer'
    assert_same(grads, want, 'anonymizer.')
    if term == 'privacy':  # raised, not lowered: the opposite of the privacy branch's gradient
        own = grads_of(model.terms(model.output(data), data)['privacy'], model.anonymizer)
        assert all(torch.allclose(grads['anonymizer.' + n], -0.7 * g) for n, g in own.items())


def test_each_branch_steps_on_its_own_loss_of_the_detached_output():
    model = Toy()
    optim = wrappers(model)
    steps = record_steps(model, optim)
    data = batch()
    model.train_step(data, optim)
    out = model.output(data).detach()
    assert [s[0] for s in steps] == ['anonymizer', 'utility_branch', 'privacy_branch']
    assert_same(steps[1][1], grads_of(F.cross_entropy(model.utility_branch(out), data['utility']),
                                      model.utility_branch), 'utility_branch.')
    # +L_pri: the privacy branch lowers the loss the anonymizer raises
    assert_same(steps[2][1], grads_of(F.cross_entropy(model.privacy_branch(out), data['private']),
                                      model.privacy_branch), 'privacy_branch.')


def test_each_optimizer_changes_only_its_own_parameters():
    model = Toy()
    optim = wrappers(model, lr=0.1)
    steps = record_steps(model, optim)
    for seed in range(2):
        model.train_step(batch(seed), optim)
    for name, _, changed in steps:
        assert changed and all(p.startswith(name + '.') for p in changed), (name, changed)


def test_warmup_trains_branches_on_raw_clips_with_their_terms_off():
    model = Toy(warmup_iters=dict(utility_branch=2))
    optim = wrappers(model)
    steps = record_steps(model, optim)
    data = batch()
    log = model.train_step(data, optim)
    assert log['factor_utility'] == 0.0 and log['factor_privacy'] == 1.0
    assert 'warmup_loss_utility_branch' in log and 'warmup_utility_acc' in log and 'loss_privacy_branch' in log
    terms = model.terms(model.output(data), data)
    assert_same(steps[0][1], grads_of(terms['fidelity'] - terms['privacy'], model.anonymizer), 'anonymizer.')
    assert_same(steps[1][1], grads_of(F.cross_entropy(model.utility_branch(data['clips']), data['utility']),
                                      model.utility_branch), 'utility_branch.')
    model.train_step(data, optim)
    log = model.train_step(data, optim)  # iteration 2: warm-up over
    assert log['factor_utility'] == 1.0 and 'loss_utility_branch' in log and 'utility_acc' in log


def test_schedule_warmup_ramp_restart_and_rewarm():
    model = Toy(warmup_iters=dict(privacy_branch=2), ramp_iters=dict(privacy=4),
                restart=dict(branch='privacy_branch', every=5, rewarm_iters=2))
    factors = [model.term_factor('privacy', i) for i in range(13)]
    assert factors == [0, 0, 0.25, 0.5, 0.75, 1, 1, 0, 0, 1, 1, 1, 0]
    assert [i for i in range(13) if model.restarts_at(i)] == [7, 12]
    assert model.term_factor('fidelity', 0) == 1.0 and model.term_factor('utility', 0) == 1.0


def test_restart_reinitializes_the_branch_and_clears_its_optimizer_state():
    model = Toy(restart=dict(branch='privacy_branch', every=2))
    optim = wrappers(model, lr=1e-2, optimizer=torch.optim.Adam)
    for _ in range(2):
        model.train_step(batch(), optim)
    state = optim['privacy_branch'].optimizer.state
    assert all(s['step'] == 2 for s in state.values())
    before = model.privacy_branch.weight.detach().clone()
    log = model.train_step(batch(), optim)  # iteration 2: restart, then one step
    assert log['restart_privacy_branch'] == 1.0
    assert all(s['step'] == 1 for s in state.values())
    assert (model.privacy_branch.weight - before).abs().max() > 0.05  # new weights, not one step


def test_branch_steps_and_anonymizer_steps_count_updates():
    model = Toy(branch_steps=2, anonymizer_steps=3)
    optim = wrappers(model)
    steps = record_steps(model, optim)
    for _ in range(4):
        model.train_step(batch(), optim)
    counts = {name: sum(s[0] == name for s in steps) for name in ('anonymizer', 'utility_branch', 'privacy_branch')}
    assert counts == {'anonymizer': 6, 'utility_branch': 4, 'privacy_branch': 4}
    assert int(model.fit_iter) == 4


def test_anonymizer_waits_for_its_start_while_the_branches_warm_up():
    model = Toy(anonymizer_start_iter=2, warmup_iters=dict(utility_branch=3, privacy_branch=3))
    optim = wrappers(model)
    steps = record_steps(model, optim)
    logs = [model.train_step(batch(), optim) for _ in range(3)]
    assert [s[0] for s in steps].count('anonymizer') == 1  # iteration 2 only
    assert 'saturated' not in logs[0] and 'saturated' in logs[2]


def test_guard_stops_a_saturated_fit_with_one_line():
    model = Toy(guard=dict(after_iter=3, window=2, chance_margin=None))
    with torch.no_grad():
        model.anonymizer.bias.fill_(float('inf'))
    optim = wrappers(model)
    model.train_step(batch(), optim)
    model.train_step(batch(), optim)
    with pytest.raises(FitCollapsed) as err:
        model.train_step(batch(), optim)
    message = str(err.value)
    assert '\n' not in message and message.startswith('fit collapsed at iteration 3: 100% of output values saturated')


def test_guard_stops_an_action_branch_at_chance():
    guard = CollapseGuard(chance=0.1, after_iter=4, window=3)
    for i in range(3):
        guard.observe(i, saturated=0.0, accuracy=0.9)  # before after_iter: never stops
    guard.observe(3, saturated=0.0, accuracy=0.9)
    for i in range(4, 6):
        guard.observe(i, saturated=0.0, accuracy=0.1)  # window mean (0.9 + 0.1 + 0.1) / 3 > 0.15
    with pytest.raises(FitCollapsed, match=r'iteration 7: action branch at chance .* accuracy 0\.100'):
        guard.observe(6, saturated=0.0, accuracy=0.1)


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match=r"loss_weights names \['styl'\]"):
        Toy(loss_weights=dict(styl=1.0))
    with pytest.raises(ValueError, match='warmup_iters'):
        Toy(warmup_iters=dict(action_branch=3))
    with pytest.raises(ValueError, match='restart'):
        Toy(restart=dict(branch='privacy_branch'))
    with pytest.raises(ValueError, match='after_iter >= window'):
        Toy(guard=dict(after_iter=1, window=5))
    model = Toy()
    optim = wrappers(model)
    del optim.optim_wrappers['privacy_branch']
    with pytest.raises(KeyError, match='privacy_branch'):
        model.train_step(batch(), optim)


def test_clamp_inward_passes_only_the_gradient_back_into_range():
    x = torch.tensor([-0.5, -0.5, 0.5, 1.5, 1.5], requires_grad=True)
    y = clamp_inward(x)
    assert torch.equal(y, x.detach().clamp(0, 1))
    # a descent step moves x by -grad: -1 raises x (in, from below), +1 lowers it (in, from above)
    y.backward(torch.tensor([-1.0, 1.0, 1.0, 1.0, -1.0]))
    assert x.grad.tolist() == [-1.0, 0.0, 1.0, 1.0, 0.0]


def test_saturated_fraction_counts_values_that_round_to_0_or_255():
    x = torch.tensor([0.0, 0.4 / 255, 0.6 / 255, 0.5, 254.4 / 255, 254.6 / 255, 1.0, 0.9])
    assert saturated_fraction(x).item() == pytest.approx(4 / 8)


def test_frozen_restores_each_parameters_own_flag():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[0].requires_grad_(False)
    with frozen(net):
        assert not any(p.requires_grad for p in net.parameters())
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]


def test_early_term_is_on_for_its_first_iterations_only():
    model = Toy(early_iters=dict(fidelity=2), warmup_iters=dict(utility_branch=1))
    assert [model.term_factor('fidelity', i) for i in range(4)] == [1.0, 1.0, 0.0, 0.0]
    assert [model.term_factor('utility', i) for i in range(3)] == [0.0, 1.0, 1.0]
    optim = wrappers(model)
    steps = record_steps(model, optim)
    data = batch()
    for _ in range(3):
        model.train_step(data, optim)
    terms = model.terms(model.output(data), data)
    # iteration 2: fidelity is off, the adversarial terms alone move the anonymizer
    assert_same(steps[-3][1], grads_of(terms['utility'] - terms['privacy'], model.anonymizer), 'anonymizer.')
    with pytest.raises(ValueError, match=r"early_iters names \['utility'\]"):
        Toy(early_iters=dict(utility=3))  # a term that feeds a branch has its warm-up instead


@pytest.mark.parametrize('fresh', [True, False])
def test_fresh_moments_when_the_early_term_ends(fresh):
    model = Toy(early_iters=dict(fidelity=2), fresh_moments_after_early=fresh)
    optim = wrappers(model, lr=1e-2, optimizer=torch.optim.Adam)
    logs = [model.train_step(batch(seed=i), optim) for i in range(3)]
    state = optim['anonymizer'].optimizer.state
    # iteration 2, the first without fidelity: the anonymizer's Adam starts again (step 1),
    # the branches' optimizers are untouched
    assert all(s['step'] == (1 if fresh else 3) for s in state.values())
    assert all(s['step'] == 3 for s in optim['utility_branch'].optimizer.state.values())
    assert [('fresh_moments_anonymizer' in log) for log in logs] == [False, False, fresh]

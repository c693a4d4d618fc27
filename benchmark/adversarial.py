"""Adversarial training of a learned anonymizer, shared by the suite's learned methods.

RAPrivacy, SPAct, VITA, Collective and STPrivacy train an anonymizer against branches: an
action branch whose loss it lowers and a privacy branch (or several) whose loss it raises.
``AdversarialModel`` holds what they share, in the idiom of mmagic's ``BaseGAN``: one
``train_step(data, optim_wrapper)`` that takes each part's wrapper from the ``OptimWrapperDict``
by its submodule name, wraps each update in that wrapper's ``optim_context``, freezes every
other part while one steps, and returns one flat dict of logs. A subclass gives its networks,
its loss terms with their signs (``term_signs``) and its schedule values. One iteration:

1. the anonymizer takes ``anonymizer_steps`` updates (every ``branch_steps``-th iteration) on
   its objective, the sum over terms of sign x weight x schedule factor x term;
2. every trained branch takes one update on its own loss, on the anonymizer's output of step 1
   detached (no branch update moves the anonymizer), or on raw clips while it warms up;
3. the collapse guard reads the iteration's saturated fraction and action accuracy.

The anonymizer goes first, as in SPAct (fA, then fT and fB), where BaseGAN updates the
discriminator first: one pass of the anonymizer, the expensive part, serves both updates.

The schedule is a function of the iteration alone (``fit_iter``, saved with the model), so a
resumed fit continues it:

- warm-up, ``warmup_iters={branch: n}``: for the first n iterations the branch trains on raw
  clips and the terms it feeds are off (factor 0): the adversarial phase starts with a branch
  that already knows its task, as SPAct's and the paper's pretrained ones do; the anonymizer
  takes no update before ``anonymizer_start_iter``, so a long warm-up costs only the branches;
- ramp, ``ramp_iters={term: n}``: after its branch's warm-up a term's factor rises linearly to
  1 over n iterations;
- restart, ``restart=dict(branch=..., every=n, rewarm_iters=k)``: every n iterations after its
  warm-up the branch is re-initialized and its optimizer state cleared (VITA restarts its
  budget model every 200 steps); for k iterations it then trains on the anonymizer's output
  while the terms it feeds are off;
- early terms, ``early_iters={term: n}``: a term that is on for the first n iterations only
  (factor 1, then 0), such as the reconstruction loss with which SPAct and VITA first teach
  their anonymizers the identity; with ``fresh_moments_after_early=True`` the anonymizer's
  optimizer state is cleared when an early term ends. Otherwise Adam's second moment still
  holds the small gradients of the reconstruction, and the first gradients of the new
  objective, far larger, take steps several times the learning rate (1,800 Adam steps on
  gradients of 1e-3, then gradients of 0.1: the next steps are 2.7, 3.7, 4.3 ... 5.7 times the
  learning rate at the 12th, still 4.4 at the 40th): the likely cause of Collective's cpu fit
  dropping its action branch to chance within ten iterations of the switch on one seed in
  three;

The collapse guard (``guard=dict(after_iter=..., ...)``, ``CollapseGuard``) stops the fit with a
one-line ``FitCollapsed`` once the output is saturated or the action branch sits at chance;
the protocol records such a run as failed. Its windows start empty on resume.
"""
from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections import OrderedDict, deque
from typing import Iterable

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict
from torch import nn

from benchmark.errors import FitCollapsed
from benchmark.registry import MODELS

# An output value that rounds to 0 or 255 in the uint8 frames the protocol saves.
SATURATED_LOW, SATURATED_HIGH = 0.5 / 255, 254.5 / 255


def set_requires_grad(modules: nn.Module | Iterable[nn.Module], requires_grad: bool) -> None:
    """Set ``requires_grad`` of every parameter of ``modules`` (mmagic's helper)."""
    for module in [modules] if isinstance(modules, nn.Module) else modules:
        for param in module.parameters():
            param.requires_grad_(requires_grad)


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """No gradient reaches ``modules`` inside the block; each parameter's own flag comes back
    after it (a frozen encoder inside the anonymizer stays frozen)."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    set_requires_grad(modules, False)
    try:
        yield
    finally:
        for param, flag in zip(params, flags):
            param.requires_grad_(flag)


class _InwardClamp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # descent moves x by -grad: keep the gradients that move a value out of range back in
        passes = ((x >= 0) & (x <= 1)) | ((x > 1) & (grad > 0)) | ((x < 0) & (grad < 0))
        return grad * passes


def clamp_inward(x: torch.Tensor) -> torch.Tensor:
    """``x.clamp(0, 1)`` in the forward pass, with the gradient of every loss still reaching an
    out-of-range value when it points back into range.

    The classifiers and the saved frames see clamped images; computing the losses on those same
    values keeps what is trained and what is judged one image. A plain clamp has no gradient
    outside [0, 1], so a saturated output gets none of the action or privacy gradient that
    could bring it back; a plain straight-through estimator passes gradients that push values
    further out, unseen by any loss. This one passes only the way back.
    """
    return _InwardClamp.apply(x)


def saturated_fraction(clips: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of values of ``clips`` in [0, 1] that round to 0 or 255 as uint8; with
    ``where`` (a boolean mask broadcast to ``clips``), of the values it selects only (0 when it
    selects none)."""
    x = clips.detach()
    hit = ((x <= SATURATED_LOW) | (x >= SATURATED_HIGH)).float()
    if where is None:
        return hit.mean()
    where = where.detach().expand_as(x).float()
    return (hit * where).sum() / where.sum().clamp(min=1.0)


class CollapseGuard:
    """Stops a fit whose output saturates or whose action branch stays at chance.

    Args:
        chance (float): Chance accuracy of the action branch (1 / classes).
        after_iter (int): The first iteration (counted from 1) after which it may stop the fit;
            set it past the warm-ups and ramps.
        window (int): Iterations averaged. Defaults to 25.
        max_saturated (float, optional): Stop when the mean saturated fraction of the window
            exceeds this; None: no such check. Defaults to 0.5.
        chance_margin (float, optional): Stop when the mean action accuracy (on anonymized
            clips) of the window is at most ``chance + chance_margin``; None: no such check
            (a fit too short to leave chance). Defaults to 0.05.
    """

    def __init__(self, chance: float | None, after_iter: int, window: int = 25,
                 max_saturated: float | None = 0.5, chance_margin: float | None = 0.05) -> None:
        if window < 1 or after_iter < window:
            raise ValueError(f'fit.model.guard: need window >= 1 and after_iter >= window, got '
                             f'window={window}, after_iter={after_iter}')
        self.chance, self.after_iter, self.window = chance, after_iter, window
        self.max_saturated, self.chance_margin = max_saturated, chance_margin
        self.saturated: deque = deque(maxlen=window)
        self.accuracy: deque = deque(maxlen=window)

    def observe(self, iteration: int, saturated=None, accuracy=None) -> None:
        """Record iteration ``iteration`` (0-based); raise ``FitCollapsed`` if the fit collapsed."""
        if saturated is not None:
            self.saturated.append(float(saturated))
        if accuracy is not None:
            self.accuracy.append(float(accuracy))
        done = iteration + 1
        if done < self.after_iter:
            return
        where = f'fit collapsed at iteration {done}'
        if self.max_saturated is not None and len(self.saturated) == self.window:
            mean = sum(self.saturated) / self.window
            if mean > self.max_saturated:
                raise FitCollapsed(
                    f'{where}: {mean:.0%} of output values saturated (0 or 255) over the last '
                    f'{self.window} iterations, limit {self.max_saturated:.0%} (fit.model.guard; '
                    f'curve train_saturated of the fit stage)')
        if self.chance_margin is not None and len(self.accuracy) == self.window:
            mean = sum(self.accuracy) / self.window
            if mean <= self.chance + self.chance_margin:
                raise FitCollapsed(
                    f'{where}: action branch at chance on the anonymized clips, accuracy {mean:.3f} '
                    f'over the last {self.window} iterations, chance {self.chance:.3f} + margin '
                    f'{self.chance_margin:g} (fit.model.guard; curve train_action_acc of the fit stage)')


class AdversarialModel(BaseModel):
    """An anonymizer trained against branches; subclasses give the networks and the losses.

    A subclass sets ``term_signs`` (+1: the anonymizer lowers the term, -1: raises it),
    ``term_branches`` (the branch whose output a term reads), ``default_weights`` and
    ``guard_accuracy`` (the branch log the guard watches), holds submodules ``anonymizer``
    and every branch, and defines ``fit_batch``, ``anonymizer_update``, ``anonymize`` and
    ``branch_loss``.

    Args:
        branches (tuple of str): The branches that train, each with its own optimizer.
        chance (float, optional): Chance accuracy of the action branch, for the guard.
        loss_weights (dict, optional): Weight of each term, by name; unknown names are an error.
            Defaults to the subclass's ``default_weights``.
        anonymizer_steps (int): Anonymizer updates when it updates (mmagic's
            ``generator_steps``). Defaults to 1.
        branch_steps (int): The anonymizer updates every this many iterations; the branches
            every iteration (mmagic's ``discriminator_steps``). Defaults to 1.
        anonymizer_start_iter (int): Iterations before the anonymizer's first update. Defaults
            to 0.
        warmup_iters (dict, optional): ``{branch: iterations}`` on raw clips before the terms
            it feeds enter. Defaults to None.
        ramp_iters (dict, optional): ``{term: iterations}`` of its linear ramp after its
            branch's warm-up. Defaults to None.
        restart (dict, optional): ``dict(branch=..., every=..., rewarm_iters=0)``. Defaults to
            None (no restart).
        early_iters (dict, optional): ``{term: iterations}`` for terms on only in the first
            iterations; such a term may feed no branch. Defaults to None.
        guard (dict, optional): ``CollapseGuard`` settings besides ``chance``. Defaults to None
            (no guard).
        fresh_moments_after_early (bool): Clear the anonymizer's optimizer state at the
            iteration an early term ends. Defaults to False.
        data_preprocessor (dict | nn.Module, optional): The protocol's ``ClipPreprocessor``.
    """

    term_signs: dict[str, int] = {}
    term_branches: dict[str, str] = {}
    default_weights: dict[str, float] = {}
    guard_accuracy: str | None = None

    def __init__(self, branches: tuple[str, ...], chance: float | None = None,
                 loss_weights: dict | None = None, anonymizer_steps: int = 1, branch_steps: int = 1,
                 anonymizer_start_iter: int = 0, warmup_iters: dict | None = None, ramp_iters: dict | None = None,
                 restart: dict | None = None, guard: dict | None = None, early_iters: dict | None = None,
                 fresh_moments_after_early: bool = False,
                 data_preprocessor: dict | nn.Module | None = None) -> None:
        if isinstance(data_preprocessor, dict):  # built here: BaseModel looks in MMEngine's scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor)
        self.branches = tuple(branches)
        self.weights = {**self.default_weights, **self._known(loss_weights, self.term_signs, 'loss_weights')}
        if anonymizer_steps < 1 or branch_steps < 1:
            raise ValueError(f'fit.model: anonymizer_steps and branch_steps must be >= 1, got '
                             f'{anonymizer_steps} and {branch_steps}')
        self.anonymizer_steps, self.branch_steps = int(anonymizer_steps), int(branch_steps)
        self.anonymizer_start_iter = int(anonymizer_start_iter)
        self.warmup_iters = self._known(warmup_iters, self.branches, 'warmup_iters')
        self.ramp_iters = self._known(ramp_iters, self.term_branches, 'ramp_iters')
        self.early_iters = self._known(early_iters, set(self.term_signs) - set(self.term_branches), 'early_iters')
        self.fresh_moments_after_early = bool(fresh_moments_after_early)
        self.restart = None
        if restart:
            restart = {'rewarm_iters': 0, **restart}
            self._known({restart.get('branch'): 0}, self.branches, 'restart.branch')
            if set(restart) != {'branch', 'every', 'rewarm_iters'} or restart['every'] < 1:
                raise ValueError(f'fit.model.restart must be dict(branch=..., every=n >= 1, '
                                 f'rewarm_iters=k), got {restart}')
            self.restart = restart
        self.guard = CollapseGuard(chance, **guard) if guard else None
        if self.guard and self.guard.chance_margin is not None and chance is None:
            raise ValueError('fit.model.guard.chance_margin needs the chance accuracy of the action branch')
        self.register_buffer('fit_iter', torch.zeros((), dtype=torch.long))

    @staticmethod
    def _known(cfg: dict | None, valid, key: str) -> dict:
        unknown = set(cfg or {}) - set(valid)
        if unknown:
            raise ValueError(f'fit.model.{key} names {sorted(map(str, unknown))}: valid names are '
                             f'{sorted(valid)}')
        return dict(cfg or {})

    # ---- the schedule, a function of the iteration -----------------------------------------
    def warming(self, branch: str, iteration: int) -> bool:
        """Whether ``branch`` still trains on raw clips."""
        return iteration < self.warmup_iters.get(branch, 0)

    def restarts_at(self, iteration: int) -> list[str]:
        """The branches re-initialized at the start of ``iteration``."""
        r = self.restart
        if not r:
            return []
        since = iteration - self.warmup_iters.get(r['branch'], 0)
        return [r['branch']] if since > 0 and since % r['every'] == 0 else []

    def term_factor(self, term: str, iteration: int) -> float:
        """The schedule's factor of ``term`` at ``iteration``: 0 while its branch warms up or
        re-warms after a restart, then its ramp, then 1; an early term 1, then 0."""
        if term in self.early_iters:
            return float(iteration < self.early_iters[term])
        branch = self.term_branches.get(term)
        if branch is None:
            return 1.0
        since = iteration - self.warmup_iters.get(branch, 0)
        if since < 0:
            return 0.0
        r = self.restart
        if r and r['branch'] == branch and since >= r['every'] and since % r['every'] < r['rewarm_iters']:
            return 0.0
        ramp = self.ramp_iters.get(term, 0)
        return min(1.0, (since + 1) / ramp) if ramp else 1.0

    @staticmethod
    def adversarial(factors: dict[str, float], terms) -> bool:
        """Whether any of ``terms`` is on."""
        return any(factors.get(t, 0.0) > 0 for t in terms)

    # ---- updates --------------------------------------------------------------------------
    @contextlib.contextmanager
    def stepping(self, name: str, optim_wrapper: OptimWrapperDict):
        """The forward pass of ``name``'s update: every other part frozen, ``name``'s
        ``optim_context`` (autocast, gradient accumulation) around it."""
        others = [getattr(self, n) for n in ('anonymizer', *self.term_branches.values(), *self.branches)
                  if n != name]
        with frozen(*dict.fromkeys(others)), optim_wrapper[name].optim_context(getattr(self, name)):
            yield

    def objective(self, terms: dict[str, torch.Tensor], factors: dict[str, float]) -> torch.Tensor:
        """The anonymizer's loss: sum of sign x weight x factor x term."""
        total = 0.0
        for name, value in terms.items():
            total = total + self.term_signs[name] * self.weights[name] * factors.get(name, 1.0) * value
        return total

    def restart_branch(self, name: str, optim_wrapper: OptimWrapperDict) -> None:
        """Re-initialize a branch (its ``init_weights``, else every layer's ``reset_parameters``)
        and clear its optimizer's state (moments of the old weights)."""
        branch = getattr(self, name)
        if hasattr(branch, 'init_weights'):
            branch.init_weights()
        else:
            for module in branch.modules():
                if hasattr(module, 'reset_parameters'):
                    module.reset_parameters()
        optim_wrapper[name].optimizer.state.clear()

    def train_step(self, data, optim_wrapper: OptimWrapperDict) -> dict:
        missing = [n for n in ('anonymizer', *self.branches) if n not in optim_wrapper.optim_wrappers]
        if missing:
            raise KeyError(f'fit.optim_wrapper has no {", ".join(missing)}: {type(self).__name__} needs '
                           f'one optimizer per trained part (constructor=MultiOptimWrapperConstructor)')
        iteration = int(self.fit_iter)
        self.fit_iter += 1
        batch = self.fit_batch(self.data_preprocessor(data, True))
        log: dict = {}
        for name in self.restarts_at(iteration):
            self.restart_branch(name, optim_wrapper)
            log[f'restart_{name}'] = 1.0
        factors = {term: self.term_factor(term, iteration) for term in self.term_signs}
        if self.fresh_moments_after_early and iteration > 0 and iteration in self.early_iters.values():
            optim_wrapper['anonymizer'].optimizer.state.clear()  # its moments measured another objective
            log['fresh_moments_anonymizer'] = 1.0
        anonymized = None
        if iteration >= self.anonymizer_start_iter and (iteration + 1) % self.branch_steps == 0:
            for _ in range(self.anonymizer_steps):
                anonymized, anonymizer_log = self.anonymizer_update(batch, optim_wrapper, factors)
            log.update(anonymizer_log)
        for name in self.branches:
            warming = self.warming(name, iteration)
            if not warming and anonymized is None:
                with torch.no_grad():
                    anonymized = self.anonymize(batch)
            with self.stepping(name, optim_wrapper):
                loss, branch_log = self.branch_loss(name, batch['clips'] if warming else anonymized.detach(),
                                                    batch)
            optim_wrapper[name].update_params(loss)
            prefix = 'warmup_' if warming else ''
            log[f'{prefix}loss_{name}'] = loss.detach()
            log.update({prefix + k: v for k, v in branch_log.items()})
        if anonymized is not None:  # a method may have logged its own (output_logs)
            log.setdefault('saturated', saturated_fraction(anonymized))
        log.update({f'factor_{t}': factors[t] for t in self.term_branches})
        if self.guard is not None:
            self.guard.observe(iteration, log.get('saturated'),
                               log.get(self.guard_accuracy) if self.guard_accuracy else None)
        return OrderedDict(log)

    # ---- what the methods share (each has an ``action_branch`` and an ``anonymizer``) -------
    def action_loss(self, clips: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The action branch's cross-entropy on ``clips``, with its batch accuracy (``action_acc``,
        the curve the collapse guard reads)."""
        logits = self.action_branch(clips)
        accuracy = (logits.argmax(1) == actions).float().mean()
        return F.cross_entropy(logits, actions), dict(action_acc=accuracy.detach())

    def predict_samples(self, clips: torch.Tensor, data_samples):
        """``forward``'s ``'predict'`` mode: each sample gets the action branch's scores of its
        anonymized clip."""
        scores = self.action_branch(self.anonymizer(clips)).softmax(1)
        for sample, score in zip(data_samples, scores):
            sample.set_pred_score(score)
        return data_samples

    # ---- what a method defines ------------------------------------------------------------
    @abstractmethod
    def fit_batch(self, data: dict) -> dict:
        """The preprocessed batch as the method's losses take it; must hold ``clips``."""

    @abstractmethod
    def anonymizer_update(self, batch: dict, optim_wrapper: OptimWrapperDict,
                          factors: dict[str, float]) -> tuple[torch.Tensor, dict]:
        """The anonymizer's update(s) on ``objective``; returns its output clips (detached,
        bounded to [0, 1]) and logs."""

    @abstractmethod
    def anonymize(self, batch: dict) -> torch.Tensor:
        """The anonymizer's output clips in [0, 1], for iterations where it does not update."""

    @abstractmethod
    def branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        """The loss branch ``name`` lowers on ``clips`` (raw or anonymized), and logs."""

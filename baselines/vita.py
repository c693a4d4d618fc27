"""VITA: privacy-preserving deep action recognition by adversarial learning (Wu, H. Wang,
Z. Wang, Jin, Z. Wang: "Privacy-Preserving Deep Action Recognition: An Adversarial Learning
Framework and A New Dataset", TPAMI 2020; the RAPrivacy paper's reference [32]).

A degradation network fd, applied frame by frame, is trained against the action model fT and
an ensemble of M budget (privacy) models fb trained on the privacy labels. fd lowers

    L_fd = CE(fT(fd(x)), y) + 0.5 x mean over clips of max over the M models of
           BCE(fb_m(fd(x)), target)

where the target is all ones for every attribute (VITA's multi-label code; ``budget_target=
'uniform'`` takes 0.5, the maximum-entropy reading): the worst case over the ensemble, per clip,
of how far a budget model is from the uninformative answer. Each fb_m lowers its binary
cross-entropy toward the true privacy labels, frame by frame; the adversarial term reads its
logits averaged over the frames of a clip, as VITA's code does for videos. The budget models are
re-initialized every 200 steps (``restart``). The alternation, warm-ups, restarts and the guard
are ``benchmark.adversarial``'s; the reconstruction warm-up, the action branch and the update
are ``baselines.learned``'s.

Facts taken from the paper and its public code (REFERENCE section 4): fd = a 9x9 convolution,
two stride-2 3x3 convolutions, five residual blocks, two stride-2 transposed convolutions and a
9x9 convolution to RGB, with instance norm, output ``(tanh + 1) / 2`` (the code's
``(tanh + 1) x 127.5`` in [0, 1] units); gamma 0.5; budget restarts every 200 steps; Adam with
lr 1e-4 for fd, 1e-5 for fT and 1e-4 for fb; fd pretrained as an autoencoder (MSE).

What the paper or the code leaves open, and what this suite chose:

- the budget ensemble: M per-frame ResNets of different depths and widths
  (``budget_backbones``), standing in for VITA's ResNet-v1-50, ResNet-v2-50, MobileNet-v1 and
  MobileNet-v1-0.75, with one optimizer over all of them (VITA's one budget optimizer);
- fd's reconstruction pretraining is ``reconstruction_iters`` of MSE at the start of the fit;
  the branches start from scratch and learn on raw clips meanwhile (VITA pretrains fT and fb);
- a restart draws new random weights and the budget models then train for ``rewarm_iters`` on
  fd's output with the budget term off (VITA reloads its pretrained budget models and trains
  them further);
- per iteration, one step of fd, then one of fT and one of the ensemble, each branch on fd's
  output detached (VITA steps fT until its validation accuracy passes a threshold, with fd's
  parameters in fT's optimizer too, and fb five times on a separate image set);
- fT's lr: the branches warm up at a higher rate and drop to VITA's at the adversarial phase
  (the method config's schedule).

Profiles (``benchmark/configs/methods/vita.py``): ``paper`` keeps the networks and rates above.
``cpu`` is scaled to about 30 minutes per seed on two cores: fd width 8 (8-16-32 channels
against 32-64-128) with its 5 residual blocks, fT an R3D-18 at 16 base channels, M = 2 budget
models (per-frame ResNet-18s at 16 and 8 base channels), batches of 16 clips of 8 frames at
56 px, 600 warm-up and 1,000 adversarial iterations (four restarts), Adam 1e-3 for fd and 2e-3
for the branches (from scratch, VITA's 1e-5 leaves fT at chance in so few steps). ``smoke``
shrinks it to seconds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.learned import DegradationModel, frame_backbone
from benchmark.anonymizer import Anonymizer
from benchmark.data import DEFAULT_MEAN, DEFAULT_STD
from benchmark.registry import ANONYMIZERS, MODELS

BUDGET_TARGETS = ('ones', 'uniform')


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2),
              nn.InstanceNorm2d(c_out, affine=True)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, padding=1, output_padding=1),
                         nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), _conv(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


@ANONYMIZERS.register_module()
class VITADegradation(Anonymizer):
    """VITA's degradation network fd, applied to every frame, output in [0, 1].

    Frames whose sides are not multiples of 4 are padded (reflection) to the next one and
    cropped back.

    Args:
        width (int): Channels of the first layer (VITA: 32); the next two double it. Defaults
            to 32.
        residual_blocks (int): Residual blocks at a quarter of the frame size. Defaults to 5.
    """

    table_name = 'VITA'
    privacy_learning = True
    learns = True
    per_frame = True  # 2D layers; instance norm works on each frame alone

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        if int(width) != width or width < 1 or int(residual_blocks) != residual_blocks or residual_blocks < 0:
            raise ValueError(f'anonymizer width must be a whole number >= 1 and residual_blocks >= 0, got '
                             f'width={width}, residual_blocks={residual_blocks}')
        w = int(width)
        self.net = nn.Sequential(
            _conv(3, w, 9), _conv(w, 2 * w, 3, 2), _conv(2 * w, 4 * w, 3, 2),
            *[_Residual(4 * w) for _ in range(residual_blocks)],
            _up(4 * w, 2 * w), _up(2 * w, w), _conv(w, 3, 9, relu=False))

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        self.check_aux(aux)
        n, c, t, h, w = clips.shape
        x = clips.transpose(1, 2).reshape(n * t, c, h, w)
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode='reflect')
        frames = (torch.tanh(self.net(x)[..., :h, :w]) + 1) / 2
        return frames.reshape(n, t, c, h, w).transpose(1, 2).contiguous()


class BudgetEnsemble(nn.Module):
    """M per-frame privacy classifiers: each a backbone, global pooling and a linear layer."""

    def __init__(self, backbones: list[dict], num_attributes: int) -> None:
        super().__init__()
        self.backbones = nn.ModuleList(MODELS.build(b) for b in backbones)
        self.heads = nn.ModuleList(nn.Linear(b.feat_dim, num_attributes) for b in self.backbones)
        self.register_buffer('mean', torch.tensor(DEFAULT_MEAN).view(1, 3, 1, 1, 1), False)
        self.register_buffer('std', torch.tensor(DEFAULT_STD).view(1, 3, 1, 1, 1), False)
        self.init_weights()

    def init_weights(self) -> None:
        """New random weights for every model (a restart)."""
        for backbone, head in zip(self.backbones, self.heads):
            backbone.init_weights()
            head.reset_parameters()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(M, N, T', A)`` of clips ``(N, 3, T, H, W)`` in [0, 1]."""
        x = (clips - self.mean) / self.std
        return torch.stack([head(backbone(x).mean(dim=(3, 4)).transpose(1, 2))
                            for backbone, head in zip(self.backbones, self.heads)])


def worst_case_budget_loss(logits: torch.Tensor, target: float) -> tuple[torch.Tensor, torch.Tensor]:
    """VITA's adversarial budget term and, per clip, the model that gave it.

    Args:
        logits (Tensor): ``(M, N, A)`` clip-level logits of the M budget models.
        target (float): The value every attribute is pushed toward (1: all ones, 0.5: uniform).

    Returns:
        The mean over clips of the maximum over models of the binary cross-entropy toward
        ``target`` (averaged over attributes), and the ``(N,)`` index of that model.
    """
    per_clip = F.binary_cross_entropy_with_logits(
        logits, torch.full_like(logits, target), reduction='none').mean(-1)  # (M, N)
    worst, which = per_clip.max(0)
    return worst.mean(), which


@MODELS.register_module()
class VITAModel(DegradationModel):
    """fd against the action model fT (lowered cross-entropy) and an ensemble of budget models
    (the worst case of their cross-entropy toward the uninformative target, lowered).

    Args:
        anonymizer (dict): ``VITADegradation`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        num_attributes (int): Privacy attributes. Defaults to 5 (the VP datasets').
        action_backbone (dict, optional): fT's video backbone. Defaults to a 3D ResNet-18.
        budget_backbones (list of dict, optional): One per-frame backbone per budget model.
            Defaults to ResNet-50, -34, -18 and -18 at 48 base channels (M = 4).
        budget_target (str): ``'ones'`` (VITA's) or ``'uniform'``. Defaults to ``'ones'``.
        **kwargs: ``baselines.learned.DegradationModel``'s (``reconstruction_iters``,
            ``reconstruction_loss``, ``dropout``) and ``AdversarialModel``'s (``loss_weights`` of ``reconstruction``,
            ``action`` and ``budget``, ``warmup_iters``, ``restart``, ``guard``, ...).
    """

    term_signs = dict(reconstruction=1, action=1, budget=1)
    term_branches = dict(action='action_branch', budget='budget_branch')
    default_weights = dict(reconstruction=1.0, action=1.0, budget=0.5)
    uses_privacy_labels = True

    def __init__(self, anonymizer: dict, num_classes: int | None = None, num_attributes: int = 5,
                 action_backbone: dict | None = None, budget_backbones: list | None = None,
                 budget_target: str = 'ones', **kwargs) -> None:
        if budget_target not in BUDGET_TARGETS:
            raise ValueError(f"fit.model.budget_target must be 'ones' or 'uniform', got {budget_target!r}")
        kwargs.setdefault('reconstruction_loss', 'mse')
        super().__init__(anonymizer, num_classes, 'budget_branch', action_backbone,
                         num_attributes=num_attributes, **kwargs)
        backbones = budget_backbones or [frame_backbone(50), frame_backbone(34), frame_backbone(18),
                                         frame_backbone(18, 48)]
        self.budget_branch = BudgetEnsemble(list(backbones), num_attributes)
        self.budget_target = 1.0 if budget_target == 'ones' else 0.5

    def privacy_term(self, term: str, clips: torch.Tensor, batch: dict) -> torch.Tensor:
        """The worst case over the ensemble (``worst_case_budget_loss``) on clip-level logits."""
        return worst_case_budget_loss(self.budget_branch(clips).mean(2), self.budget_target)[0]

    def privacy_branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        """Each model's binary cross-entropy toward the true labels, frame by frame, averaged
        over the models; logs the ensemble's mean accuracy per attribute at probability 0.5."""
        logits = self.budget_branch(clips)  # (M, N, T', A)
        labels = batch['privacy'][None, :, None].expand_as(logits)
        accuracy = ((logits > 0).float() == labels).float().mean()
        return F.binary_cross_entropy_with_logits(logits, labels), dict(budget_acc=accuracy.detach())

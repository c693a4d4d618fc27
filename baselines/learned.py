"""What SPAct and VITA share: a frame-to-frame anonymizer trained against an action branch and a
privacy branch, after a reconstruction warm-up.

``DegradationModel`` is an ``benchmark.adversarial.AdversarialModel`` whose anonymizer maps
clips to clips directly (SPAct's UNet, VITA's degradation network). It holds the anonymizer,
the action branch (``raprivacy.model.ActionBranch``: a video backbone and a linear classifier)
and the terms both methods have:

- ``reconstruction``: the distance of the output to the input clip, on for the first
  ``reconstruction_iters`` iterations only (``early_iters``): both methods first train their
  anonymizer toward the identity (SPAct: fA warmed up by reconstruction; VITA: fd pretrained
  as an autoencoder). ``'l1'`` or ``'mse'``;
- ``action``: the action branch's cross-entropy on the output, lowered by the anonymizer.

A subclass adds its privacy branch, its privacy term (``privacy_term``) and that branch's
loss (``privacy_branch_loss``). Only the terms whose schedule factor is above 0 are computed.
"""
from __future__ import annotations

from abc import abstractmethod

import mmaction.models  # noqa: F401  registers the video backbones (ResNet3d) the branches use
import torch
import torch.nn.functional as F

from benchmark.adversarial import AdversarialModel
from benchmark.anonymizer import build_anonymizer
from raprivacy.model import ActionBranch

RECONSTRUCTION_LOSSES = {'l1': F.l1_loss, 'mse': F.mse_loss}


def frame_backbone(depth: int, base_channels: int = 64) -> dict:
    """A ResNet applied frame by frame: mmaction2's ResNet3d without temporal inflation."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)


def video_backbone(depth: int, base_channels: int = 64) -> dict:
    """mmaction2's 3D ResNet."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False)


class DegradationModel(AdversarialModel):
    """A frame-to-frame anonymizer, its action branch and a privacy branch (see the module).

    Args:
        anonymizer (dict): The anonymizer's config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        privacy_branch (str): The privacy branch's submodule name, which a subclass builds.
        action_backbone (dict, optional): mmaction2 video backbone of the action branch.
            Defaults to a 3D ResNet-18.
        reconstruction_iters (int): Iterations of the reconstruction warm-up. Defaults to 0.
        reconstruction_loss (str): ``'l1'`` or ``'mse'``. Defaults to ``'l1'``.
        dropout (float): Dropout before the action classifier. Defaults to 0.0.
        **schedule: ``loss_weights``, ``warmup_iters``, ``ramp_iters``, ``restart``, ``guard``
            and the other ``AdversarialModel`` arguments.
    """

    term_branches: dict[str, str] = {}
    guard_accuracy = 'action_acc'
    uses_privacy_labels = False

    def __init__(self, anonymizer: dict, num_classes: int | None, privacy_branch: str,
                 action_backbone: dict | None = None, reconstruction_iters: int = 0,
                 reconstruction_loss: str = 'l1', dropout: float = 0.0, **schedule) -> None:
        name = type(self).__name__
        if num_classes is None:
            raise ValueError(f'{name} needs fit.model.num_classes (the action classes of the training set)')
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f'fit.model.reconstruction_loss must be one of '
                             f'{", ".join(RECONSTRUCTION_LOSSES)}, got {reconstruction_loss!r}')
        if reconstruction_iters < 0:
            raise ValueError(f'fit.model.reconstruction_iters must be >= 0, got {reconstruction_iters}')
        super().__init__(('action_branch', privacy_branch), chance=1.0 / num_classes,
                         early_iters=dict(reconstruction=reconstruction_iters), **schedule)
        self.anonymizer = build_anonymizer(anonymizer)
        self.action_branch = ActionBranch(action_backbone or video_backbone(18), num_classes, dropout)
        self.reconstruction = RECONSTRUCTION_LOSSES[reconstruction_loss]

    # ---- the batch --------------------------------------------------------------------------
    def fit_batch(self, data: dict) -> dict:
        """Clips, action classes, per-batch video indices and, if the method uses them, the
        privacy labels ``(N, A)``."""
        clips = data['inputs'][:, 0]  # training gives one view per clip
        samples = data['data_samples']
        ids: dict = {}
        videos = [ids.setdefault(s.metainfo.get('video_id', i), len(ids)) for i, s in enumerate(samples)]
        batch = dict(clips=clips, videos=torch.tensor(videos, device=clips.device),
                     actions=torch.cat([s.gt_labels.item.view(-1)[:1] for s in samples]).long().to(clips.device))
        if self.uses_privacy_labels:
            batch['privacy'] = torch.tensor([s.metainfo['privacy'] for s in samples],
                                            dtype=torch.float32, device=clips.device)
        return batch

    # ---- the terms --------------------------------------------------------------------------
    def terms(self, out: torch.Tensor, batch: dict, factors: dict[str, float] | None = None
              ) -> dict[str, torch.Tensor]:
        """The anonymizer's terms on its output ``out``, those with factor above 0 (all when
        ``factors`` is None)."""
        on = [t for t in self.term_signs if factors is None or factors.get(t, 1.0) > 0]
        values = {}
        if 'reconstruction' in on:
            values['reconstruction'] = self.reconstruction(out, batch['clips'])
        if 'action' in on:
            values['action'] = F.cross_entropy(self.action_branch(out), batch['actions'])
        values.update({t: self.privacy_term(t, out, batch) for t in on if t not in ('reconstruction', 'action')})
        return values

    @abstractmethod
    def privacy_term(self, term: str, clips: torch.Tensor, batch: dict) -> torch.Tensor:
        """The value of privacy term ``term`` on ``clips``."""

    @abstractmethod
    def privacy_branch_loss(self, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        """The loss the privacy branch lowers on ``clips``, and logs."""

    # ---- the updates ------------------------------------------------------------------------
    def anonymizer_update(self, batch: dict, optim_wrapper, factors: dict[str, float]
                          ) -> tuple[torch.Tensor, dict]:
        if not any(factors.get(t, 1.0) > 0 for t in self.term_signs):  # a warm-up without reconstruction
            return self.anonymize(batch), {}
        with self.stepping('anonymizer', optim_wrapper):
            out = self.anonymizer(batch['clips'])
            terms = self.terms(out, batch, factors)
            total = self.objective(terms, factors)
        optim_wrapper['anonymizer'].update_params(total)
        log = {f'loss_{name}': value.detach() for name, value in terms.items()}
        log['loss_anonymizer'] = total.detach()
        return out.detach(), log

    @torch.no_grad()
    def anonymize(self, batch: dict) -> torch.Tensor:
        return self.anonymizer(batch['clips'])

    def branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        if name == 'action_branch':
            return self.action_loss(clips, batch['actions'])
        return self.privacy_branch_loss(clips, batch)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``'tensor'``: the anonymized clips; ``'loss'``: each term weighted and signed (their
        sum is the anonymizer's objective once the warm-ups are over), without updating anything."""
        clips = inputs[:, 0] if inputs.dim() == 6 else inputs
        if mode == 'loss':
            batch = self.fit_batch(dict(inputs=clips[:, None], data_samples=data_samples))
            terms = self.terms(self.anonymizer(clips), batch)
            return {f'loss_{name}': self.objective({name: value}, {}) for name, value in terms.items()}
        if mode != 'tensor':
            raise ValueError(f"mode must be 'tensor' or 'loss', got {mode!r}")
        return self.anonymizer(clips)

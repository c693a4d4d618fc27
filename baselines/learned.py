"""What the learned baselines share: an anonymizer that maps clips to clips, trained against an
action branch and a privacy branch (or several) on the suite's adversarial trainer.

``LearnedAnonymizerModel`` is a ``benchmark.adversarial.AdversarialModel`` (routing, warm-ups,
ramps, restarts, guard) holding the anonymizer and the action branch
(``raprivacy.model.ActionBranch``: a video backbone, a linear classifier, cross-entropy). It
makes the batch (clips, action classes, per-batch video indices and, for a method that reads
them, the five privacy bits ``ClipDataset`` puts in each sample's ``metainfo['privacy']``),
updates the anonymizer on its objective, routes each branch to its loss and answers
``forward``. Two families build on it:

- ``DegradationModel`` (SPAct, VITA): a frame-to-frame anonymizer first taught the identity;
  its terms are ``reconstruction`` (the distance of the output to the input clip, on for the
  first ``reconstruction_iters`` iterations only: SPAct warms fA up by reconstruction, VITA
  pretrains fd as an autoencoder; ``'l1'`` or ``'mse'``), ``action`` (the action branch's
  cross-entropy on the output, lowered) and the method's privacy term (``privacy_term``).
- ``AttributeAdversaryModel`` (Collective, STPrivacy): privacy branches trained on the privacy
  labels; the method gives its terms and, when it needs more than the clips, its training
  output (``output``).

A method adds its privacy branch and that branch's loss (``privacy_branch_loss``). Only the
terms whose schedule factor is above 0 are computed.
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


def frame_backbone(depth: int = 50, base_channels: int = 64) -> dict:
    """A ResNet applied frame by frame: mmaction2's ResNet3d without temporal inflation."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)


def video_backbone(depth: int = 50, base_channels: int = 64) -> dict:
    """mmaction2's 3D ResNet."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False)


class LearnedAnonymizerModel(AdversarialModel):
    """A clip-to-clip anonymizer, its action branch and the method's privacy branches.

    Args:
        anonymizer (dict): The anonymizer's config (the protocol injects the method's).
        num_classes (int): Action classes of the training set (the protocol injects them).
        branches (tuple of str): The trained branches, ``action_branch`` first.
        action_backbone (dict, optional): mmaction2 video backbone of the action branch.
            Defaults to a 3D ResNet of ``action_depth`` layers.
        dropout (float): Dropout before the action classifier. Defaults to 0.0.
        num_attributes (int, optional): Privacy attributes per clip, checked against each batch
            when the method reads the privacy labels.
        **schedule: ``loss_weights``, ``warmup_iters``, ``ramp_iters``, ``restart``, ``guard``,
            ``early_iters`` and the other ``AdversarialModel`` arguments.
    """

    guard_accuracy = 'action_acc'
    uses_privacy_labels = False
    action_depth = 18

    def __init__(self, anonymizer: dict, num_classes: int | None, branches: tuple[str, ...],
                 action_backbone: dict | None = None, dropout: float = 0.0,
                 num_attributes: int | None = None, **schedule) -> None:
        name = type(self).__name__
        if num_classes is None:
            raise ValueError(f'{name} needs fit.model.num_classes (the action classes of the training set)')
        if num_attributes is not None and num_attributes < 1:
            raise ValueError(f'fit.model.num_attributes must be >= 1, got {num_attributes}')
        super().__init__(branches, chance=1.0 / num_classes, **schedule)
        self.num_attributes = None if num_attributes is None else int(num_attributes)
        self.anonymizer = build_anonymizer(anonymizer)
        self.action_branch = ActionBranch(action_backbone or video_backbone(self.action_depth),
                                          num_classes, dropout)

    # ---- the batch --------------------------------------------------------------------------
    def fit_batch(self, data: dict) -> dict:
        """Clips ``(N, 3, T, H, W)``, action classes ``(N,)``, per-batch video indices and, if
        the method reads them, the privacy bits ``(N, A)``."""
        clips = data['inputs'][:, 0]  # training gives one view per clip
        samples = data['data_samples']
        ids: dict = {}
        videos = [ids.setdefault(s.metainfo.get('video_id', i), len(ids)) for i, s in enumerate(samples)]
        batch = dict(clips=clips, videos=torch.tensor(videos, device=clips.device),
                     actions=torch.cat([s.gt_labels.item.view(-1)[:1] for s in samples]).long().to(clips.device))
        if self.uses_privacy_labels:
            if any('privacy' not in s.metainfo for s in samples):
                raise ValueError(f'{type(self).__name__} reads the privacy labels, but the fit batch has '
                                 f'none: fit it on a dataset with privacy labels (ClipDataset gives them)')
            batch['privacy'] = torch.tensor([s.metainfo['privacy'] for s in samples],
                                            dtype=torch.float32, device=clips.device)
            if self.num_attributes is not None and batch['privacy'].shape[1] != self.num_attributes:
                raise ValueError(f'fit.model.num_attributes={self.num_attributes} but the dataset has '
                                 f'{batch["privacy"].shape[1]} privacy attributes')
        return batch

    # ---- what a method gives ----------------------------------------------------------------
    def output(self, batch: dict) -> dict:
        """The anonymizer's training pass: at least ``clips``, the output the losses read, and
        whatever else the method's terms need."""
        return dict(clips=self.anonymizer(batch['clips']))

    @abstractmethod
    def terms(self, out: dict, batch: dict, factors: dict[str, float] | None = None
              ) -> dict[str, torch.Tensor]:
        """The anonymizer's terms on ``out``, those with factor above 0 (all when ``factors``
        is None)."""

    @abstractmethod
    def privacy_branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        """The loss privacy branch ``name`` lowers on ``clips``, and logs."""

    def output_logs(self, out: dict) -> dict:
        """Extra logs of one training pass (none by default)."""
        return {}

    @staticmethod
    def on(term: str, factors: dict[str, float] | None) -> bool:
        return factors is None or factors.get(term, 1.0) > 0

    # ---- the updates ------------------------------------------------------------------------
    def anonymizer_update(self, batch: dict, optim_wrapper, factors: dict[str, float]
                          ) -> tuple[torch.Tensor, dict]:
        if not any(self.on(t, factors) for t in self.term_signs):  # every term off: no step
            return self.anonymize(batch), {}
        with self.stepping('anonymizer', optim_wrapper):
            out = self.output(batch)
            terms = self.terms(out, batch, factors)
            total = self.objective(terms, factors)
        optim_wrapper['anonymizer'].update_params(total)
        log = {f'loss_{name}': value.detach() for name, value in terms.items()}
        log['loss_anonymizer'] = total.detach()
        log.update(self.output_logs(out))
        return out['clips'].detach(), log

    @torch.no_grad()
    def anonymize(self, batch: dict) -> torch.Tensor:
        return self.anonymizer(batch['clips'])

    def branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        if name == 'action_branch':
            return self.action_loss(clips, batch['actions'])
        return self.privacy_branch_loss(name, clips, batch)

    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        """``'tensor'``: anonymized clips; ``'predict'``: samples with the action branch's scores
        of the anonymized clips; ``'loss'``: each term weighted and signed (their sum is the
        anonymizer's objective once the warm-ups are over), without updating anything."""
        clips = inputs[:, 0] if inputs.dim() == 6 else inputs
        if mode == 'tensor':
            return self.anonymizer(clips)
        if mode == 'predict':
            return self.predict_samples(clips, data_samples)
        if mode == 'loss':
            batch = self.fit_batch(dict(inputs=clips[:, None], data_samples=data_samples))
            terms = self.terms(self.output(batch), batch)
            return {f'loss_{name}': self.objective({name: value}, {}) for name, value in terms.items()}
        raise ValueError(f"mode must be 'tensor', 'predict' or 'loss', got {mode!r}")


class DegradationModel(LearnedAnonymizerModel):
    """A frame-to-frame anonymizer first taught the identity (SPAct, VITA; see the module).

    Args:
        anonymizer (dict): The anonymizer's config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        privacy_branch (str): The privacy branch's submodule name, which a subclass builds.
        action_backbone (dict, optional): mmaction2 video backbone of the action branch.
            Defaults to a 3D ResNet-18.
        reconstruction_iters (int): Iterations of the reconstruction warm-up. Defaults to 0.
        reconstruction_loss (str): ``'l1'`` or ``'mse'``. Defaults to ``'l1'``.
        **kwargs: ``LearnedAnonymizerModel``'s (``dropout``, ``num_attributes``) and
            ``AdversarialModel``'s.
    """

    term_branches: dict[str, str] = {}

    def __init__(self, anonymizer: dict, num_classes: int | None, privacy_branch: str,
                 action_backbone: dict | None = None, reconstruction_iters: int = 0,
                 reconstruction_loss: str = 'l1', **kwargs) -> None:
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f'fit.model.reconstruction_loss must be one of '
                             f'{", ".join(RECONSTRUCTION_LOSSES)}, got {reconstruction_loss!r}')
        if reconstruction_iters < 0:
            raise ValueError(f'fit.model.reconstruction_iters must be >= 0, got {reconstruction_iters}')
        super().__init__(anonymizer, num_classes, ('action_branch', privacy_branch), action_backbone,
                         early_iters=dict(reconstruction=reconstruction_iters), **kwargs)
        self.reconstruction = RECONSTRUCTION_LOSSES[reconstruction_loss]

    def terms(self, out: dict, batch: dict, factors: dict[str, float] | None = None
              ) -> dict[str, torch.Tensor]:
        clips = out['clips']
        values = {}
        if self.on('reconstruction', factors):
            values['reconstruction'] = self.reconstruction(clips, batch['clips'])
        if self.on('action', factors):
            values['action'] = F.cross_entropy(self.action_branch(clips), batch['actions'])
        values.update({t: self.privacy_term(t, clips, batch) for t in self.term_signs
                       if t not in ('reconstruction', 'action') and self.on(t, factors)})
        return values

    @abstractmethod
    def privacy_term(self, term: str, clips: torch.Tensor, batch: dict) -> torch.Tensor:
        """The value of privacy term ``term`` on ``clips``."""


class AttributeAdversaryModel(LearnedAnonymizerModel):
    """An anonymizer against privacy branches that read the privacy labels (Collective,
    STPrivacy); its action branch defaults to a 3D ResNet-50, ``num_attributes`` to 5
    (VP-UCF101, VP-HMDB51, vp_synth)."""

    uses_privacy_labels = True
    action_depth = 50

    def __init__(self, anonymizer: dict, num_classes: int | None, branches: tuple[str, ...],
                 num_attributes: int = 5, action_backbone: dict | None = None, dropout: float = 0.0,
                 **schedule) -> None:
        super().__init__(anonymizer, num_classes, branches, action_backbone, dropout,
                         num_attributes=num_attributes, **schedule)

"""What Collective and STPrivacy share: an anonymizer trained against an action branch and
privacy models that read the privacy labels.

``AttributeAdversaryModel`` is a ``benchmark.adversarial.AdversarialModel`` (the suite's shared
trainer: routing, warm-ups, ramps, restarts, guard) whose anonymizer maps clips to clips. It
holds the anonymizer, the action branch (``raprivacy.model.ActionBranch``: a video backbone, a
linear classifier, cross-entropy) and reads each clip's five privacy bits from its data
sample (``ClipDataset`` puts them in ``metainfo['privacy']``). A subclass builds its privacy
branch and gives its terms (``terms``), the anonymizer's training output (``output``) and the
privacy branch's own loss (``privacy_branch_loss``).
"""
from __future__ import annotations

from abc import abstractmethod

import mmaction.models  # noqa: F401  registers the video backbones (ResNet3d) the branches use
import torch

from benchmark.adversarial import AdversarialModel
from benchmark.anonymizer import build_anonymizer
from raprivacy.model import ActionBranch


def frame_backbone(depth: int = 50, base_channels: int = 64) -> dict:
    """A ResNet applied frame by frame: mmaction2's ResNet3d without temporal inflation."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False)


def video_backbone(depth: int = 50, base_channels: int = 64) -> dict:
    """mmaction2's 3D ResNet."""
    return dict(type='ResNet3d', depth=depth, base_channels=base_channels, pretrained=None,
                pretrained2d=False)


class AttributeAdversaryModel(AdversarialModel):
    """An anonymizer, its action branch and a privacy branch trained on the privacy labels.

    Args:
        anonymizer (dict): The anonymizer's config (the protocol injects the method's).
        num_classes (int): Action classes of the training set (the protocol injects them).
        branches (tuple of str): The trained branches, ``action_branch`` first.
        num_attributes (int): Privacy attributes per clip. Defaults to 5 (VP-UCF101, VP-HMDB51,
            vp_synth).
        action_backbone (dict, optional): mmaction2 video backbone of the action branch.
            Defaults to a 3D ResNet-50.
        dropout (float): Dropout before the action classifier. Defaults to 0.0.
        **schedule: ``loss_weights``, ``warmup_iters``, ``ramp_iters``, ``restart``, ``guard``
            and the other ``AdversarialModel`` arguments.
    """

    guard_accuracy = 'action_acc'

    def __init__(self, anonymizer: dict, num_classes: int | None, branches: tuple[str, ...],
                 num_attributes: int = 5, action_backbone: dict | None = None, dropout: float = 0.0,
                 **schedule) -> None:
        if num_classes is None:
            raise ValueError(f'{type(self).__name__} needs fit.model.num_classes (the action classes '
                             f'of the training set)')
        if num_attributes < 1:
            raise ValueError(f'fit.model.num_attributes must be >= 1, got {num_attributes}')
        super().__init__(branches, chance=1.0 / num_classes, **schedule)
        self.num_attributes = int(num_attributes)
        self.anonymizer = build_anonymizer(anonymizer)
        self.action_branch = ActionBranch(action_backbone or video_backbone(50), num_classes, dropout)

    # ---- the batch --------------------------------------------------------------------------
    def fit_batch(self, data: dict) -> dict:
        """Clips ``(N, 3, T, H, W)``, action classes ``(N,)`` and privacy bits ``(N, A)``."""
        clips = data['inputs'][:, 0]  # training gives one view per clip
        samples = data['data_samples']
        if any('privacy' not in s.metainfo for s in samples):
            raise ValueError(f'{type(self).__name__} reads the privacy labels, but the fit batch has '
                             f'none: fit it on a dataset with privacy labels (ClipDataset gives them)')
        privacy = torch.tensor([s.metainfo['privacy'] for s in samples], dtype=torch.float32,
                               device=clips.device)
        if privacy.shape[1] != self.num_attributes:
            raise ValueError(f'fit.model.num_attributes={self.num_attributes} but the dataset has '
                             f'{privacy.shape[1]} privacy attributes')
        actions = torch.cat([s.gt_labels.item.view(-1)[:1] for s in samples]).long().to(clips.device)
        return dict(clips=clips, actions=actions, privacy=privacy)

    # ---- what a method gives ----------------------------------------------------------------
    @abstractmethod
    def output(self, batch: dict) -> dict:
        """The anonymizer's training pass: at least ``clips``, the output the losses read
        (bounded to [0, 1] by ``clamp_inward``), and whatever else its terms need."""

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
        anonymizer's objective once every branch has warmed up), without updating anything."""
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

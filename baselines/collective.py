"""Collective: an integrative transformation trained so that a collection of sensitive-attribute
inference models fails while the utility task succeeds.

D. Zhang, Yao, Chen, Long, S. Wang: "Collective Protection: Preventing Sensitive Inferences via
Integrative Transformation", ICDM 2019 (reference [34] of the RAPrivacy paper). One
transformation network protects every sensitive attribute at once (integrative, rather than
one sanitizer per attribute) against a collection of inference models, one per attribute,
while a utility model (here the action branch) still reads the transformed data. Applied here
to video clips, frame by frame, with the privacy labels of the dataset.

Training is the suite's shared adversarial trainer (``benchmark.adversarial``): per iteration
the transformation takes one step on ``action + privacy + fidelity`` (weights
``loss_weights``), then the action branch on cross-entropy and the inference models on
binary cross-entropy against the true attributes, both on the transformed clips, detached.

What the paper leaves open for clips, and what this suite chose:

- the network: the paper transforms feature vectors; for frames, a small convolutional
  encoder-decoder (3x3 convolutions, one stride-2 stage, ``blocks`` residual blocks, bilinear
  upsampling) that re-synthesizes the frame from its half-resolution features
  (``residual=False``, every profile), taught the identity by the ``fidelity`` term while the
  branches warm up (an early term, ``early_iters``), then free of it. The other form,
  ``residual=True``, adds the decoder's output to the frame and starts as the identity (its
  last convolution at zero); on vp_synth (cpu profile, seeds 0, 1, 2 and four variants) it
  stayed within a few hundredths of the identity, the collection kept up with it, and a fresh
  target read the attributes as well as from raw frames (README, "Collective and STPrivacy").
  The re-synthesized frame cannot carry detail at the pixel pitch (it is drawn from
  upsampled half-resolution features), so part of what it hides, it hides by construction, as
  2x downsampling does; the README gives the fit without the privacy term beside it. Frames
  are transformed one by one (``per_frame``), so the protocol may anonymize each video once;
- the collection: one inference model per privacy attribute (a per-frame ResNet, pooled over
  the clip, one logit), each trained on its own attribute;
- how "fails" is scored: the transformation lowers the mean over the collection of the binary
  cross-entropy between each model's prediction and 1/2 (``privacy``: the model cannot tell
  the attribute either way), not the raw cross-entropy raised, which a transformation can
  also raise by teaching the models the opposite labels, information a fresh model recovers;
- ``fidelity``: an L1 distance to the input frame; with ``residual=False`` on during the
  warm-up only (it teaches the identity), with ``residual=True`` throughout at a small weight,
  so the transformation changes what the terms ask for and little else;
- warm-ups, ramp and guard: as the suite's other learned methods, from the method config.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.learned import AttributeAdversaryModel, frame_backbone
from benchmark.adversarial import clamp_inward
from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS, MODELS
from raprivacy.model import ActionBranch


class _Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x):
        return F.relu(x + self.body(x))


@ANONYMIZERS.register_module()
class CollectiveTransform(Anonymizer):
    """The integrative transformation, frame by frame, clamped to [0, 1]: the frame plus a
    learned residual (``residual=True``), or the frame re-synthesized from its features at half
    resolution (``residual=False``, an encoder-decoder taught the identity by the fidelity term
    during the warm-up).

    Args:
        width (int): Channels of the first stage (the second has twice as many). Defaults to 32.
        blocks (int): Residual blocks at half resolution. Defaults to 4.
        residual (bool): Add the decoder's output to the frame (its last convolution then starts
            at zero: the identity). Defaults to True.
    """

    table_name = 'Collective'
    privacy_learning = True
    learns = True
    per_frame = True

    def __init__(self, width: int = 32, blocks: int = 4, residual: bool = True) -> None:
        super().__init__()
        self.residual = bool(residual)
        if width < 1 or blocks < 0:
            raise ValueError(f'CollectiveTransform: need width >= 1 and blocks >= 0, got width={width}, '
                             f'blocks={blocks}')
        self.encode = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                    *[_Residual(2 * width) for _ in range(blocks)])
        self.decode = nn.Sequential(nn.Conv2d(2 * width, width, 3, padding=1), nn.ReLU(inplace=True),
                                    nn.Conv2d(width, 3, 3, padding=1))
        self.init_weights()

    def init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.reset_parameters()
        if self.residual:
            last = self.decode[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def transform(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips ``(N, 3, T, H, W)`` in [0, 1] -> the unclamped transformed clips."""
        n, c, t, h, w = clips.shape
        frames = clips.transpose(1, 2).reshape(n * t, c, h, w)
        hidden = self.encode(frames)
        hidden = F.interpolate(hidden, size=(h, w), mode='bilinear', align_corners=False)
        out = self.decode(hidden)
        if self.residual:
            out = frames + out
        return out.view(n, t, c, h, w).transpose(1, 2)

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        self.check_aux(aux)
        # the values of a plain clamp; in training, the gradient back into range still passes
        # (a fresh re-synthesizing decoder can start with every pixel below 0)
        return clamp_inward(self.transform(clips)).contiguous()


class InferenceCollection(nn.ModuleList):
    """One inference model per sensitive attribute; ``forward`` gives logits ``(N, A)``."""

    def __init__(self, backbone: dict, num_attributes: int) -> None:
        super().__init__(ActionBranch(backbone, 1, dropout=0.0) for _ in range(num_attributes))

    def init_weights(self) -> None:
        for model in self:
            model.init_weights()

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(clips) for model in self], dim=1)


@MODELS.register_module()
class CollectiveModel(AttributeAdversaryModel):
    """The transformation, the action branch and the collection of inference models.

    Args:
        anonymizer (dict): ``CollectiveTransform`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        num_attributes (int): Privacy attributes, one inference model each. Defaults to 5.
        action_backbone (dict, optional): Video backbone of the action branch. Defaults to a
            3D ResNet-50.
        inference_backbone (dict, optional): Per-frame backbone of each inference model.
            Defaults to a ResNet-50 (``frame_backbone(50)``).
        dropout (float): Dropout before the action classifier. Defaults to 0.0.
        **schedule: ``loss_weights`` (``action``, ``privacy``, ``fidelity``; defaults 1, 1 and
            0.1), ``warmup_iters``, ``ramp_iters``, ``restart``, ``guard`` and the other
            ``AdversarialModel`` arguments.
    """

    term_signs = dict(action=1, privacy=1, fidelity=1)
    term_branches = dict(action='action_branch', privacy='inference_models')
    default_weights = dict(action=1.0, privacy=1.0, fidelity=0.1)

    def __init__(self, anonymizer: dict, num_classes: int | None = None, num_attributes: int = 5,
                 action_backbone: dict | None = None, inference_backbone: dict | None = None,
                 dropout: float = 0.0, **schedule) -> None:
        super().__init__(anonymizer, num_classes, ('action_branch', 'inference_models'),
                         num_attributes=num_attributes, action_backbone=action_backbone, dropout=dropout,
                         **schedule)
        self.inference_models = InferenceCollection(inference_backbone or frame_backbone(50), num_attributes)

    def output(self, batch: dict) -> dict:
        return dict(clips=clamp_inward(self.anonymizer.transform(batch['clips'])))

    def terms(self, out: dict, batch: dict, factors: dict[str, float] | None = None
              ) -> dict[str, torch.Tensor]:
        clips, values = out['clips'], {}
        if self.on('action', factors):
            values['action'] = F.cross_entropy(self.action_branch(clips), batch['actions'])
        if self.on('privacy', factors):
            logits = self.inference_models(clips)
            values['privacy'] = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.5))
        if self.on('fidelity', factors):
            values['fidelity'] = F.l1_loss(clips, batch['clips'])
        return values

    def privacy_branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        logits = self.inference_models(clips)
        accuracy = ((logits > 0).float() == batch['privacy']).float().mean()
        return F.binary_cross_entropy_with_logits(logits, batch['privacy']), dict(privacy_acc=accuracy.detach())

"""SPAct: self-supervised privacy preservation for action recognition (Dave, Chen, Shah, CVPR
2022; the RAPrivacy paper's reference [8]).

A UNet anonymizer fA, applied frame by frame, is first trained to reconstruct its input; then,
per batch, fA takes one step on ``w_action x CE(fT(fA(x)), y) - w_privacy x NT-Xent(fB(fA(x)))``
and the branches take one step each on the anonymized clips: the action model fT on its
cross-entropy, the privacy model fB (per-frame ResNet features, MLP projection, NT-Xent at
temperature 0.1 with two augmented views of a clip as positives) on NT-Xent. No privacy label
is used anywhere. The alternation, warm-ups and the guard are ``benchmark.adversarial``'s; the
reconstruction warm-up, the action branch and the update are ``baselines.learned``'s.

Facts taken from the paper and its public code (REFERENCE section 4): UNet fA warmed up by
reconstruction at lr 1e-3, then Adam 1e-4 for every part; fT an R3D-18; fB a ResNet-50 with an
MLP 2048-2048-128; NT-Xent temperature 0.1; fA updated first, then fB and fT.

What the paper or the code leaves open, and what this suite chose:

- fA's layout: a UNet of ``depth`` levels (two 3x3 convolutions with batch norm and ReLU per
  level, max-pool down, bilinear up, skip connections), ``width`` channels at the top level,
  doubling per level; a sigmoid bounds the output to [0, 1] (the frames the protocol saves).
- the reconstruction loss: L1, on the frames in [0, 1]; its length is ``reconstruction_iters``.
- the branches start from scratch and learn on raw clips during the reconstruction warm-up
  (SPAct's start pretrained: fT on Kinetics, fB self-supervised): ``warmup_iters``.
- NT-Xent views: a random square crop of 0.6 to 1 of the frame, resized back, mirrored with
  probability 1/2, shared by the frames of a clip (``raprivacy.losses.clip_views``); no colour
  jitter, since colour carries private attributes. Per-frame embeddings are averaged over the
  clip before NT-Xent; views of other clips of the same video are left out of the negatives.
- term weights: 1 and 1 (TeD-SPAD, SPAct's successor, uses 1.0 NT-Xent and 0.7 CE).

Profiles (``benchmark/configs/methods/spact.py``): ``paper`` keeps the networks and rates above.
``cpu`` is scaled to about 30 minutes per seed on two cores: fA width 16 and depth 3 (paper 64
and 4), fT an R3D-18 at 16 base channels (64), fB a per-frame ResNet-18 at 16 base channels
with a 128-128-128 projection (ResNet-50, 2048-2048-128), batches of 16 clips of 8 frames at
56 px, 500 warm-up and 400 adversarial iterations, Adam 1e-3 for fA throughout and 2e-3 for the
branches (from scratch, 1e-4 leaves them at chance in so few steps). ``smoke`` shrinks it to
seconds.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.learned import DegradationModel, frame_backbone
from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS, MODELS
from raprivacy.losses import clip_views, ntxent_loss
from raprivacy.model import PrivacyBranch


def _double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


@ANONYMIZERS.register_module()
class SPActUNet(Anonymizer):
    """SPAct's anonymizer fA: a 2D UNet applied to every frame, output in [0, 1].

    Args:
        width (int): Channels of the top level; each level below doubles them. Defaults to 64.
        depth (int): Levels below the top (each halves the frame). Defaults to 4.
    """

    table_name = 'SPAct'
    privacy_learning = True
    learns = True
    per_frame = True  # 2D convolutions; batch norm uses its running statistics in eval mode

    def __init__(self, width: int = 64, depth: int = 4) -> None:
        super().__init__()
        if int(width) != width or width < 1 or int(depth) != depth or depth < 1:
            raise ValueError(f'anonymizer width and depth must be whole numbers >= 1, got width={width}, '
                             f'depth={depth}')
        channels = [width * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([_double_conv(3, width)] + [
            _double_conv(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])])
        self.up = nn.ModuleList(_double_conv(c_low + c_skip, c_skip)
                                for c_low, c_skip in zip(channels[:0:-1], channels[-2::-1]))
        self.out = nn.Conv2d(width, 3, 1)

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        self.check_aux(aux)
        n, c, t, h, w = clips.shape
        x = clips.transpose(1, 2).reshape(n * t, c, h, w)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, skips[-2::-1]):
            x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        frames = torch.sigmoid(self.out(x))
        return frames.view(n, t, c, h, w).transpose(1, 2).contiguous()


@MODELS.register_module()
class SPActModel(DegradationModel):
    """fA against the action model fT (lowered cross-entropy) and the self-supervised privacy
    model fB (raised NT-Xent).

    Args:
        anonymizer (dict): ``SPActUNet`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        action_backbone (dict, optional): fT's video backbone. Defaults to a 3D ResNet-18.
        privacy_backbone (dict, optional): fB's per-frame backbone. Defaults to ResNet-50.
        embed_dim (int): Size of fB's projection. Defaults to 128.
        temperature (float): NT-Xent temperature. Defaults to 0.1.
        views (dict, optional): ``clip_views`` settings, ``min_scale`` and ``flip``. Defaults to
            ``dict(min_scale=0.6, flip=True)``.
        **kwargs: ``baselines.learned.DegradationModel``'s (``reconstruction_iters``,
            ``reconstruction_loss``, ``dropout``) and ``AdversarialModel``'s (``loss_weights`` of ``reconstruction``,
            ``action`` and ``privacy``, ``warmup_iters``, ``ramp_iters``, ``guard``, ...).
    """

    term_signs = dict(reconstruction=1, action=1, privacy=-1)
    term_branches = dict(action='action_branch', privacy='privacy_branch')
    default_weights = dict(reconstruction=1.0, action=1.0, privacy=1.0)

    def __init__(self, anonymizer: dict, num_classes: int | None = None, action_backbone: dict | None = None,
                 privacy_backbone: dict | None = None, embed_dim: int = 128, temperature: float = 0.1,
                 views: dict | None = None, **kwargs) -> None:
        super().__init__(anonymizer, num_classes, 'privacy_branch', action_backbone, **kwargs)
        self.privacy_branch = PrivacyBranch(privacy_backbone or frame_backbone(50), embed_dim, normalize=True)
        self.temperature = temperature
        self.views = {'min_scale': 0.6, 'flip': True, **(views or {})}

    def privacy_term(self, term: str, clips: torch.Tensor, batch: dict) -> torch.Tensor:
        """NT-Xent of fB over two views of every clip."""
        emb1, emb2 = self.privacy_branch(torch.cat(clip_views(clips, **self.views))).chunk(2)
        return ntxent_loss(emb1, emb2, batch['videos'], self.temperature)

    def privacy_branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        return self.privacy_term('privacy', clips, batch), {}

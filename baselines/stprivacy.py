"""STPrivacy: a vision transformer over tubelets that learns which tubelets of a clip to keep.

M. Li, Xu, Fan, Zhou, J. Liu, J.-W. Liu, J. Li, Keppo, Shou, Yan: "STPrivacy: Spatio-Temporal
Privacy-Preserving Action Recognition", ICCV 2023 (reference [17] of the RAPrivacy paper). A
clip is cut into tubelets (2 frames x 16 x 16 pixels at 112 px), embedded as tokens and passed
through transformer blocks; at one block a predictor scores every tubelet, the clip keeps the
best ones and drops the rest, the later blocks attend among the kept tubelets only, and a
linear pixel head turns each kept token back into its tubelet; dropped tubelets are filled
with zeros. The anonymizer is trained against an action branch and a privacy branch.

Its authors released the model's parts (token sparsification in training and at test, the
recognizers) but not the training code (REFERENCE.md section 4); what follows is built from
the paper and those parts' facts. What this suite had to decide:

- selection: the predictor gives each tubelet a keep score. At test, each time slot (the
  tubelets of the same two frames) keeps its top ``k = round(token_ratio x tubelets per
  slot)`` by score, as the released test path does per slot. In training the released parts
  draw a hard keep/drop per tubelet by Gumbel-softmax, whose count varies; here the same
  noise (the difference of two Gumbels, a logistic) perturbs the scores and each slot keeps
  its top k of the perturbed scores, so training keeps exactly as many tubelets as the test
  and no keep-ratio loss is needed. The hard 0/1 keep passes the gradient of
  ``sigmoid((score + noise) / tau)`` (straight-through);
- one pruning stage (``prune_layer``), where the released parts allow several;
- dropped tubelets: the later blocks' attention gives them no weight (each still attends to
  itself), which equals removing them; the attention weights carry the keep mask, so the
  gradient reaches the predictor through them as well as through the zero fill;
- position: fixed sine-cosine embeddings over (slot, row, column), so any clip size works
  (the released parts learn one at a fixed size); clips whose size is not a multiple of the
  tubelet are padded by repeating their last frame, row and column, and cropped back;
- tubelet size: 2 x 16 x 16 at 112 px (``paper``); at the ``cpu`` profile's 56 px crops the
  tubelet is scaled with the frame, 2 x 8 x 8, keeping the paper's 7 x 7 tubelets per slot,
  and at ``smoke``'s 28 px, 2 x 4 x 4;
- the pixel head: linear from each token to its tubelet's pixels, as released. With
  ``skip=True`` it adds its output to the tubelet's input pixels and starts at zero, so the
  anonymizer starts as "keep the chosen tubelets unchanged" (used at ``cpu``, whose fit is too
  short to learn to draw from nothing);
- the losses (the paper's adversarial objective as this suite reads it): the anonymizer lowers
  the action branch's cross-entropy, raises the privacy branch's binary cross-entropy on the
  true attributes (``privacy``, sign -1; the labels are STPrivacy's own VP-UCF101/VP-HMDB51
  annotations) and lowers ``reconstruction``, the mean squared error of the kept tubelets to
  the input (with the keep mask detached: it judges the drawing, not the choice). Weights
  ``loss_weights``; warm-ups, ramp and guard as the suite's other learned methods;
- token ratio 0.7 (DynamicViT's, on whose code the released parts build); the paper's own
  value is not in the released parts.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from baselines.learned import AttributeAdversaryModel, frame_backbone
from benchmark.adversarial import clamp_inward, saturated_fraction
from benchmark.anonymizer import Anonymizer
from benchmark.registry import ANONYMIZERS, MODELS
from raprivacy.model import ActionBranch


def position_embedding(t: int, h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Sine-cosine embeddings ``(t*h*w, dim)`` of each token's (slot, row, column)."""
    per_axis = 2 * (dim // 6)
    freq = 1.0 / 10000 ** (torch.arange(per_axis // 2, device=device, dtype=torch.float32) / max(per_axis // 2, 1))
    grids = torch.meshgrid(*(torch.arange(n, device=device, dtype=torch.float32) for n in (t, h, w)), indexing='ij')
    parts = []
    for grid in grids:
        angle = grid.reshape(-1, 1) * freq
        parts += [angle.sin(), angle.cos()]
    emb = torch.cat(parts, dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


class Block(nn.Module):
    """A pre-norm transformer block whose attention can be limited to the kept tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f'STPrivacyAnonymizer: embed_dim={dim} is not a multiple of num_heads={heads}')
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim))

    def attend(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-2, -1) / math.sqrt(c // self.heads)
        if keep is None:
            weights = logits.softmax(-1)
        else:
            # a kept key counts with its keep value (1, carrying the selection's gradient), a
            # dropped one with 0; every token keeps itself, so no row is empty
            eye = torch.eye(n, device=x.device, dtype=x.dtype)
            allowed = keep[:, None, None, :] + (1 - keep[:, None, None, :]) * eye
            top = logits.masked_fill(allowed.detach() == 0, float('-inf')).amax(-1, keepdim=True)
            weights = (logits - top).clamp(max=30.0).exp() * allowed
            weights = weights / weights.sum(-1, keepdim=True)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attend(self.norm1(x), keep)
        return x + self.mlp(self.norm2(x))


class Predictor(nn.Module):
    """Keep score of each token from its own features, its slot's mean and the clip's mean."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.part = dim // 3
        self.embed = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 3 * self.part), nn.GELU())
        self.score = nn.Sequential(nn.Linear(3 * self.part, dim // 2), nn.GELU(), nn.Linear(dim // 2, 1))

    def forward(self, x: torch.Tensor, slots: int) -> torch.Tensor:
        """Tokens ``(B, N, D)`` -> scores ``(B, slots, N / slots)``."""
        b, n, _ = x.shape
        local, slot, clip = self.embed(x).view(b, slots, n // slots, 3, self.part).unbind(3)
        context = torch.cat([local, slot.mean(2, keepdim=True).expand_as(slot),
                             clip.mean((1, 2), keepdim=True).expand_as(clip)], dim=-1)
        return self.score(context).squeeze(-1)


def keep_count(per_slot: int, ratio: float) -> int:
    """Tubelets kept in a slot of ``per_slot``: ``round(ratio x per_slot)``, at least 1."""
    return max(1, min(per_slot, int(round(ratio * per_slot))))


def select(scores: torch.Tensor, k: int, noise: bool, tau: float = 1.0) -> torch.Tensor:
    """Keep ``(B, slots, n)``: 1 for the top ``k`` scores of each slot, 0 elsewhere.

    With ``noise`` (training) the scores are perturbed by logistic noise (the difference of two
    Gumbels: the hard decision of a two-way Gumbel-softmax), and the hard keep passes the
    gradient of ``sigmoid(perturbed / tau)`` (straight-through)."""
    if noise:
        u = torch.rand_like(scores).clamp(1e-6, 1 - 1e-6)
        scores = scores + u.log() - (-u).log1p()
    hard = torch.zeros_like(scores).scatter_(-1, scores.topk(k, dim=-1).indices, 1.0)
    if not noise:
        return hard
    soft = torch.sigmoid(scores / tau)
    return hard + (soft - soft.detach())  # exactly 0 or 1 forward, the soft gradient backward


class Sparsified(NamedTuple):
    """One pass of the anonymizer."""
    images: torch.Tensor  # (N, 3, T, H, W): kept tubelets drawn, dropped ones 0, unclamped
    drawn: torch.Tensor  # (N, 3, T, H, W): the pixel head's drawing of every tubelet
    keep: torch.Tensor  # (N, slots, rows * cols): 1 kept, 0 dropped (straight-through in training)
    keep_pixels: torch.Tensor  # (N, 1, T, H, W): the keep of each pixel's tubelet


@ANONYMIZERS.register_module()
class STPrivacyAnonymizer(Anonymizer):
    """Tubelet transformer that keeps ``token_ratio`` of each slot's tubelets and redraws them.

    Args:
        patch_size (int): Tubelet height and width in pixels. Defaults to 16 (at 112 px).
        tubelet_size (int): Frames per tubelet. Defaults to 2.
        embed_dim (int): Token width. Defaults to 384 (ViT-S).
        depth (int): Transformer blocks. Defaults to 12.
        num_heads (int): Attention heads. Defaults to 6.
        mlp_ratio (float): MLP width over token width. Defaults to 4.0.
        prune_layer (int): Blocks before the predictor; the rest attend among kept tubelets.
            Defaults to 3.
        token_ratio (float): Fraction of each slot's tubelets kept, in (0, 1]. Defaults to 0.7.
        tau (float): Temperature of the straight-through gradient. Defaults to 1.0.
        skip (bool): The pixel head adds to the tubelet's input (and starts at zero). Defaults
            to False.
    """

    table_name = 'STPrivacy'
    privacy_learning = True
    learns = True

    def __init__(self, patch_size: int = 16, tubelet_size: int = 2, embed_dim: int = 384, depth: int = 12,
                 num_heads: int = 6, mlp_ratio: float = 4.0, prune_layer: int = 3, token_ratio: float = 0.7,
                 tau: float = 1.0, skip: bool = False) -> None:
        super().__init__()
        if not 0 < token_ratio <= 1:
            raise ValueError(f'STPrivacyAnonymizer: token_ratio={token_ratio}: it must be in (0, 1]')
        if not 0 <= prune_layer < depth:
            raise ValueError(f'STPrivacyAnonymizer: prune_layer={prune_layer}: it must be in [0, depth={depth})')
        if patch_size < 1 or tubelet_size < 1 or embed_dim < 6:
            raise ValueError(f'STPrivacyAnonymizer: need patch_size, tubelet_size >= 1 and embed_dim >= 6, got '
                             f'{patch_size}, {tubelet_size}, {embed_dim}')
        self.patch, self.tubelet = int(patch_size), int(tubelet_size)
        self.prune_layer, self.token_ratio, self.tau, self.skip = prune_layer, token_ratio, tau, skip
        self.embed = nn.Conv3d(3, embed_dim, (self.tubelet, self.patch, self.patch),
                               stride=(self.tubelet, self.patch, self.patch))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.predictor = Predictor(embed_dim)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, 3 * self.tubelet * self.patch * self.patch)
        if skip:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def sparsify(self, clips: torch.Tensor) -> Sparsified:
        """Clips ``(N, 3, T, H, W)`` in [0, 1] -> the pass (Gumbel selection in training mode,
        top-k at evaluation)."""
        n, _, t, h, w = clips.shape
        pt, ph, pw = (-t) % self.tubelet, (-h) % self.patch, (-w) % self.patch
        padded = F.pad(clips, (0, pw, 0, ph, 0, pt), mode='replicate') if pt or ph or pw else clips
        tokens = self.embed(padded)  # (N, D, slots, rows, cols)
        slots, rows, cols = tokens.shape[2:]
        x = tokens.flatten(2).transpose(1, 2)
        x = x + position_embedding(slots, rows, cols, x.shape[-1], x.device).to(x.dtype)
        for block in self.blocks[:self.prune_layer]:
            x = block(x)
        scores = self.predictor(x, slots)
        keep = select(scores, keep_count(rows * cols, self.token_ratio), noise=self.training, tau=self.tau)
        flat = keep.reshape(n, -1)
        for block in self.blocks[self.prune_layer:]:
            x = block(x, flat)
        pixels = self.head(self.norm(x)).view(n, slots, rows, cols, 3, self.tubelet, self.patch, self.patch)
        drawn = pixels.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(padded.shape)
        if self.skip:
            drawn = drawn + padded
        keep_pixels = (keep.view(n, 1, slots, rows, cols).repeat_interleave(self.tubelet, 2)
                       .repeat_interleave(self.patch, 3).repeat_interleave(self.patch, 4))
        crop = (slice(None), slice(None), slice(0, t), slice(0, h), slice(0, w))
        return Sparsified((drawn * keep_pixels)[crop], drawn[crop], keep, keep_pixels[crop])

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        self.check_aux(aux)
        return self.sparsify(clips).images.clamp(0.0, 1.0).contiguous()


@MODELS.register_module()
class STPrivacyModel(AttributeAdversaryModel):
    """The tubelet anonymizer, the action branch and the privacy branch.

    Args:
        anonymizer (dict): ``STPrivacyAnonymizer`` config (the protocol injects the method's).
        num_classes (int): Action classes of the training set.
        num_attributes (int): Privacy attributes. Defaults to 5.
        action_backbone (dict, optional): Video backbone of the action branch. Defaults to a
            3D ResNet-50.
        privacy_backbone (dict, optional): Per-frame backbone of the privacy branch (one
            multi-label classifier). Defaults to a ResNet-50.
        dropout (float): Dropout before the action classifier. Defaults to 0.0.
        **schedule: ``loss_weights`` (``action``, ``privacy``, ``reconstruction``; defaults 1, 1
            and 1), ``warmup_iters``, ``ramp_iters``, ``restart``, ``guard`` and the other
            ``AdversarialModel`` arguments.
    """

    term_signs = dict(action=1, privacy=-1, reconstruction=1)
    term_branches = dict(action='action_branch', privacy='privacy_branch')
    default_weights = dict(action=1.0, privacy=1.0, reconstruction=1.0)

    def __init__(self, anonymizer: dict, num_classes: int | None = None, num_attributes: int = 5,
                 action_backbone: dict | None = None, privacy_backbone: dict | None = None,
                 dropout: float = 0.0, **schedule) -> None:
        super().__init__(anonymizer, num_classes, ('action_branch', 'privacy_branch'),
                         num_attributes=num_attributes, action_backbone=action_backbone, dropout=dropout,
                         **schedule)
        self.privacy_branch = ActionBranch(privacy_backbone or frame_backbone(50), num_attributes, dropout=0.0)

    def output(self, batch: dict) -> dict:
        out = self.anonymizer.sparsify(batch['clips'])
        return dict(clips=clamp_inward(out.images), drawn=out.drawn, keep=out.keep,
                    keep_pixels=out.keep_pixels)

    def terms(self, out: dict, batch: dict, factors: dict[str, float] | None = None
              ) -> dict[str, torch.Tensor]:
        clips, values = out['clips'], {}
        if self.on('action', factors):
            values['action'] = F.cross_entropy(self.action_branch(clips), batch['actions'])
        if self.on('privacy', factors):
            values['privacy'] = F.binary_cross_entropy_with_logits(self.privacy_branch(clips), batch['privacy'])
        if self.on('reconstruction', factors):
            kept = out['keep_pixels'].detach()
            error = (out['drawn'] - batch['clips']).square() * kept
            values['reconstruction'] = error.sum() / (kept.sum() * 3).clamp(min=1.0)
        return values

    def output_logs(self, out: dict) -> dict:
        # the guard's saturation over the kept tubelets: the dropped ones are 0 by design
        return dict(kept_fraction=out['keep'].detach().mean(),
                    saturated=saturated_fraction(out['clips'], where=out['keep_pixels'] > 0))

    def privacy_branch_loss(self, name: str, clips: torch.Tensor, batch: dict) -> tuple[torch.Tensor, dict]:
        logits = self.privacy_branch(clips)
        accuracy = ((logits > 0).float() == batch['privacy']).float().mean()
        return F.binary_cross_entropy_with_logits(logits, batch['privacy']), dict(privacy_acc=accuracy.detach())

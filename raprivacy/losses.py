"""The losses of RAPrivacy (Sec. 3.4).

- ``global_style_loss``, Eq. 4: over relu2_1 ... relu5_1, the squared differences of channel
  means and stds between the stylized frames' VGG features and the style's.
- ``local_feature_loss``, Eq. 5: over relu3_1 ... relu5_1, the squared difference between the
  stylized frames' VGG features and the parameter-free AdaAttN* of content and style.
  As in AdaAttN (Liu et al., ICCV 2021), both squared norms are averaged over elements (mean
  squared error), so the loss weights (AdaAttN's 10 and 3) do not depend on feature sizes.
- ``pair_contrastive_loss``, Eq. 7: the margin contrastive loss of Hadsell et al. (2006) over
  pairs of clips of a batch, per frame and averaged: ``D^2`` for positive pairs (same action,
  different videos) and ``max(0, m - D)^2`` for negative pairs (different actions). Pairs of
  clips of the same video are neither. The paper's text names InfoNCE while its Eq. 7 is this
  margin form: Eq. 7 is the default, ``info_nce_loss`` (supervised InfoNCE over the same pairs,
  Khosla et al. 2020) the config option ``privacy_loss='info_nce'``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from raprivacy.adaattn import mean_std


def global_style_loss(stylized_feats: list[torch.Tensor], style_feats: list[torch.Tensor],
                      frames: int) -> torch.Tensor:
    """Eq. 4 over the given layers (RAPrivacy uses relu2_1 ... relu5_1).

    Args:
        stylized_feats (list of Tensor): ``(N*T, C, h, w)`` features of the stylized frames.
        style_feats (list of Tensor): ``(N, C, hs, ws)`` features of each clip's style image.
        frames (int): T; the style of a clip is compared with each of its frames.
    """
    loss = stylized_feats[0].new_zeros(())
    for out, sty in zip(stylized_feats, style_feats):
        mo, so = mean_std(out)
        ms, ss = mean_std(sty)
        loss = loss + F.mse_loss(mo, ms.repeat_interleave(frames, 0)) \
            + F.mse_loss(so, ss.repeat_interleave(frames, 0))
    return loss


def local_feature_loss(stylized_feats: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    """Eq. 5: stylized features against AdaAttN* targets, layer by layer (relu3_1 ... relu5_1)."""
    loss = stylized_feats[0].new_zeros(())
    for out, target in zip(stylized_feats, targets):
        loss = loss + F.mse_loss(out, target.detach())
    return loss


def pair_masks(actions: torch.Tensor, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative pair masks ``(N, N)`` (upper triangle, no diagonal).

    Args:
        actions (Tensor): ``(N,)`` action classes.
        videos (Tensor): ``(N,)`` video indices; clips of one video make no pair.
    """
    n = actions.numel()
    upper = torch.ones(n, n, dtype=torch.bool, device=actions.device).triu(1)
    same_action = actions[:, None] == actions[None, :]
    same_video = videos[:, None] == videos[None, :]
    return upper & same_action & ~same_video, upper & ~same_action


def pair_contrastive_loss(emb: torch.Tensor, actions: torch.Tensor, videos: torch.Tensor,
                          margin: float = 1.0) -> torch.Tensor:
    """Eq. 7, averaged over the frames of each pair and over all pairs of the batch.

    Args:
        emb (Tensor): ``(N, T, D)`` per-frame embeddings (or ``(N, D)``).
        actions (Tensor): ``(N,)`` action classes.
        videos (Tensor): ``(N,)`` video indices.
        margin (float): m, the distance beyond which negative pairs cost nothing. Defaults to 1.0.

    Returns:
        Tensor: the loss; zero (still attached to ``emb``) when the batch holds no pair.
    """
    if emb.dim() == 2:
        emb = emb.unsqueeze(1)
    pos, neg = pair_masks(actions, videos)
    i, j = (pos | neg).nonzero(as_tuple=True)
    if i.numel() == 0:
        return emb.sum() * 0.0
    dist = (emb[i] - emb[j]).pow(2).sum(-1).add(1e-12).sqrt()  # (P, T): frame t with frame t
    positive = pos[i, j].unsqueeze(1)
    per_frame = torch.where(positive, dist.pow(2), (margin - dist).clamp_min(0.0).pow(2))
    return per_frame.mean()


def info_nce_loss(emb: torch.Tensor, actions: torch.Tensor, videos: torch.Tensor,
                  temperature: float = 0.1) -> torch.Tensor:
    """Supervised InfoNCE over the same pairs as Eq. 7 (the config option ``'info_nce'``).

    For each clip with a positive, the mean over its positives of ``-log softmax`` of cosine
    similarity / ``temperature`` among its positives and negatives (other clips of its own video
    are left out of the softmax).

    Args:
        emb (Tensor): ``(N, T, D)`` per-frame embeddings (averaged over frames) or ``(N, D)``.
        actions (Tensor): ``(N,)`` action classes.
        videos (Tensor): ``(N,)`` video indices.
        temperature (float): Softmax temperature. Defaults to 0.1.
    """
    if emb.dim() == 3:
        emb = emb.mean(1)
    z = F.normalize(emb, dim=-1)
    logits = z @ z.t() / temperature
    same_action = actions[:, None] == actions[None, :]
    other_video = videos[:, None] != videos[None, :]
    positive = same_action & other_video
    anchors = positive.any(1)
    if not anchors.any():
        return emb.sum() * 0.0
    log_prob = logits.masked_fill(~other_video, float('-inf')).log_softmax(dim=1)
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(1) / positive.sum(1).clamp_min(1))
    return per_anchor[anchors].mean()

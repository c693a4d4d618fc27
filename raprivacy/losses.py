"""The losses of RAPrivacy (Sec. 3.4).

- ``global_style_loss``, Eq. 4: over relu2_1 ... relu5_1, the squared differences of channel
  means and stds between the stylized frames' VGG features and the style's.
- ``local_feature_loss``, Eq. 5: over relu3_1 ... relu5_1, the squared difference between the
  stylized frames' VGG features and the parameter-free AdaAttN* of content and style.
  As in AdaAttN (Liu et al., ICCV 2021), both squared norms are averaged over elements (mean
  squared error), so the loss weights (AdaAttN's 10 and 3) do not depend on feature sizes.

The privacy term L_pri has two readings (``RAPrivacyModel(privacy_loss=...)``):

- as printed, Eq. 7 inside Eq. 9 (``'eq9_action_pairs'``): ``pair_contrastive_loss``, the margin
  contrastive loss of Hadsell et al. (2006) over pairs of clips of a batch, per frame and
  averaged: ``D^2`` for positive pairs (same action, different videos) and
  ``max(0, m - D)^2`` for negative pairs (different actions). Pairs of clips of the same video
  are neither. ``info_nce_loss`` is the text's "standard InfoNCE" over the same pairs
  (``'info_nce_action_pairs'``). The anonymizer raises it: it is rewarded for making clips of
  one action unlike each other and clips of different actions alike, against L_act, and most
  of all by a constant image.
- as SPAct reads it (``'ntxent_views'``): ``ntxent_loss`` over two augmented views
  (``clip_views``) of every clip, positives the two views of one video, negatives every other
  video of the batch, temperature 0.1. Raising it makes videos hard to tell apart, whatever
  their action.
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
        frames (int): Frames per style row: T (the style of a clip is compared with each of its
            frames), or 1 when every frame has its own row.
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
    """Supervised InfoNCE over the same pairs as Eq. 7 (``privacy_loss='info_nce_action_pairs'``).

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


def ntxent_loss(emb1: torch.Tensor, emb2: torch.Tensor, videos: torch.Tensor | None = None,
                temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR, Chen et al. 2020), as SPAct trains its privacy branch.

    Each of the 2N views is an anchor whose positive is the other view of its clip; the other
    clips' views are its negatives, except other clips of its own video, which are left out.

    Args:
        emb1 (Tensor): ``(N, D)`` embeddings of the first views (or ``(N, T, D)``, averaged
            over frames).
        emb2 (Tensor): The second views, the same shape.
        videos (Tensor, optional): ``(N,)`` video indices. Defaults to None (all different).
        temperature (float): Softmax temperature. Defaults to 0.1.
    """
    if emb1.dim() == 3:
        emb1, emb2 = emb1.mean(1), emb2.mean(1)
    n = len(emb1)
    z = F.normalize(torch.cat([emb1, emb2]), dim=-1)
    logits = z @ z.t() / temperature
    index = torch.arange(2 * n, device=z.device)
    positive = (index + n) % (2 * n)
    videos = index % n if videos is None else videos.repeat(2)
    left_out = videos[:, None] == videos[None, :]
    left_out[index, positive] = False
    return F.cross_entropy(logits.masked_fill(left_out, float('-inf')), positive)


def clip_views(clips: torch.Tensor, min_scale: float = 0.6, flip: bool = True
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two random views of every clip ``(N, C, T, H, W)``, differentiable in the clips.

    Each view is a square crop whose side is a random fraction in [``min_scale``, 1] of the
    frame, at a random place, resized back to the frame size (bilinear), and mirrored with
    probability 1/2 when ``flip``; all frames of a clip share the crop. No colour jitter: colour
    carries the private attributes the privacy branch must be able to see.
    """
    n, c, t, h, w = clips.shape
    frames = clips.reshape(n, c * t, h, w)

    def view() -> torch.Tensor:
        scale = torch.empty(n, device=clips.device).uniform_(min_scale, 1.0)
        shift = (torch.rand(n, 2, device=clips.device) * 2 - 1) * (1 - scale)[:, None]
        mirror = torch.where(torch.rand(n, device=clips.device) < 0.5, -1.0, 1.0) if flip \
            else torch.ones(n, device=clips.device)
        theta = torch.zeros(n, 2, 3, device=clips.device, dtype=clips.dtype)
        theta[:, 0, 0], theta[:, 1, 1] = scale * mirror, scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, [n, c * t, h, w], align_corners=False)
        out = F.grid_sample(frames, grid, mode='bilinear', padding_mode='border', align_corners=False)
        return out.view(n, c, t, h, w)

    return view(), view()


OUTLINE_DETAIL = ('free', 'removed')


def check_outline_detail(detail: str) -> str:
    """``detail`` if it is one of ``OUTLINE_DETAIL``; a one-line ValueError otherwise."""
    if detail not in OUTLINE_DETAIL:
        raise ValueError(f"fit.model.outline_detail must be one of {', '.join(OUTLINE_DETAIL)}, got {detail!r}")
    return detail


def laplacian_loss(images: torch.Tensor, content: torch.Tensor, pool: int = 4,
                   detail: str = 'free') -> torch.Tensor:
    """The outline term (``loss_weights.outline``), not in the paper: mean squared difference of
    the Laplacians of the stylized and the content frames' luminance, each average-pooled by
    ``pool`` first (the Laplacian loss of Li et al., "Laplacian-Steered Neural Style Transfer",
    ACM MM 2017, taken on grey so that it asks for the content's coarse edges and not its colours).

    Args:
        images (Tensor): ``(M, 3, H, W)`` stylized frames (as the classifiers see them).
        content (Tensor): ``(M, 3, H, W)`` the frames they were made from; no gradient flows
            into them.
        pool (int): Average-pooling window and stride; edges finer than it (a face's) are not
            asked for. Defaults to 4.
        detail (str): What happens to detail finer than ``pool`` in the stylized frames.
            ``'free'``: both frames are pooled before the Laplacian, so the stylized frames may
            draw any texture finer than the pooling. ``'removed'``: the stylized frames'
            Laplacian is taken at full resolution against that of the content pooled and
            upsampled back (bilinear), so finer texture is penalized as well: the optimum is
            the content smoothed at ``pool``, a grey Downsample. At ``pool`` 1 the two agree.
            Defaults to ``'free'``.
    """
    from benchmark.readability import LUMA  # grey as the outline measure reads it (import cycle at load)
    check_outline_detail(detail)
    luma = images.new_tensor(LUMA).view(1, 3, 1, 1)
    kernel = images.new_tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    grey = lambda x: (x * luma).sum(1, keepdim=True)  # noqa: E731
    pooled = lambda x: F.avg_pool2d(x, pool) if pool > 1 else x  # noqa: E731

    target = pooled(grey(content.detach()))
    if detail == 'free':
        return F.mse_loss(F.conv2d(pooled(grey(images)), kernel), F.conv2d(target, kernel))
    if pool > 1:
        target = F.interpolate(target, size=images.shape[-2:], mode='bilinear', align_corners=False)
    return F.mse_loss(F.conv2d(grey(images), kernel), F.conv2d(target, kernel))

"""Adaptive attention normalization (AdaAttN, Liu et al., ICCV 2021), as RAPrivacy uses it
(Sec. 3.1, Eq. 1 and 2).

At layer x the keys are the mean-variance normalized features of every layer up to x, each
resized to layer x's size and concatenated (Eq. 1). Attention from content queries to style
keys gives, for every content position, an attention-weighted mean M and standard deviation S of
the style values; the output is ``S * norm(F_c) + M`` (Eq. 2). With uniform attention, M and S
are the style's channel mean and std, and the block reduces to AdaIN.

One style image serves all T frames of a clip, so the queries of a clip's frames are stacked
along the query axis: attention is ``(N, T*h*w, h_s*w_s)``, and the style features are computed
once per clip, not once per frame.

``attention`` picks how the two moments are computed: ``'sdpa'`` in one
``scaled_dot_product_attention`` call over ``[v, v*v]`` (a fused kernel on the GPU), or
``'matmul'``, the softmax of ``QK`` written out and multiplied with ``v`` and ``v*v``. Both are
the same arithmetic; they differ only in rounding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-5
ATTENTION = ('sdpa', 'matmul')


def mean_std(feat: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel mean and (population) std over the spatial axes of ``(B, C, H, W)``."""
    var, mean = torch.var_mean(feat, dim=(2, 3), keepdim=True, unbiased=False)
    return mean, (var + eps).sqrt()


def mean_variance_norm(feat: torch.Tensor) -> torch.Tensor:
    mean, std = mean_std(feat)
    return (feat - mean) / std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """AdaIN (Huang and Belongie, 2017): content normalized, then given the style's mean and std."""
    mean, std = mean_std(style)
    return std * mean_variance_norm(content) + mean


def attention_keys(feats: list[torch.Tensor], layer: int) -> torch.Tensor:
    """Eq. 1: normalized features of layers 1..``layer`` resized to layer ``layer`` and concatenated.

    Args:
        feats (list of Tensor): relu1_1 ... relu5_1 features, each ``(B, C_i, H_i, W_i)``.
        layer (int): 1-based index of the layer whose size the keys take.
    """
    size = feats[layer - 1].shape[-2:]
    parts = [F.interpolate(f, size=size, mode='bilinear', align_corners=False)
             if f.shape[-2:] != size else f for f in feats[:layer]]
    return mean_variance_norm(torch.cat(parts, dim=1))


def attend(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, frames: int,
           attention: str = 'sdpa') -> tuple[torch.Tensor, torch.Tensor]:
    """Attention-weighted mean and std of ``value`` for every query position.

    Args:
        query (Tensor): ``(N*T, Cq, h, w)``: content queries of N clips of ``frames`` frames.
        key (Tensor): ``(N, Cq, hs, ws)``: one style image per clip.
        value (Tensor): ``(N, C, hs, ws)``.
        frames (int): Query frames per style row: T, or 1 with one style image per frame.
        attention (str): ``'sdpa'`` or ``'matmul'`` (see the module's docstring). Defaults to
            ``'sdpa'``.

    Returns:
        tuple: mean and std, each ``(N*T, C, h, w)``.
    """
    nt, cq, h, w = query.shape
    n, c = value.shape[:2]
    # positions-by-channels views: free for channels-last features, one copy otherwise
    q = query.permute(0, 2, 3, 1).reshape(n, 1, frames * h * w, cq)
    k = key.permute(0, 2, 3, 1).reshape(n, 1, -1, cq)  # (N, 1, Ls, Cq)
    v = value.permute(0, 2, 3, 1).reshape(n, -1, c)  # (N, Ls, C)
    moments = torch.cat([v, v * v], dim=2).unsqueeze(1)
    # First and second moments in one attention call; AdaAttN's softmax(QK) is unscaled.
    if attention == 'sdpa':
        both = F.scaled_dot_product_attention(q, k, moments, scale=1.0)
    else:
        both = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ moments
    mean, second = both.squeeze(1).split(c, dim=2)
    std = (second - mean * mean).clamp_min(0.0).add(EPS).sqrt()

    def to_maps(t: torch.Tensor) -> torch.Tensor:  # (N*T, C, h, w), laid out channels-last
        return t.reshape(nt, h, w, c).permute(0, 3, 1, 2)

    return to_maps(mean), to_maps(std)


def adaattn_star(content: torch.Tensor, style: torch.Tensor, content_keys: torch.Tensor,
                 style_keys: torch.Tensor, frames: int, attention: str = 'sdpa') -> torch.Tensor:
    """Parameter-free AdaAttN (AdaAttN*, the target of the local feature loss, Eq. 5)."""
    mean, std = attend(content_keys, style_keys, style, frames, attention)
    return std * mean_variance_norm(content) + mean


class AdaAttN(nn.Module):
    """One AdaAttN block (Eq. 2): learned 1x1 projections for queries, keys and values,
    initialized to the identity.

    Args:
        channels (int): Channels of the layer's features (values and output).
        key_channels (int): Channels of the concatenated keys of Eq. 1.
        attention (str): ``'sdpa'`` or ``'matmul'`` (see the module's docstring). Defaults to
            ``'sdpa'``.
    """

    def __init__(self, channels: int, key_channels: int, attention: str = 'sdpa') -> None:
        super().__init__()
        if attention not in ATTENTION:
            raise ValueError(f"anonymizer.attention must be 'sdpa' or 'matmul', got {attention!r}")
        self.attention = attention
        self.query = nn.Conv2d(key_channels, key_channels, 1)
        self.key = nn.Conv2d(key_channels, key_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        # Start as the parameter-free AdaAttN* (the target of the local feature loss) rather than
        # from random projections, which scramble the features a pretrained decoder expects.
        for conv in (self.query, self.key, self.value):
            nn.init.dirac_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, content: torch.Tensor, style: torch.Tensor, content_keys: torch.Tensor,
                style_keys: torch.Tensor, frames: int) -> torch.Tensor:
        """Stylize content features.

        Args:
            content (Tensor): ``(N*T, C, h, w)`` content features of layer x.
            style (Tensor): ``(N, C, hs, ws)`` style features of layer x, one image per clip.
            content_keys (Tensor): ``(N*T, Ck, h, w)`` Eq. 1 keys of the content.
            style_keys (Tensor): ``(N, Ck, hs, ws)`` Eq. 1 keys of the style.
            frames (int): Frames per style row: T, or 1 with one style image per frame.
        """
        mean, std = attend(self.query(content_keys), self.key(style_keys), self.value(style), frames,
                           self.attention)
        return std * mean_variance_norm(content) + mean

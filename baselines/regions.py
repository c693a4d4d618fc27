"""Shared tensor helpers of the region baselines: fold time into the batch, grow masks, blur.

Sizes are given in pixels at the paper's 112 px frame height and scaled to the actual height,
so a config means the same thing at 56 px (cpu profile) and at 112 px (paper profile).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

REFERENCE_HEIGHT = 112


def scaled(pixels_at_112: float, height: int) -> float:
    """A length given at 112 px frame height, at ``height``."""
    return pixels_at_112 * height / REFERENCE_HEIGHT


def frames(clips: torch.Tensor) -> torch.Tensor:
    """``(N, C, T, H, W)`` -> ``(N * T, C, H, W)``."""
    n, c, t, h, w = clips.shape
    return clips.transpose(1, 2).reshape(n * t, c, h, w)


def unframes(x: torch.Tensor, n: int, t: int) -> torch.Tensor:
    """Inverse of :func:`frames`."""
    return x.reshape(n, t, *x.shape[1:]).transpose(1, 2)


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Grow a ``(B, 1, H, W)`` binary mask by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return mask
    return F.max_pool2d(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` with a kernel of 3 sigma each side.

    Borders are reflected; the kernel is clipped to the frame where the frame is smaller.
    """
    if sigma <= 0:
        return x
    h, w = x.shape[-2:]
    radius = max(1, min(math.ceil(3 * sigma), h - 1, w - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    kx = kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    ky = kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode='reflect'), kx, groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode='reflect'), ky, groups=c)

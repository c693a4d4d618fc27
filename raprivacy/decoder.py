"""The decoder of the style transfer module: the encoder mirrored (RAPrivacy Sec. 3.1, Eq. 3).

``I_cs = Dec(F3_cs, F4_cs, F5_cs)``: the relu5_1 embedding is brought to relu4_1's channels and
size and added to the relu4_1 embedding; the mirrored stage 4 brings the sum to relu3_1, where
it is concatenated with the relu3_1 embedding (as in AdaAttN); mirrored stages 3, 2 and 1 then
return to RGB. Upsampling is nearest-neighbour to the exact encoder sizes, so odd frame sizes
come back at their own size. The channels of each mirrored stage are the encoder's at that
stage (VGG-19's at any width, or MobileNetV2's taps, ``raprivacy.mobilenet``); the taps must be
at strides 2, 4, 8 and 16 for layers 2 to 5, as both encoders' are.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, padding_mode='reflect')]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """Mirror of the encoder from its fifth layer, taking the three embedded features of Eq. 3.

    Args:
        channels (tuple of int): The encoder's five layer widths (``encoder.channels``).
    """

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.from5 = _conv(c5, c4)
        self.stage4 = nn.Sequential(_conv(c4, c4), _conv(c4, c4), _conv(c4, c4), _conv(c4, c3))
        self.merge3 = _conv(2 * c3, c3)
        self.stage3 = nn.Sequential(_conv(c3, c3), _conv(c3, c3), _conv(c3, c2))
        self.stage2 = nn.Sequential(_conv(c2, c2), _conv(c2, c1))
        self.stage1 = nn.Sequential(_conv(c1, c1), _conv(c1, 3, relu=False))
        # mid-grey: a new decoder's output starts inside [0, 1], where every loss reaches it
        # (from PyTorch's default it starts near 0, two thirds of its values clamped away)
        nn.init.constant_(self.stage1[1][0].bias, 0.5)

    def forward(self, f3: torch.Tensor, f4: torch.Tensor, f5: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
        """Images ``(B, 3, *size)`` (unclamped) from relu3_1, relu4_1, relu5_1 embeddings."""
        h, w = size
        x = F.interpolate(self.from5(f5), size=f4.shape[-2:], mode='nearest') + f4
        x = F.interpolate(self.stage4(x), size=f3.shape[-2:], mode='nearest')
        x = self.stage3(self.merge3(torch.cat([x, f3], dim=1)))
        x = F.interpolate(x, size=(math.ceil(h / 2), math.ceil(w / 2)), mode='nearest')
        x = F.interpolate(self.stage2(x), size=(h, w), mode='nearest')
        return self.stage1(x)

"""The decoder of the style transfer module: VGG-19 mirrored (RAPrivacy Sec. 3.1, Eq. 3).

``I_cs = Dec(F3_cs, F4_cs, F5_cs)``: the relu5_1 embedding is brought to relu4_1's channels and
size and added to the relu4_1 embedding; the mirrored stage 4 brings the sum to relu3_1, where
it is concatenated with the relu3_1 embedding (as in AdaAttN); mirrored stages 3, 2 and 1 then
return to RGB. Upsampling is nearest-neighbour to the exact encoder sizes, so odd frame sizes
come back at their own size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from raprivacy.encoder import stage_channels


def _conv(cin: int, cout: int, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, padding_mode='reflect')]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Decoder(nn.Module):
    """Mirror of VGG-19 from relu5_1, taking the three embedded features of Eq. 3.

    Args:
        width (float): Channel multiplier, the encoder's. Defaults to 1.0.
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = stage_channels(width)
        self.from5 = _conv(c5, c4)
        self.stage4 = nn.Sequential(_conv(c4, c4), _conv(c4, c4), _conv(c4, c4), _conv(c4, c3))
        self.merge3 = _conv(2 * c3, c3)
        self.stage3 = nn.Sequential(_conv(c3, c3), _conv(c3, c3), _conv(c3, c2))
        self.stage2 = nn.Sequential(_conv(c2, c2), _conv(c2, c1))
        self.stage1 = nn.Sequential(_conv(c1, c1), _conv(c1, 3, relu=False))

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

"""Depth Image: the scene's depth map shown as a grey image instead of the colour frame.

The paper (RAPrivacy, section 4.4) evaluates depth frames from ZoeDepth (Bhat et al., 2023)
as a readable but weak anonymizer. On vp_synth the rendered ground-truth depth is used; on real
video the dataset computes ZoeDepth maps from weights the user supplies (see README).
"""
from __future__ import annotations

import torch

from benchmark.anonymizer import Anonymizer
from benchmark.errors import Bound
from benchmark.registry import ANONYMIZERS


@ANONYMIZERS.register_module()
class DepthImage(Anonymizer):
    """Replaces every frame by its nearness map (bright = near), repeated over RGB.

    Args:
        gamma (float): Exponent applied to the nearness map, for contrast. Defaults to 1.0
            (the map as the dataset gives it).
    """

    per_frame = True  # frame by frame, 2D only
    table_name = 'Depth Image'
    readable = True
    needs = ('depth',)

    def __init__(self, gamma: float = 1.0) -> None:
        super().__init__()
        Bound(float, 0, strict=True).check('gamma', gamma)
        self.gamma = gamma

    def forward(self, clips: torch.Tensor, aux=None) -> torch.Tensor:
        depth = self.check_aux(aux)['depth'].to(clips.dtype)
        if self.gamma != 1.0:
            depth = depth.clamp(0, 1).pow(self.gamma)
        return depth.expand_as(clips).clone()

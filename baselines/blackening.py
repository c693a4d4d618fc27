"""Blackening: person regions filled with black (the obfuscation baselines of Table 1).

No public code fixes the region; ours: the person mask (ground truth on vp_synth, a person
segmenter or detector on real video), grown by ``dilate`` pixels at 112 px frame height so the
outline of the body is covered too, then set to black in every frame.
"""
from __future__ import annotations

import torch

from baselines.regions import dilate, frames, scaled, unframes
from benchmark.anonymizer import Anonymizer
from benchmark.errors import Bound
from benchmark.registry import ANONYMIZERS


@ANONYMIZERS.register_module()
class Blackening(Anonymizer):
    """Sets the (dilated) person region to black.

    Args:
        dilate (float): Pixels, at 112 px frame height, by which the mask grows.
            Defaults to 2.
    """

    per_frame = True  # frame by frame, 2D only
    table_name = 'Blackening'
    needs = ('mask',)

    def __init__(self, dilate: float = 2.0) -> None:
        super().__init__()
        Bound(float, 0).check('dilate', dilate)
        self.dilate = dilate

    def forward(self, clips: torch.Tensor, aux=None) -> torch.Tensor:
        n, _, t, h, _ = clips.shape
        mask = dilate(frames(self.check_aux(aux)['mask']).round(),
                      round(scaled(self.dilate, h)))
        return clips * (1.0 - unframes(mask, n, t))

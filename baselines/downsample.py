"""Downsample-2x / Downsample-4x: low-resolution video (Ryoo et al., AAAI 2017, and
Dai et al., 2015, as cited by the RAPrivacy paper's Table 1).

No public code fixes the operation; ours: area averaging over ``factor x factor`` blocks (the
anti-aliased reduction a low-resolution sensor gives), then bilinear upsampling back to the
input size, so the target models see the same input size as every other method.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from baselines.regions import frames, unframes
from benchmark.anonymizer import Anonymizer
from benchmark.errors import Bound, ConfigError
from benchmark.registry import ANONYMIZERS


@ANONYMIZERS.register_module()
class Downsample(Anonymizer):
    """Area downsampling by ``factor`` and bilinear upsampling back.

    Args:
        factor (int): Reduction factor of both sides. Defaults to 2.
        upsample (str): Interpolation back to the input size, ``'bilinear'`` or
            ``'nearest'``. Defaults to ``'bilinear'``.
    """

    table_name = 'Downsample-{factor}x'  # filled in by __init__ (and by `bench ls`, unbuilt)
    privacy_learning = False
    per_frame = True  # frame by frame, 2D only

    def __init__(self, factor: int = 2, upsample: str = 'bilinear') -> None:
        super().__init__()
        Bound(int, 1).check('factor', factor)
        if upsample not in ('bilinear', 'nearest'):
            raise ConfigError(f"upsample={upsample!r}: it must be 'bilinear' or 'nearest'")
        self.factor = factor
        self.upsample = upsample
        self.table_name = type(self).table_name.format(factor=factor)

    def forward(self, clips: torch.Tensor, aux=None) -> torch.Tensor:
        n, _, t, h, w = clips.shape
        x = frames(clips)
        small = F.interpolate(x, size=(max(1, h // self.factor), max(1, w // self.factor)),
                              mode='area')
        kwargs = {'align_corners': False} if self.upsample == 'bilinear' else {}
        x = F.interpolate(small, size=(h, w), mode=self.upsample, **kwargs)
        return unframes(x, n, t)

"""StrongBlur / WeakBlur: Gaussian blur of person regions (Table 1's blurring baselines).

No public code fixes the kernels; ours, in pixels at 112 px frame height (scaled with the
frame): the whole frame is blurred with a Gaussian of standard deviation ``sigma`` (kernel
radius 3 sigma, reflected borders), and the blurred pixels replace the originals inside the
person mask grown by ``dilate`` pixels. Weak: sigma 2 (a 13-tap kernel); strong: sigma 6
(a 37-tap kernel), which removes facial detail at 112 px while keeping the body outline.
"""
from __future__ import annotations

import torch

from baselines.regions import dilate, frames, gaussian_blur, scaled, unframes
from benchmark.anonymizer import Anonymizer
from benchmark.errors import Bound
from benchmark.registry import ANONYMIZERS


@ANONYMIZERS.register_module()
class RegionBlur(Anonymizer):
    """Blurs the (dilated) person region.

    Args:
        sigma (float): Gaussian standard deviation in pixels at 112 px frame height.
            Defaults to 6.0 (StrongBlur).
        dilate (float): Pixels, at 112 px frame height, by which the mask grows.
            Defaults to 2.
        name (str): Row name in Table 1. Defaults to ``'StrongBlur'``.
    """

    table_name = '{name}'  # filled in by __init__ (and by `bench ls`, unbuilt)
    needs = ('mask',)
    per_frame = True  # frame by frame, 2D only

    def __init__(self, sigma: float = 6.0, dilate: float = 2.0, name: str = 'StrongBlur') -> None:
        super().__init__()
        Bound(float, 0, strict=True).check('sigma', sigma)
        Bound(float, 0).check('dilate', dilate)
        self.sigma = sigma
        self.dilate = dilate
        self.table_name = type(self).table_name.format(name=name)

    def forward(self, clips: torch.Tensor, aux=None) -> torch.Tensor:
        n, _, t, h, _ = clips.shape
        x = frames(clips)
        mask = dilate(frames(self.check_aux(aux)['mask']).round(),
                      round(scaled(self.dilate, h)))
        blurred = gaussian_blur(x, scaled(self.sigma, h))
        return unframes(x + mask * (blurred - x), n, t)

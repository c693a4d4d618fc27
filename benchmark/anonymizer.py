"""The contract every anonymizer meets, fixed or learning.

An anonymizer maps a batch of clips to a batch of clips of the same shape and dtype:
``(N, 3, T, H, W)`` RGB floats in [0, 1]. Some need more than pixels: the protocol hands
them the auxiliary maps they name in ``needs`` (each ``(N, 1, T, H, W)`` in [0, 1]):

- ``'depth'``: nearness, 1 = nearest, as a depth camera image is usually shown.
- ``'mask'``: 1 where a person is, 0 elsewhere.

A learning anonymizer (``learns = True``) also has a fitting recipe in its method config
(``fit = dict(model=...)``): an MMEngine model with an ``anonymizer`` attribute that the
protocol trains first, then freezes and hands to the target models.
"""
from __future__ import annotations

import torch
from torch import nn

from benchmark.registry import ANONYMIZERS, closest, UnknownNameError

AUX_KEYS = ('depth', 'mask')


class Anonymizer(nn.Module):
    """Base class of registered anonymizers.

    Class attributes describe the method for tables and the protocol:
    ``table_name`` (the row name in the paper's Table 1), ``privacy_learning`` and
    ``readable`` (the paper's two check-mark columns), ``learns`` (needs fitting),
    ``needs`` (auxiliary maps, a subset of ``AUX_KEYS``) and ``per_frame`` (in eval mode each
    output frame depends on that frame and its aux maps alone, so whole videos may be
    anonymized once; see ``benchmark.datasets.anonymized``).
    """

    table_name: str = ''
    privacy_learning: bool = False
    readable: bool = False
    learns: bool = False
    needs: tuple[str, ...] = ()
    per_frame: bool = False

    def forward(self, clips: torch.Tensor, aux: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        raise NotImplementedError(f'{type(self).__name__} must define forward(clips, aux)')

    def check_aux(self, aux: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        aux = aux or {}
        missing = [k for k in self.needs if k not in aux]
        if missing:
            raise ValueError(
                f'{type(self).__name__} needs {", ".join(missing)} maps but the dataset gives '
                f'{", ".join(aux) or "none"}: use a dataset that provides them (vp_synth does; '
                f'real datasets compute them, see README "Using the real datasets")')
        return aux


def build_anonymizer(cfg: dict) -> Anonymizer:
    """Build an anonymizer from its config, with a near-miss message for unknown types."""
    cfg = dict(cfg)
    name = cfg.get('type')
    if ANONYMIZERS.get(name) is None:
        raise UnknownNameError(closest(str(name), list(ANONYMIZERS.module_dict), 'anonymizer'))
    return ANONYMIZERS.build(cfg)

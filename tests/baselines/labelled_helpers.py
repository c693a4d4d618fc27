"""Tiny batches with privacy labels and optimizers for the learned baselines' tests."""
from __future__ import annotations

import torch

from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.raprivacy.helpers import clip_batch

PRIVACY = ((1, 0, 1, 0, 0), (0, 1, 1, 0, 1), (1, 1, 0, 1, 0), (0, 0, 0, 1, 1))
PREPROCESSOR = dict(type='ClipPreprocessor', normalize=False, keep_aux=True)


def tiny_backbone(frame: bool = False) -> dict:
    video = dict(type='ResNet3d', depth=18, base_channels=4, pretrained=None, pretrained2d=False)
    return dict(video, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False) if frame else video


def labelled_batch(privacy=PRIVACY, seed: int = 0, **kwargs) -> dict:
    """``clip_batch`` (packed uint8 clips, action labels) with each clip's privacy bits in its
    metainfo, as ClipDataset gives them."""
    data = clip_batch(seed=seed, **kwargs)
    for sample, bits in zip(data['data_samples'], privacy):
        sample.set_metainfo(dict(privacy=list(bits)))
    return data


def build_with_optim(cfg: dict, parts: tuple[str, ...], lr: float = 1e-2, optimizer: str = 'AdamW'):
    """The model of ``cfg`` and one optimizer of type ``optimizer`` per part."""
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    one = dict(type='OptimWrapper', optimizer=dict(type=optimizer, lr=lr))
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor',
                                                     optim_wrapper_cfg={p: one for p in parts}))(model)
    return model, wrappers

"""Tiny RAPrivacy configs and batches shared by the tests (16-32 px frames, T=2-4)."""
from __future__ import annotations

import numpy as np
import torch
from mmaction.structures import ActionDataSample
from mmengine.structures import LabelData

STYLES = np.random.default_rng(0).integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)


def tiny_anonymizer_cfg(**encoder) -> dict:
    return dict(type='RAPrivacyAnonymizer',
                encoder=dict(weights='random', width=0.0625, **encoder),
                style_set=dict(type='ImageStyles', images=STYLES))


def tiny_model_cfg(**kwargs) -> dict:
    backbone = dict(type='ResNet3d', depth=18, base_channels=4, pretrained=None, pretrained2d=False)
    cfg = dict(type='RAPrivacyModel', anonymizer=tiny_anonymizer_cfg(), num_classes=3,
               action_backbone=backbone,
               privacy_backbone=dict(backbone, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7),
                                     with_pool2=False),
               privacy_embed_dim=8,
               data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True))
    cfg.update(kwargs)
    return cfg


def tiny_optim_cfg(lr: float = 1e-2) -> dict:
    one = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=lr, weight_decay=0.05))
    return dict(constructor='MultiOptimWrapperConstructor', anonymizer=one, action_branch=one,
                privacy_branch=one)


def clip_batch(actions=(0, 0, 1, 2), videos=('a', 'b', 'c', 'd'), t: int = 4, size: int = 32,
               seed: int = 0) -> dict:
    """A collated batch as ClipDataset gives it: packed uint8 clips and action data samples."""
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for action, video in zip(actions, videos):
        inputs.append(torch.randint(0, 256, (1, 3, t, size, size), generator=gen, dtype=torch.uint8))
        sample = ActionDataSample()
        sample.gt_labels = LabelData(item=torch.tensor([action]))
        sample.set_metainfo(dict(video_id=video, action=action))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def live(anonymizer) -> None:
    """He-initialise the 3x3 convolutions of a random encoder and decoder: from PyTorch's default
    their activations shrink layer after layer until the output is a flat image, whose style
    gradients vanish."""
    for module in (*anonymizer.encoder.modules(), *anonymizer.decoder.modules()):
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity='relu')

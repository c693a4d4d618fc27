"""Tiny batches with privacy labels and optimizers for the learned baselines' tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from tests.adversarial_checks import assert_same, grads_of
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


def assert_branches_step_on_their_own_losses(model, steps, batch: dict, clips: torch.Tensor, privacy: str) -> None:
    """The iteration's steps after the anonymizer's: the action branch on cross-entropy and the
    privacy branch ``privacy`` on binary cross-entropy against the true attributes (the
    adversary's own side), both on the detached output ``clips``."""
    assert [s[0] for s in steps] == ['anonymizer', 'action_branch', privacy]
    assert_same(steps[1][1], grads_of(F.cross_entropy(model.action_branch(clips), batch['actions']),
                                      model.action_branch), 'action_branch.')
    branch = getattr(model, privacy)
    assert_same(steps[2][1], grads_of(F.binary_cross_entropy_with_logits(branch(clips), batch['privacy']),
                                      branch), privacy + '.')


def assert_each_part_changed_only_itself(steps, parts: tuple[str, ...], log: dict, keys: tuple[str, ...]) -> None:
    """Each optimizer step changed parameters of its own part only, and ``keys`` of the
    iteration's ``log`` are finite."""
    assert [s[0] for s in steps] == list(parts)
    for name, _, changed in steps:
        assert changed and all(p.startswith(name + '.') for p in changed), (name, sorted(changed)[:3])
    for key in keys:
        assert torch.isfinite(torch.as_tensor(log[key])), key

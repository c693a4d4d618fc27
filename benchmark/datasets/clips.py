"""``ClipDataset``: clips and labels for the protocol's models, from any video source.

A *source* (vp_synth, vp_ucf101, ...) knows its videos; this dataset samples clips from them
(``benchmark.datasets.sampling``), crops, flips, and packs RGB with the source's aux maps into
uint8 ``(V, 3 + A, T, H, W)`` with an ``ActionDataSample`` whose ``gt_labels`` is the action
class (``target='action'``) or the 5 privacy bits (``target='privacy'``).

A source implements: ``__len__``, ``num_frames(i)``, ``read(i, frame_indices)`` returning
uint8 ``(T, H, W, 3 + A)``, ``action(i)``, ``privacy(i)`` (5 ints), ``video_id(i)``, and the
attributes ``classes``, ``attributes`` and ``aux_channels``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from mmaction.structures import ActionDataSample
from mmengine.structures import LabelData
from torch.utils.data import Dataset

from benchmark.metric_specs import PRIVACY_ATTRIBUTES  # noqa: F401 (re-exported)
from benchmark.datasets.sampling import spread_clip_indices, fixed_crop_boxes, train_clip_indices
from benchmark.registry import DATASETS


def resize_short_side(clip: torch.Tensor, resize_short: int | None, crop_size: int) -> torch.Tensor:
    """Resize uint8 ``(C, T, H, W)`` so its short side is ``resize_short`` (no-op for ``None``),
    keeping both sides at least ``crop_size``."""
    if not resize_short or min(clip.shape[-2:]) == resize_short:
        return clip
    h, w = clip.shape[-2:]
    scale = resize_short / min(h, w)
    size = (max(crop_size, round(h * scale)), max(crop_size, round(w * scale)))
    return F.interpolate(clip.float(), size=size, mode='bilinear', antialias=True,
                         align_corners=False).round_().clamp_(0, 255).to(torch.uint8)


@DATASETS.register_module()
class ClipDataset(Dataset):
    """Training or testing clips drawn from a video source.

    Args:
        source (dict | object): The video source or its config.
        target (str): ``'action'`` or ``'privacy'``: which labels go in ``gt_labels``.
            Defaults to ``'action'``.
        test_mode (bool): Evenly spread clips and fixed crops instead of random ones.
            Defaults to False.
        clip_len (int): Frames per clip. Defaults to 16.
        frame_interval (int): Source frames between sampled frames. Defaults to 2.
        crop_size (int): Side of the square crop fed to the models. Defaults to 112.
        resize_short (int, optional): Resize frames so the short side has this length before
            cropping; ``None`` keeps the source size. Defaults to None.
        num_clips (int): Test clips per video. Defaults to 5.
        num_crops (int): Test crops per clip (1 or 3). Defaults to 3.
        flip (bool): Random horizontal flips in training. Defaults to True.
    """

    def __init__(self, source, target: str = 'action', test_mode: bool = False,
                 clip_len: int = 16, frame_interval: int = 2, crop_size: int = 112,
                 resize_short: int | None = None, num_clips: int = 5, num_crops: int = 3,
                 flip: bool = True) -> None:
        if target not in ('action', 'privacy'):
            raise ValueError(f"target must be 'action' or 'privacy', got {target!r}")
        self.source = DATASETS.build(source) if isinstance(source, dict) else source
        self.target = target
        self.test_mode = test_mode
        self.clip_len = clip_len
        self.frame_interval = frame_interval
        self.crop_size = crop_size
        self.resize_short = resize_short
        self.num_clips = num_clips
        self.num_crops = num_crops
        self.flip = flip
        self.metainfo = dict(classes=tuple(self.source.classes),
                             attributes=tuple(self.source.attributes),
                             aux_channels=tuple(self.source.aux_channels))

    def __len__(self) -> int:
        return len(self.source)

    def _frames(self, i: int, indices: np.ndarray) -> torch.Tensor:
        """Read frames as float-free uint8 ``(C, T, H, W)``, resized if asked."""
        clip = torch.from_numpy(np.ascontiguousarray(self.source.read(i, indices)))
        return resize_short_side(clip.permute(3, 0, 1, 2), self.resize_short, self.crop_size)

    def __getitem__(self, i: int) -> dict:
        n = self.source.num_frames(i)
        s = self.crop_size
        if self.test_mode:
            views = []
            for indices in spread_clip_indices(n, self.clip_len, self.frame_interval, self.num_clips):
                clip = self._frames(i, indices)
                for y, x in fixed_crop_boxes(clip.shape[-2], clip.shape[-1], s, self.num_crops):
                    views.append(clip[..., y:y + s, x:x + s])
            inputs = torch.stack(views)
        else:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
            clip = self._frames(i, train_clip_indices(n, self.clip_len, self.frame_interval, rng))
            h, w = clip.shape[-2:]
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            clip = clip[..., y:y + s, x:x + s]
            if self.flip and rng.random() < 0.5:
                clip = clip.flip(-1)
            inputs = clip.unsqueeze(0).contiguous()

        sample = ActionDataSample()
        action = int(self.source.action(i))
        privacy = torch.as_tensor(np.asarray(self.source.privacy(i)), dtype=torch.float32)
        if self.target == 'action':
            sample.gt_labels = LabelData(item=torch.tensor([action]))
        else:
            sample.gt_labels = LabelData(item=privacy)
        sample.set_metainfo(dict(video_id=self.source.video_id(i), action=action,
                                 privacy=privacy.tolist()))
        return dict(inputs=inputs, data_samples=sample)

"""Where clips start and where crops sit: the protocol's sampling, in one place.

Training takes one clip at a random start and a random crop. Testing takes ``num_clips``
clips spread evenly over the video (they overlap when the video is short, and frame indices
wrap around when the video is shorter than one clip) times ``num_crops`` fixed crops along the
frame (3 crops: both ends and the centre of the longer side, as mmaction2's ThreeCrop; the
shorter side is covered fully when it equals the crop size).
"""
from __future__ import annotations

import numpy as np


def clip_span(clip_len: int, frame_interval: int) -> int:
    """Number of source frames one clip covers."""
    return (clip_len - 1) * frame_interval + 1


def _indices_from(start: int, num_frames: int, clip_len: int, frame_interval: int) -> np.ndarray:
    return (start + np.arange(clip_len) * frame_interval) % num_frames


def train_clip_indices(num_frames: int, clip_len: int, frame_interval: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Frame indices of one training clip with a uniformly random start."""
    room = num_frames - clip_span(clip_len, frame_interval)
    start = int(rng.integers(0, room + 1)) if room > 0 else 0
    return _indices_from(start, num_frames, clip_len, frame_interval)


def spread_clip_indices(num_frames: int, clip_len: int, frame_interval: int,
                      num_clips: int) -> np.ndarray:
    """Frame indices ``(num_clips, clip_len)`` of clips spread evenly over the video."""
    room = max(num_frames - clip_span(clip_len, frame_interval), 0)
    if num_clips == 1:
        starts = np.array([room // 2])
    else:
        starts = np.round(np.linspace(0, room, num_clips)).astype(int)
    return np.stack([_indices_from(int(s), num_frames, clip_len, frame_interval) for s in starts])


def fixed_crop_boxes(height: int, width: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of ``num_crops`` square crops of ``size`` (1 or 3 crops)."""
    if size > min(height, width):
        raise ValueError(f'crop size {size} exceeds the frame size {height}x{width}')
    cy, cx = (height - size) // 2, (width - size) // 2
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops != 3:
        raise ValueError(f'num_crops must be 1 or 3, got {num_crops}')
    if width >= height:
        return [(cy, 0), (cy, cx), (cy, width - size)]
    return [(0, cx), (cy, cx), (height - size, cx)]

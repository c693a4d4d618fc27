"""Clip and crop sampling of the protocol: 5 clips spread over the video, 3 crops."""
import numpy as np
import pytest

from benchmark.datasets.sampling import (clip_span, spread_clip_indices, fixed_crop_boxes,
                                         train_clip_indices)


def test_test_clips_spread_evenly_and_cover_the_ends():
    idx = spread_clip_indices(num_frames=100, clip_len=8, frame_interval=2, num_clips=5)
    assert idx.shape == (5, 8)
    assert idx[0, 0] == 0 and idx[-1, -1] == 99
    starts = idx[:, 0]
    assert np.all(np.diff(starts) > 0)
    assert np.ptp(np.diff(starts)) <= 1
    assert np.all(np.diff(idx, axis=1) == 2)


def test_short_videos_overlap_and_wrap():
    idx = spread_clip_indices(num_frames=16, clip_len=8, frame_interval=2, num_clips=5)
    assert idx.shape == (5, 8) and idx.max() < 16
    assert np.all(idx[:, 0] <= 1)  # only one frame of room: the clips overlap
    tiny = spread_clip_indices(num_frames=5, clip_len=8, frame_interval=1, num_clips=2)
    assert tiny.max() < 5 and tiny.shape == (2, 8)


def test_train_clips_start_anywhere_with_room():
    rng = np.random.default_rng(0)
    starts = {int(train_clip_indices(40, 8, 2, rng)[0]) for _ in range(300)}
    assert min(starts) == 0 and max(starts) == 40 - clip_span(8, 2)


def test_three_crops_along_the_longer_side():
    assert fixed_crop_boxes(64, 64, 56, 3) == [(4, 0), (4, 4), (4, 8)]
    assert fixed_crop_boxes(128, 170, 112, 3) == [(8, 0), (8, 29), (8, 58)]
    assert fixed_crop_boxes(170, 128, 112, 3) == [(0, 8), (29, 8), (58, 8)]
    assert fixed_crop_boxes(64, 64, 56, 1) == [(4, 4)]
    with pytest.raises(ValueError, match='exceeds'):
        fixed_crop_boxes(32, 32, 56, 3)

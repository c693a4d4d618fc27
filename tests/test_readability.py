"""The readability measures on hand-made frames whose answers are known."""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmark import readability as R

SIZE = 56


def _person_masks(t: int = 4, shift: int = 0) -> np.ndarray:
    """A walking figure: a head and a body, moving right by 2 px a frame (``shift`` moves it
    right and down)."""
    masks = np.zeros((t, SIZE, SIZE), np.uint8)
    for i in range(t):
        x, y = 16 + 2 * i + shift, shift // 2
        cv2.circle(masks[i], (x + 6, y + 12), 5, 1, -1)
        cv2.rectangle(masks[i], (x, y + 18), (x + 12, y + 46), 1, -1)
    return masks


def _as_frames(grey: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` in [0, 1] as RGB frames."""
    return np.repeat(grey[..., None].astype(np.float64), 3, -1)


def _nearness(masks: np.ndarray) -> np.ndarray:
    """A room whose floor comes nearer toward the bottom, the person nearest of all."""
    floor = np.linspace(0.1, 0.5, SIZE)[None, :, None] * np.ones((len(masks), SIZE, SIZE))
    return np.where(masks > 0, 0.9, floor)


def test_the_mask_itself_has_the_whole_outline():
    masks = _person_masks()
    assert R.outline_score(_as_frames(masks), masks) == pytest.approx(1.0)


@pytest.mark.parametrize('level', [0.0, 0.5, 1.0])
def test_a_constant_frame_has_no_outline(level):
    masks = _person_masks()
    assert R.outline_score(_as_frames(np.full(masks.shape, level)), masks) == 0.0


def test_an_outline_far_off_the_person_does_not_count_and_strong_blur_loses_it():
    masks = _person_masks()
    assert R.outline_score(_as_frames(_person_masks(shift=16)), masks) < 0.2
    person = 0.3 + 0.3 * masks  # a person 76 grey levels brighter than the room
    assert R.outline_score(_as_frames(person), masks) == pytest.approx(1.0)
    blurred = np.stack([cv2.GaussianBlur(frame, (0, 0), 4) for frame in person])
    assert R.outline_score(_as_frames(blurred), masks) == 0.0


def test_clutter_beside_the_outline_lowers_precision_only():
    masks = _person_masks()
    grey = masks.astype(np.float64)
    grey[:, 50:54, 2:54] = 1.0  # a bright shelf away from the person
    score = R.outline_score(_as_frames(grey), masks)
    assert 0.5 < score < 1.0


def test_the_nearness_map_itself_is_fully_depth_like():
    masks = _person_masks()
    depth = _nearness(masks)
    assert R.depth_likeness(_as_frames(depth), depth) == pytest.approx(1.0)


@pytest.mark.parametrize('level', [0.0, 0.3, 0.9, 1.0])
def test_a_constant_frame_is_not_depth_like(level):
    depth = _nearness(_person_masks())
    assert R.depth_likeness(_as_frames(np.full(depth.shape, level)), depth) == 0.0


def test_a_photograph_is_less_depth_like_than_its_depth_map_and_an_inverted_map_least():
    masks = _person_masks()
    depth = _nearness(masks)
    rng = np.random.default_rng(0)
    photo = np.clip(np.where(masks > 0, 0.7, 0.4) + rng.normal(0, 0.15, masks.shape), 0, 1)
    assert 0 < R.depth_likeness(_as_frames(photo), depth) < 0.5
    assert R.depth_likeness(_as_frames(1 - depth), depth) < 0.05


def test_chroma_of_grey_is_zero_and_of_pure_colour_one():
    assert R.mean_chroma(_as_frames(np.random.default_rng(0).random((2, 8, 8)))) == 0.0
    red = np.zeros((2, 8, 8, 3))
    red[..., 0] = 1.0
    assert R.mean_chroma(red) == 1.0


def _clips(frames: np.ndarray) -> torch.Tensor:
    """``(T, H, W, 3)`` -> one clip ``(1, 3, T, H, W)``."""
    return torch.from_numpy(frames).float().permute(3, 0, 1, 2).unsqueeze(0)


def test_readability_on_true_maps_gives_the_three_metrics():
    masks = _person_masks()
    depth = _nearness(masks)
    rng = np.random.default_rng(1)
    raw = np.clip(_as_frames(masks * 0.5) + rng.random((*masks.shape, 3)) * 0.3, 0, 1)
    aux = {'mask': _clips(masks[..., None].astype(np.float64)),
           'depth': _clips(depth[..., None])}
    meter = R.Readability(truth=True)
    meter.add(_clips(raw), _clips(_as_frames(depth)), aux)
    assert meter.metrics() == pytest.approx({'readability_colour': 0.0, 'readability_outline': 1.0,
                                             'readability_depth': 1.0}, abs=1e-6)
    same = R.Readability(truth=True)
    same.add(_clips(raw), _clips(raw), aux)
    assert same.metrics()['readability_colour'] == pytest.approx(1.0)


def _bright_person(frames: np.ndarray) -> np.ndarray:
    """A stand-in person model: bright pixels are the person."""
    return (frames.mean(-1) > 128).astype(np.uint8) * 255


def test_person_overlap_and_faces_against_what_raw_frames_show():
    masks = _person_masks()
    raw = _as_frames(masks * 0.9)
    half = raw.copy()
    half[:, :18] = 0  # the head hidden in every frame, the body left
    faces = {True: [(10, 5, 12, 12)], False: []}  # a face where the frame shows the head

    def face_finder(frame):
        return faces[bool(frame[:17].max() > 128)]

    results = {}
    for name, out in (('raw', raw), ('constant', np.zeros_like(raw)), ('half', half)):
        meter = R.Readability(truth=False, person=_bright_person, faces=face_finder)
        meter.add(_clips(raw), _clips(out))
        results[name] = meter.metrics()
    assert results['raw']['readability_person'] == 1.0
    assert results['raw']['readability_faces'] == 1.0
    assert results['constant']['readability_person'] == 0.0
    assert results['constant']['readability_faces'] == 0.0
    kept = (masks[:, 18:] > 0).sum()
    assert results['half']['readability_person'] == pytest.approx(kept / (masks > 0).sum())
    assert results['half']['readability_faces'] == 0.0  # the head is in the hidden part


def test_no_person_on_the_raw_frames_is_nan_not_a_score():
    meter = R.Readability(truth=False, person=_bright_person, faces=lambda frame: [])
    dark = _as_frames(np.zeros((2, SIZE, SIZE)))
    meter.add(_clips(dark), _clips(dark))
    metrics = meter.metrics()
    assert np.isnan(metrics['readability_person']) and np.isnan(metrics['readability_faces'])


def test_a_face_counts_as_still_found_only_where_it_overlaps():
    assert R.faces_kept_counts([(0, 0, 10, 10), (30, 30, 10, 10)], [(1, 1, 10, 10)]) == (1, 2)
    assert R.box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


VTEST = Path('/usr/share/doc/opencv-doc/examples/data/vtest.avi')


@pytest.mark.skipif(not VTEST.is_file(), reason=f'{VTEST} (Debian opencv-doc) is absent')
def test_hog_person_model_on_real_video_finds_raw_people_and_none_on_a_blank_frame():
    capture = cv2.VideoCapture(str(VTEST))
    frames = []
    while len(frames) < 4:
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    raw = _clips(np.stack(frames).astype(np.float64) / 255)
    meter = R.Readability(truth=False)  # HOG and the Haar face cascade, as on real data
    meter.add(raw, raw)
    assert meter.metrics()['readability_person'] == 1.0
    blank = R.Readability(truth=False)
    blank.add(raw, torch.full_like(raw, 0.5))
    assert blank.metrics()['readability_person'] == 0.0

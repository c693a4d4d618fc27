"""Depth (ONNX path, end to end with a tiny exported model) and person masks on real sources.

ZoeDepth's quality cannot be tested here (no weights on any reachable registry): these tests
check the plumbing, the nearness convention, batching and the cache.
"""
import shutil
import warnings

import numpy as np
import pytest
import torch

from benchmark.datasets.depth_model import DepthEstimator, check_depth_config
from benchmark.datasets.person_regions import PersonRegions, _mediapipe_selfie_model
from benchmark.registry import DATASETS
from tests.datasets.real_tree import SIZE, VTEST, build_hmdb

pytest.importorskip('onnxruntime')


@pytest.fixture(scope='module')
def depth_onnx(tmp_path_factory):
    """Two convs whose output is metric 'depth' = 1 + 10 x brightness: bright = far."""
    pytest.importorskip('onnx')
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1), torch.nn.Conv2d(1, 1, 3, padding=1))
    with torch.no_grad():
        net[0].weight.fill_(10 / 3)
        net[0].bias.fill_(1.0)
        net[1].weight.zero_()
        net[1].weight[0, 0, 1, 1] = 1.0
        net[1].bias.zero_()
    path = tmp_path_factory.mktemp('onnx') / 'depth.onnx'
    # Inputs arrive normalised with mean 0 and std 1 below, i.e. RGB in [0, 1].
    with warnings.catch_warnings():  # the legacy exporter announces its deprecation
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(net, (torch.rand(1, 3, 32, 48),), str(path), input_names=['pixel_values'],
                          dynamic_axes={'pixel_values': {0: 'n'}}, dynamo=False)
    return path


def test_nearness_is_inverse_depth_scaled_per_video(depth_onnx):
    est = DepthEstimator(**check_depth_config(dict(weights=str(depth_onnx), mean=(0, 0, 0),
                                                   std=(1, 1, 1), batch_size=3)))
    assert est.input_size == (32, 48)  # taken from the exported model
    frames = np.zeros((5, 40, 60, 3), np.uint8)
    frames[:, :, 30:] = 200  # right half bright: far
    frames[4] = 100  # a uniform mid-distance frame
    near = est.video_nearness([frames[:2], frames[2:]])
    assert near.shape == (5, 40, 60) and near.dtype == np.uint8
    assert near[0, 20, 5] == 255 and near[0, 20, 55] == 0  # nearest -> 255, farthest -> 0
    assert 0 < near[4, 20, 30] < 255  # one scale for the whole video, not per frame


def test_no_depth_weights_is_one_line_naming_the_option(tmp_path):
    build_hmdb(tmp_path)
    with pytest.raises(ValueError, match=r'dataset\.source\.depth\.weights=PATH') as e:
        DATASETS.build(dict(type='VPHMDB51Source', data_root=str(tmp_path), aux=('depth',)))
    assert '\n' not in str(e.value)
    with pytest.raises(FileNotFoundError, match='nope.onnx do not exist'):
        check_depth_config(dict(weights=str(tmp_path / 'nope.onnx')))


def test_source_packs_cached_depth_and_mask_after_rgb(tmp_path, depth_onnx, monkeypatch):
    build_hmdb(tmp_path)
    cfg = dict(type='VPHMDB51Source', data_root=str(tmp_path), aux=('depth', 'mask'),
               depth=dict(weights=str(depth_onnx), mean=(0, 0, 0), std=(1, 1, 1)),
               person=dict(method='hog'), cache_dir=str(tmp_path / 'cache'))
    src = DATASETS.build(cfg)
    assert src.aux_channels == ('depth', 'mask')
    clip = src.read(1, np.array([0, 5, 19]))
    assert clip.shape == (3, SIZE[1], SIZE[0], 5) and clip.dtype == np.uint8
    depth = clip[..., 3]
    # The fixture's bright top-left corner is 'far' in this model's world: lowest nearness.
    assert depth[:, 2, 2].max() < depth[:, 30, 40].min()
    assert set(np.unique(clip[..., 4])) <= {0, 255}
    for kind in ('depth', 'mask'):
        assert src.aux_cache_path(kind, 1).is_file()

    # A second source (e.g. in another process) reads the cache and runs no model.
    again = DATASETS.build(cfg)
    monkeypatch.setattr(again, '_compute_aux', lambda *a: pytest.fail('cache not used'))
    np.testing.assert_array_equal(again.read(1, np.array([0, 5, 19])), clip)
    # Other weights, other cache.
    other = tmp_path / 'other.onnx'
    shutil.copy(depth_onnx, other)
    moved = DATASETS.build({**cfg, 'depth': dict(weights=str(other), mean=(0, 0, 0), std=(1, 1, 1))})
    assert moved.aux_cache_path('depth', 1) != src.aux_cache_path('depth', 1)


@pytest.fixture(scope='module')
def walkers():
    if not VTEST.is_file():
        pytest.skip(f'{VTEST} is absent (apt-get install opencv-doc)')
    import cv2
    cap = cv2.VideoCapture(str(VTEST))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(3)]
    return np.stack(frames)


def test_hog_finds_the_walkers_in_vtest(walkers):
    masks = PersonRegions('hog', stride=2)(walkers)
    assert masks.shape == walkers.shape[:3] and set(np.unique(masks)) == {0, 255}
    covered = (masks > 0).mean()
    assert 0.005 < covered < 0.5  # some people, not the whole street


def test_selfie_segmentation_through_opencv_dnn(walkers):
    model = _mediapipe_selfie_model()
    if model is None:
        pytest.skip('selfie model absent (pip install --no-deps mediapipe==0.10.21)')
    frames = walkers[:, 150:406, 200:456]  # a crop with people in it
    masks = PersonRegions('selfie', model=str(model), batch_size=2)(frames)
    assert masks.shape == frames.shape[:3] and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 255}
    # Grey frames hold no person.
    assert PersonRegions('selfie', model=str(model))(np.full((1, 64, 64, 3), 128, np.uint8)).max() == 0

"""A real video (OpenCV's vtest.avi, walkers) through a real-layout tree and ClipDataset."""
import numpy as np
import pytest

from benchmark.datasets.clips import ClipDataset
from tests.datasets.real_tree import UCF_CLIPS, VTEST, build_ucf


@pytest.fixture(scope='module')
def vtest_tree(tmp_path_factory):
    if not VTEST.is_file():
        pytest.skip(f'{VTEST} is absent (apt-get install opencv-doc)')
    root = tmp_path_factory.mktemp('ucf_vtest')
    build_ucf(root, missing=False, corrupt=False, unlabelled=False)
    target = root / 'UCF-101' / (UCF_CLIPS['test'][0] + '.avi')
    target.unlink()
    target.symlink_to(VTEST)
    return root


@pytest.mark.parametrize('decoder', ['decord', 'pyav'])
def test_real_video_decodes_to_paper_sized_clips(vtest_tree, decoder):
    source = dict(type='VPUCF101Source', data_root=str(vtest_tree), split='test', decoder=decoder)
    ds = ClipDataset(source, test_mode=True, clip_len=16, frame_interval=4, crop_size=112,
                     resize_short=112, num_clips=1, num_crops=1)
    assert ds.source.num_frames(0) == 795
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (1, 3, 16, 112, 112)
    frames = ds.source.read(0, np.array([0, 400]))
    assert frames.shape == (2, 576, 768, 3)
    assert frames[0].std() > 20 and np.abs(frames[0].astype(int) - frames[1]).mean() > 1

"""VP-UCF101 / VP-HMDB51 sources on fixture trees in the real layouts, through ClipDataset."""
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from benchmark.datasets.annotations import UnsafePickleError, load_privacy_labels
from benchmark.datasets.clips import ClipDataset
from benchmark.registry import DATASETS
from tests.datasets.real_tree import (FRAMES, SIZE, UCF_CLIPS, build_hmdb, build_ucf, frame_value,
                                      malicious_pickle, shared_pickle)


@pytest.fixture(scope='module')
def ucf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('ucf')
    build_ucf(root, missing=False, corrupt=False)
    return root


def ucf(root, **kw):
    return DATASETS.build(dict(type='VPUCF101Source', data_root=str(root), **kw))


def test_train_split_with_labels_and_quirky_names(ucf_root, caplog):
    src = ucf(ucf_root)
    assert src.name == 'vp_ucf101' and len(src.classes) == 101
    # The unlabelled clip is left out, and said so.
    assert [c.stem for c in src.clips] == UCF_CLIPS['train']
    labels = load_privacy_labels(shared_pickle('vp_ucf101'))
    i = [c.stem for c in src.clips].index('HandstandPushups/v_HandStandPushups_g08_c01')
    assert src.privacy(i) == labels['HandstandPushups/v_HandStandPushups_g08_c01'].tolist()
    assert src.classes[src.action(i)] == 'HandstandPushups'
    assert src.video_id(i) == 'HandstandPushups/v_HandStandPushups_g08_c01'
    assert src.num_frames(i) == FRAMES
    clip = src.read(i, np.array([0, 3, 19, 3]))
    assert clip.dtype == np.uint8 and clip.shape == (4, SIZE[1], SIZE[0], 3)
    np.testing.assert_allclose(clip[:, 20:, 20:].mean(axis=(1, 2, 3)),
                               [frame_value(k) for k in (0, 3, 19, 3)], atol=4)
    assert src.aux_channels == ()


def test_unlabelled_clips_are_logged_not_silently_dropped(ucf_root):
    logger = MMLogger.get_instance('real_data_test')
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        ucf(ucf_root)
    finally:
        logger.removeHandler(handler)
    assert any('1 of 6 listed clips have no privacy labels' in r.getMessage() for r in records)


def test_test_split_and_other_split_ids(ucf_root):
    assert [c.stem for c in ucf(ucf_root, split='test').clips] == UCF_CLIPS['test']
    two = ucf(ucf_root, split='test', split_id=2)
    assert [c.stem for c in two.clips] == UCF_CLIPS['test'][1:] + UCF_CLIPS['train'][2:]


def test_clip_dataset_reads_real_sources_in_worker_processes(ucf_root):
    cfg = dict(type='VPUCF101Source', data_root=str(ucf_root), split='test')
    ds = ClipDataset(cfg, target='privacy', test_mode=True, clip_len=4, frame_interval=4,
                     crop_size=32, resize_short=40, num_clips=2, num_crops=3)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=1,
                                         collate_fn=lambda b: b)
    batch = next(iter(loader))
    assert batch[0]['inputs'].shape == (6, 3, 4, 32, 32)
    assert batch[0]['inputs'].dtype == torch.uint8
    assert len(batch[0]['data_samples'].gt_labels.item) == 5


def test_hmdb_split_marks_and_names_with_hash(tmp_path):
    build_hmdb(tmp_path)
    train = DATASETS.build(dict(type='VPHMDB51Source', data_root=str(tmp_path)))
    assert train.classes == ('chew', 'clap', 'shake_hands')
    assert [c.stem for c in train.clips] == ['chew/#2_Gum_chew_h_nm_np1_fr_med_1',
                                             'clap/#20_Rhythm_clap_u_nm_np1_le_goo_5',
                                             'shake_hands/Speech_Day_2009_(Part_9)_shake_hands_f_cm_np2_le_med_6']
    test2 = DATASETS.build(dict(type='VPHMDB51Source', data_root=str(tmp_path), split='test',
                                split_id=2))
    assert [c.stem for c in test2.clips] == ['chew/#2_Gum_chew_h_nm_np1_fr_med_1',
                                             'clap/boom_snap_clap_(challenge)_HARDCORE_VERSION!_clap_u_nm_np1_fr_bad_0',
                                             'shake_hands/Speech_Day_2009_(Part_9)_shake_hands_f_cm_np2_le_med_6']
    assert test2.read(0, np.arange(2)).shape == (2, SIZE[1], SIZE[0], 3)


def test_extracted_frames_layout(tmp_path):
    build_ucf(tmp_path, missing=False, corrupt=False, unlabelled=False, frames_layout=True)
    src = ucf(tmp_path, split='test')
    assert src.index.layout == 'frames'
    assert src.num_frames(0) == FRAMES
    clip = src.read(0, np.array([0, 7]))
    np.testing.assert_allclose(clip.mean(axis=(1, 2, 3)), [frame_value(0), frame_value(7)], atol=3)


def test_pyav_decoder_gives_the_same_frames(ucf_root):
    a = ucf(ucf_root, split='test').read(1, np.array([2, 9]))
    b = ucf(ucf_root, split='test', decoder='pyav').read(1, np.array([2, 9]))
    assert np.abs(a.astype(int) - b).mean() < 3


def test_bad_trees_fail_at_construction_in_one_line(tmp_path):
    with pytest.raises(ValueError, match='pass --data-root PATH.*UCF-101/<Class>/v_'):
        DATASETS.build(dict(type='VPUCF101Source'))
    build_ucf(tmp_path, corrupt=False)
    with pytest.raises(FileNotFoundError, match=r'1 of 3 clips are missing.*v_PommelHorse_g01_c01'
                                                r'.*bench datasets check vp_ucf101'):
        ucf(tmp_path, split='test')
    bad = tmp_path / 'UCF-101' / f'{UCF_CLIPS["train"][0]}.avi'
    bad.write_bytes(b'not a video')
    with pytest.raises(RuntimeError, match=f'1 of 5 clips do not decode: {UCF_CLIPS["train"][0]}.avi'):
        ucf(tmp_path)
    with pytest.raises(FileNotFoundError, match='annotations file .*absent.pickle'):
        ucf(tmp_path, split='test', annotations=str(tmp_path / 'absent.pickle'))
    with pytest.raises(ValueError, match="unknown aux maps \\['flow'\\]"):
        ucf(tmp_path, split='train', aux=('flow',), preflight=False)


def test_a_pickle_that_runs_code_stops_the_source(tmp_path):
    build_hmdb(tmp_path)
    marker = tmp_path / 'ran'
    (tmp_path / 'hmdb51_privacy_attribute_label.pickle').write_bytes(malicious_pickle(marker))
    with pytest.raises(UnsafePickleError, match='refusing to load global'), \
            pytest.warns(UserWarning, match='sha256'):
        DATASETS.build(dict(type='VPHMDB51Source', data_root=str(tmp_path)))
    assert not marker.exists()


@pytest.mark.parametrize('name, interval', [('vp_ucf101', 4), ('vp_hmdb51', 2)])
def test_dataset_config_layers_build_the_sources(name, interval, ucf_root, tmp_path):
    from mmengine.config import Config
    cfg = Config.fromfile(str(Path(__file__).resolve().parents[2] / 'benchmark' / 'configs' / '_base_'
                              / 'datasets' / f'{name}.py'))
    assert cfg.dataset.name == name and cfg.dataset.clip.frame_interval == interval
    if name == 'vp_hmdb51':
        build_hmdb(tmp_path)
    root = ucf_root if name == 'vp_ucf101' else tmp_path
    source = DATASETS.build({**cfg.dataset.source.to_dict(), 'data_root': str(root), 'split': 'test'})
    assert source.name == name and len(source) == 3 and source.aux_channels == ()

"""Fixture trees in the real VP-UCF101 / VP-HMDB51 layouts, for the real-data tests.

Clip names come from the STPrivacy label pickles in ../shared/data/vp_annotations (read,
never copied into the repository); videos are tiny files written here; split files follow the
official formats (UCF101 with CRLF line ends, HMDB51 with a trailing space).
"""
from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.datasets.annotations import FILE_NAMES, load_privacy_labels

_REPO = Path(__file__).resolve().parents[2]
# ../shared beside a checkout, ../../shared beside a worktree of one.
SHARED = next((p for p in (_REPO.parent / 'shared', _REPO.parent.parent / 'shared') if p.is_dir()),
              _REPO.parent / 'shared') / 'data' / 'vp_annotations'
VTEST = Path('/usr/share/doc/opencv-doc/examples/data/vtest.avi')

# The UCF101 folder/file capitalisation quirk and HMDB51 names with '#', '!' and '()'.
UCF_CLIPS = {
    'train': ['ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01', 'ApplyEyeMakeup/v_ApplyEyeMakeup_g09_c02',
              'HandstandPushups/v_HandStandPushups_g08_c01', 'HandstandPushups/v_HandStandPushups_g10_c02',
              'PommelHorse/v_PommelHorse_g18_c04'],
    'test': ['ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01', 'HandstandPushups/v_HandStandPushups_g01_c01',
             'PommelHorse/v_PommelHorse_g01_c01'],
}
UCF_UNLABELLED = 'PommelHorse/v_PommelHorse_g26_c01'  # group 26 does not exist in UCF101
HMDB_CLIPS = {  # class -> [(clip, split-1 mark, split-2 mark)]
    'chew': [('#2_Gum_chew_h_nm_np1_fr_med_1', '1', '2'), ('Fun_Chewing_Gum!_chew_h_nm_np1_fr_med_0', '2', '1'),
             ('Bubble_gum!_XD_chew_h_cm_np1_fr_bad_2', '0', '1')],
    'clap': [('#20_Rhythm_clap_u_nm_np1_le_goo_5', '1', '1'),
             ('boom_snap_clap_(challenge)_HARDCORE_VERSION!_clap_u_nm_np1_fr_bad_0', '2', '2')],
    'shake_hands': [('Speech_Day_2009_(Part_9)_shake_hands_f_cm_np2_le_med_6', '1', '2'),
                    ('Obama_and_Chavez_shaking_hands_shake_hands_u_cm_np2_fr_med_0', '2', '1')],
}
FRAMES = 20
SIZE = (64, 48)  # width, height


def shared_pickle(name: str) -> Path:
    path = SHARED / FILE_NAMES[name]
    if not path.is_file():
        pytest.skip(f'annotation pickle {path} is absent (../shared/data/vp_annotations)')
    return path


def frame_value(i: int) -> int:
    return 10 * i + 5


def write_video(path: Path, frames: int = FRAMES) -> None:
    """MJPEG AVI whose frame i is a flat grey of value ``frame_value(i)`` with a bright corner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 25, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((SIZE[1], SIZE[0], 3), frame_value(i), np.uint8)
        frame[:8, :8] = 255
        writer.write(frame)
    writer.release()


def copy_labels(src: Path, dst: Path) -> Path:
    """Put the published pickle, byte for byte, where a user would."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def build_ucf(root: Path, missing: bool = True, corrupt: bool = True, unlabelled: bool = True,
              frames_layout: bool = False) -> dict:
    """UCF-101/<Class>/v_*.avi + ucfTrainTestlist/ + the label pickle under ``root``."""
    labels = shared_pickle('vp_ucf101')
    classes = sorted({k.split('/')[0] for k in load_privacy_labels(labels)})
    splits = root / 'ucfTrainTestlist'
    splits.mkdir(parents=True)
    (splits / 'classInd.txt').write_bytes(
        ''.join(f'{i + 1} {c}\r\n' for i, c in enumerate(classes)).encode())
    train = list(UCF_CLIPS['train']) + ([UCF_UNLABELLED] if unlabelled else [])
    test = list(UCF_CLIPS['test'])
    for n in (1, 2):
        tr, te = (train, test) if n == 1 else (train[:2] + test[:1], test[1:] + train[2:])
        (splits / f'trainlist0{n}.txt').write_bytes(
            ''.join(f'{c}.avi {classes.index(c.split("/")[0]) + 1}\r\n' for c in tr).encode())
        (splits / f'testlist0{n}.txt').write_bytes(''.join(f'{c}.avi\r\n' for c in te).encode())
    info = dict(missing=None, corrupt=None, classes=classes, train=train, test=test)
    if missing:
        info['missing'] = UCF_CLIPS['test'][2]
    if corrupt:
        info['corrupt'] = UCF_CLIPS['train'][1]
    for clip in train + test:
        if clip == info['missing']:
            continue
        if frames_layout:
            folder = root / 'rawframes' / clip
            folder.mkdir(parents=True)
            for i in range(FRAMES):
                img = np.full((SIZE[1], SIZE[0], 3), frame_value(i), np.uint8)
                cv2.imwrite(str(folder / f'img_{i + 1:05}.jpg'), img)
        elif clip == info['corrupt']:
            path = root / 'UCF-101' / f'{clip}.avi'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b'\x00garbage, not a video\x00' * 64)
        else:
            write_video(root / 'UCF-101' / f'{clip}.avi')
    copy_labels(labels, root / 'annotations' / FILE_NAMES['vp_ucf101'])
    return info


def build_hmdb(root: Path) -> dict:
    """<class>/*.avi + testTrainMulti_7030_splits/ + the label pickle under ``root``."""
    labels = shared_pickle('vp_hmdb51')
    splits = root / 'testTrainMulti_7030_splits'
    splits.mkdir(parents=True)
    for cls, clips in HMDB_CLIPS.items():
        for n in (1, 2):
            (splits / f'{cls}_test_split{n}.txt').write_text(
                ''.join(f'{clip}.avi {marks[n - 1]} \n' for clip, *marks in clips))
        for clip, *_ in clips:
            write_video(root / cls / f'{clip}.avi')
    copy_labels(labels, root / FILE_NAMES['vp_hmdb51'])
    return dict(classes=sorted(HMDB_CLIPS))


def malicious_pickle(marker: Path) -> bytes:
    """A pickle whose loading would create ``marker`` through os.system."""
    class Exploit:
        def __reduce__(self):
            import os
            return os.system, (f'touch {marker}',)
    return pickle.dumps({'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.mp4': Exploit()})

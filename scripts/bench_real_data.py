"""Measure the real-data path: clip decoding throughput and `bench datasets check` time.

1. Decoding: training clips of 16 frames at sampling rate 4, resized to a 112 short side and
   cropped to 112x112 (the paper's input), read through VPUCF101Source + ClipDataset in one
   process (= one DataLoader worker), with decord and with PyAV, on OpenCV's vtest.avi
   (768x576 walkers, Debian opencv-doc; skipped with a message when absent) and on a
   synthetic 320x240 XVID video written here (UCF101's size and codec).
2. Check: `check_dataset` on a UCF101-shaped tree of about 13,000 tiny videos (hard links
   of one 20-frame 64x48 MJPEG file, named after the real clips when the label pickle is in
   ../shared): the quick mode on the whole tree, and full decoding on a subset, as a rate.

Writes results/real_data_bench.json. Usage: python scripts/bench_real_data.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.datasets.annotations import FILE_NAMES, load_privacy_labels  # noqa: E402
from benchmark.datasets.check import check_dataset  # noqa: E402
from benchmark.datasets.clips import ClipDataset  # noqa: E402

VTEST = Path('/usr/share/doc/opencv-doc/examples/data/vtest.avi')
SHARED_LABELS = next((p / 'data' / 'vp_annotations' / FILE_NAMES['vp_ucf101']
                      for p in (REPO.parent / 'shared', REPO.parent.parent / 'shared')
                      if (p / 'data' / 'vp_annotations' / FILE_NAMES['vp_ucf101']).is_file()), None)


def provenance() -> dict:
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = 'unknown'
    return dict(command=' '.join([Path(sys.argv[0]).name] + sys.argv[1:]), git_commit=commit,
                machine=platform.node(), processor=platform.processor() or platform.machine(),
                cpu_count=os.cpu_count(), python=platform.python_version())


def write_video(path: Path, frames: int, size: tuple[int, int], fourcc: str) -> None:
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, size)
    base = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    for i in range(frames):  # moving texture, so the codec has real work to do
        frame = cv2.resize(np.roll(base, i, axis=1), size, interpolation=cv2.INTER_LINEAR)
        writer.write(frame)
    writer.release()


def ucf_tree(root: Path, clips: list[str], video: Path, labels: Path | None) -> None:
    """UCF101 layout with every listed clip a hard link to ``video``."""
    classes = sorted({c.split('/')[0] for c in clips})
    lists = root / 'ucfTrainTestlist'
    lists.mkdir(parents=True)
    (lists / 'classInd.txt').write_text(''.join(f'{i + 1} {c}\r\n' for i, c in enumerate(classes)))
    test = [c for c in clips if int(c.split('_g')[-1][:2]) <= 7]
    train = [c for c in clips if c not in set(test)]
    (lists / 'trainlist01.txt').write_text(
        ''.join(f'{c}.avi {classes.index(c.split("/")[0]) + 1}\r\n' for c in train))
    (lists / 'testlist01.txt').write_text(''.join(f'{c}.avi\r\n' for c in test))
    for cls in classes:
        (root / 'UCF-101' / cls).mkdir(parents=True)
    for c in clips:
        os.link(video, root / 'UCF-101' / f'{c}.avi')
    if labels is not None:
        shutil.copy(labels, root / FILE_NAMES['vp_ucf101'])
    else:
        table = {f'{c}.mp4': np.array([[1, 0, 1, 0, 0]], np.int64) for c in clips}
        (root / FILE_NAMES['vp_ucf101']).write_bytes(pickle.dumps(table, protocol=4))


def bench_decode(root: Path, decoder: str, seconds: float) -> dict:
    ds = ClipDataset(dict(type='VPUCF101Source', data_root=str(root), split='test', decoder=decoder),
                     clip_len=16, frame_interval=4, crop_size=112, resize_short=112)
    ds[0]  # warm-up: imports, first open
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert tuple(ds[0]['inputs'].shape) == (1, 3, 16, 112, 112)
        n += 1
    elapsed = time.perf_counter() - start
    return dict(decoder=decoder, clips=n, seconds=round(elapsed, 2),
                clips_per_s=round(n / elapsed, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seconds', type=float, default=10.0, help='time per decoding measurement')
    parser.add_argument('--full-subset', type=int, default=1000,
                        help='clips decoded by the full check (its rate is what is reported)')
    parser.add_argument('--out', default=str(REPO / 'results' / 'real_data_bench.json'))
    args = parser.parse_args()
    results = dict(provenance=provenance())

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic = tmp / 'synthetic.avi'
        write_video(synthetic, 300, (320, 240), 'XVID')
        videos = [(synthetic, 'synthetic 320x240 XVID (UCF101 size and codec), 300 frames')]
        if VTEST.is_file():  # a real video; its key frames are 250 frames apart: seeks cost more
            videos.insert(0, (VTEST, f'{VTEST} (real walkers, 768x576 MS-MPEG4, 795 frames)'))
        else:
            print(f'{VTEST} absent (apt-get install opencv-doc): synthetic video only')
        labels = SHARED_LABELS
        one = ['ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01', 'ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01']
        results['decode'] = []
        for k, (video, what) in enumerate(videos):
            ucf_tree(tmp / f'decode{k}', one, video, labels)
            runs = [bench_decode(tmp / f'decode{k}', d, args.seconds) for d in ('decord', 'pyav')]
            results['decode'].append(dict(video=what, clip='16 frames x rate 4, short side 112, '
                                          'crop 112', workers=1, runs=runs))
            for run in runs:
                print(f"decode {run['decoder']}: {run['clips_per_s']} clips/s per worker ({what})")

        tiny = tmp / 'tiny.avi'
        write_video(tiny, 20, (64, 48), 'MJPG')
        if labels is not None:
            names = sorted(load_privacy_labels(labels))
        else:  # the real count and shape of names, without the real pickle
            names = [f'Class{k:03d}/v_Class{k:03d}_g{g:02d}_c{c:02d}'
                     for k in range(101) for g in range(1, 26) for c in range(1, 6)][:13320]
        t0 = time.perf_counter()
        ucf_tree(tmp / 'check', names, tiny, labels)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        quick = check_dataset('vp_ucf101', tmp / 'check', decode='sample')
        quick_s = time.perf_counter() - t0
        assert quick.ok, quick.format()
        subset = tmp / 'subset'
        ucf_tree(subset, names[:: max(1, len(names) // args.full_subset)], tiny, labels)
        t0 = time.perf_counter()
        full = check_dataset('vp_ucf101', subset, decode=True)
        full_s = time.perf_counter() - t0
        assert full.ok, full.format()
        rate = full.decoded / full_s
        results['check'] = dict(
            entries=len(names), labels='real pickle' if labels is not None else 'generated',
            tree_build_s=round(build_s, 2), quick_s=round(quick_s, 2), quick_decoded=quick.decoded,
            full_subset=full.decoded, full_s=round(full_s, 2), full_clips_per_s=round(rate, 1),
            full_estimate_s=round(len(names) / rate, 1), workers=os.cpu_count())
        print(f'check quick on {len(names)} entries: {quick_s:.2f} s (limit 60 s); full: '
              f'{rate:.0f} tiny clips/s with {os.cpu_count()} workers '
              f'(~{len(names) / rate:.0f} s for the tree)')

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

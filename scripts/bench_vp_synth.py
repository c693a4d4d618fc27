"""Time VP-Synth: generating the default train and test splits, then loading them from cache.

The issue's budget (project issue 3): generation at most 60 s on 2 cores, loading at most 3 s.
Writes results/vp_synth_generation.json.

    python scripts/bench_vp_synth.py [--size 112] [--num-frames 32]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.datasets.vp_synth import VPSynthSource  # noqa: E402


def _machine() -> dict:
    try:
        from benchmark import provenance
        return provenance.collect()
    except (ImportError, AttributeError):
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        return dict(git_commit=commit, node=platform.node(), processor=platform.processor(),
                    cpu_count=os.cpu_count(), python=platform.python_version())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=112)
    parser.add_argument('--num-frames', type=int, default=32)
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory(prefix='vp_synth_bench_') as cache:
        start = time.perf_counter()
        for split in ('train', 'test'):
            VPSynthSource(split=split, size=args.size, num_frames=args.num_frames, cache_dir=cache)
        figures['generate_train_test_s'] = time.perf_counter() - start
        start = time.perf_counter()
        sources = [VPSynthSource(split=split, size=args.size, num_frames=args.num_frames,
                                 cache_dir=cache) for split in ('train', 'test')]
        figures['load_train_test_s'] = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(len(sources[0])):
            sources[0].read(i, range(0, args.num_frames, 2))
        figures['read_all_train_clips_s'] = time.perf_counter() - start
        figures['videos'] = sum(len(s) for s in sources)
        figures['bytes'] = sum((s.cache_folder / 'frames.npy').stat().st_size for s in sources)
    record = dict(name='vp_synth_generation', command=' '.join(sys.argv), size=args.size,
                  num_frames=args.num_frames, budget=dict(generate_s=60, load_s=3),
                  figures=figures, machine=_machine())
    out = ROOT / 'results' / 'vp_synth_generation.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + '\n')
    for key, value in figures.items():
        print(f'{key}: {value:.2f}' if isinstance(value, float) else f'{key}: {value}')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

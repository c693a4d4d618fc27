"""Time sweeps (issue 20): `--jobs 2` against `--jobs 1` on a 4-point smoke sweep, and
`bench report` over stores of 500 and 5,000 parent runs.

1. The sweep: ``bench sweep --method downsample_2x --profile smoke --grid anonymizer.factor=2,3,4,5``
   as a user runs it, in a fresh work dir for each timing (the data cache warmed first by one
   untimed run, so both timings start from the same cache), with ``--jobs 1`` and ``--jobs 2``.
   Target: ``--jobs 2`` in at most 0.7 of the time of ``--jobs 1`` on 2 cores.
2. The report: the stores of ``scripts/bench_report.py`` (``build_store``; 500 runs as its
   benchmark builds them, and 5,000 with 4,500 sweep points added), ``bench report`` cold as a
   command (fresh process, empty output folders). Target: at most 10 s for 5,000 runs.

Run it on otherwise idle cores. Writes results/sweep_bench.json.

Usage: python scripts/bench_sweep.py [--repeat 2] [--sizes 500,5000] [--points 4]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'scripts'))


def _timed(command: list[str]) -> float:
    """Seconds for ``command`` in a fresh process from the project root; it must succeed."""
    t = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f'{" ".join(command)} failed ({done.returncode}):\n{done.stdout[-2000:]}'
                         f'{done.stderr[-2000:]}')
    return seconds


def sweep_command(work: Path, points: int, jobs: int) -> list[str]:
    factors = ','.join(str(f) for f in range(2, 2 + points))
    return [sys.executable, '-W', 'ignore', '-m', 'benchmark.cli', 'sweep', '--method',
            'downsample_2x', '--profile', 'smoke', '--grid', f'anonymizer.factor={factors}',
            '--name', 'timing', '--jobs', str(jobs), '--work-dir', str(work)]


def time_sweeps(scratch: Path, points: int, repeat: int) -> dict:
    warm = scratch / 'warm'  # the data cache and the target pretraining, once, untimed
    _timed([sys.executable, '-W', 'ignore', '-m', 'benchmark.cli', 'run', '--method', 'raw',
            '--profile', 'smoke', '--work-dir', str(warm)])
    out: dict[str, list[float]] = {'jobs1_s': [], 'jobs2_s': []}
    for _ in range(repeat):
        for jobs in (1, 2):
            work = scratch / f'jobs{jobs}'
            shutil.rmtree(work, ignore_errors=True)
            out[f'jobs{jobs}_s'].append(_timed(sweep_command(work, points, jobs)))
    best = {k: min(v) for k, v in out.items()}
    return {'points': points, 'best_s': best, 'all_s': out,
            'ratio_jobs2_over_jobs1': round(best['jobs2_s'] / best['jobs1_s'], 3), 'target_ratio': 0.7}


def time_reports(scratch: Path, sizes: list[int], repeat: int, stores: Path) -> dict:
    from bench_report import build_store
    out = {}
    for size in sizes:
        t = time.perf_counter()
        uri = build_store(stores / f'store_{size}', total=size)
        build_s = time.perf_counter() - t
        cold = []
        for _ in range(repeat):
            work = scratch / f'report_{size}'
            shutil.rmtree(work, ignore_errors=True)
            cold.append(_timed([sys.executable, '-W', 'ignore', '-m', 'benchmark.cli', 'report',
                                '--tracking-uri', uri, '--out', str(work / 'reports'),
                                '--results', str(work / 'results')]))
        out[str(size)] = {'cold_cli_s': round(min(cold), 3), 'all_s': [round(x, 3) for x in cold],
                          'store_build_s': round(build_s, 2)}
    return {'runs': out, 'target_s': {'5000': 10.0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=2, help='timed repetitions. Defaults to 2')
    parser.add_argument('--points', type=int, default=4, help='sweep points. Defaults to 4')
    parser.add_argument('--sizes', default='500,5000', help='store sizes in parent runs. '
                        'Defaults to %(default)s')
    parser.add_argument('--stores', type=Path, default=ROOT / 'work_dirs' / 'bench_sweep_stores',
                        help='where the stores are built (once). Defaults to %(default)s')
    parser.add_argument('--skip-sweep', action='store_true', help='time the reports only')
    parser.add_argument('--out', type=Path, default=ROOT / 'results' / 'sweep_bench.json')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    result = {'command': ' '.join([sys.executable, *sys.argv]), 'cpu_count': os.cpu_count(),
              'load_average_before': os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix='bench_sweep_') as scratch:
        if not args.skip_sweep:
            result['sweep'] = time_sweeps(Path(scratch), args.points, args.repeat)
        result['report'] = time_reports(Path(scratch), sizes, args.repeat, args.stores)
    result['load_average_after'] = os.getloadavg()
    from benchmark.tracking import provenance  # after the timings: it imports torch
    result['machine'] = provenance('cpu')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + '\n')
    print(json.dumps({k: result[k] for k in ('sweep', 'report') if k in result}, indent=1))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()

"""Time the protocol end to end, as a user runs it, and record the figures.

    python scripts/bench_protocol.py --profile smoke            # every method, smoke profile
    python scripts/bench_protocol.py --profile cpu --methods raw
    python scripts/bench_protocol.py --profile paper --tag shortened --cfg-options \
        target_schedule.max_epochs=1 dataset.source.train_per_class=2    # a functional check

Each method is run with `bench run ... --fresh` in a subprocess, in a scratch work dir (so the
MLflow store is created once and shared, as in normal use), and its wall time and the stage
times it logged are written to results/protocol_<profile>.json with the commit and machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.config import available_methods  # noqa: E402
from benchmark.tracking import provenance  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--profile', default='smoke')
    parser.add_argument('--methods', default=None, help='comma-separated (default: all)')
    parser.add_argument('--dataset', default='vp_synth')
    parser.add_argument('--work-dir', default=None, help='default: a temporary folder')
    parser.add_argument('--out', default=str(ROOT / 'results'))
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='passed to every `bench run`; name the record with --tag')
    parser.add_argument('--tag', default='', help='record name: protocol_<profile>_<tag>.json')
    args = parser.parse_args()
    if args.cfg_options and not args.tag:
        raise SystemExit('--cfg-options changes what is measured: name the record with --tag')
    methods = args.methods.split(',') if args.methods else available_methods()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix='bench_protocol_'))
    # Create the store and generate the data first, so each timing is the method's own.
    warm = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', 'raw', '--profile', 'smoke',
            '--dataset', args.dataset, '--work-dir', str(work)]
    subprocess.run(warm, check=True, capture_output=True)
    rows = []
    prov = provenance('cpu')  # each row keeps its own, as rows of earlier runs are merged in
    command = ' '.join(['python', *sys.argv])
    for method in methods:
        cmd = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', method, '--profile',
               args.profile, '--dataset', args.dataset, '--work-dir', str(work), '--fresh']
        if args.cfg_options:
            cmd += ['--cfg-options', *args.cfg_options]
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.time() - start
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f'{method} failed')
        run_dir = work / args.dataset / method / args.profile / 'seed0'
        metrics = json.loads((run_dir / 'result.json').read_text())['metrics']
        row = dict(method=method, wall_s=round(wall, 1), **{k: prov[k] for k in ('commit', 'dirty', 'date')},
                   command=command,
                   **{k: round(v, 1) for k, v in metrics.items() if k.startswith('time_')},
                   action_top1=metrics['action_top1'], privacy_cmap=metrics['privacy_cmap'])
        rows.append(row)
        print(f'{method:15} {wall:7.1f} s end to end   (stages: fit {row.get("time_fit_s", 0)}, '
              f'action {row["time_action_s"]}, privacy {row["time_privacy_s"]})', flush=True)
    record = dict(benchmark='protocol end to end', profile=args.profile, dataset=args.dataset,
                  cfg_options=args.cfg_options, **prov, runs=rows)
    record['command'] = command
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f'protocol_{args.profile}{"_" + args.tag if args.tag else ""}.json'
    if args.methods and path.exists():  # keep the other methods' figures
        old = json.loads(path.read_text())
        keep = [r for r in old.get('runs', []) if r['method'] not in methods]
        record['runs'] = keep + rows
    path.write_text(json.dumps(record, indent=2) + '\n')
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

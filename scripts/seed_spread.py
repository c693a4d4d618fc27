"""Seed-to-seed spread of every method's figures, per protocol version, from results/runs.csv.

For each (dataset, profile, protocol version, method): the seeds counted, top-1 and cMAP per
seed, their mean and sample standard deviation, in percent. The committed record
``results/seed_spread_cpu.json`` holds the spreads of protocol 1 (batch 16 for 15 epochs),
protocol 2 (batch 32 for 22 epochs) and protocol 4 (the action model fine-tuned for 22 epochs
from a pretrained backbone), each of the cpu profile.

    python scripts/seed_spread.py --runs results/archive/protocol1/runs.csv \
        results/archive/protocol2/runs.csv results/runs.csv --profile cpu \
        --out results/seed_spread_cpu.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import tracking  # noqa: E402
from benchmark.report import runs as runs_io  # noqa: E402


def spreads(runs, profile: str) -> list[dict]:
    complete = runs[(runs.complete.str.lower() == 'true') & (runs.profile == profile)
                    & (runs.train_dataset.isin(['', *set(runs.dataset)]))]
    complete = complete[(complete.train_dataset == complete.dataset) | (complete.train_dataset == '')]
    complete = complete.assign(_basis=runs_io.data_versions(complete))
    newest = complete.sort_values(['start_time', 'run_id']).groupby(
        ['_basis', *runs_io.KEY]).tail(1)
    out = []
    for (basis, dataset, method), group in newest.groupby(['_basis', 'dataset', 'method']):
        group = group.sort_values('seed', key=lambda s: s.astype(int))
        row = {'dataset': dataset, 'data_and_protocol': runs_io.data_label(dataset, basis), 'method': method,
               'seeds': [int(s) for s in group.seed],
               'dirty': sorted(set(group.dirty.fillna('').astype(str))),
               'threads': sorted(set(group.get('threads', pd.Series(dtype=str)).fillna('').astype(str)) - {''})}
        for metric in ('action_top1', 'privacy_cmap'):
            values = group[f'metric.{metric}'].astype(float).to_numpy() * 100
            row[metric] = [round(v, 2) for v in values]
            row[f'{metric}_mean'] = round(float(values.mean()), 2)
            row[f'{metric}_std'] = round(float(values.std(ddof=1)), 2) if len(values) > 1 else None
        out.append(row)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', nargs='+', default=['results/runs.csv'],
                        help='runs.csv exports, read together (a run found twice counts once)')
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--out', default='results/seed_spread_cpu.json')
    args = parser.parse_args(argv)
    runs = pd.concat([runs_io.load_runs(Path(p)) for p in args.runs], ignore_index=True)
    rows = spreads(runs.drop_duplicates('run_id'), args.profile)
    prov = tracking.provenance('cpu')
    record = {'command': prov['command'], 'commit': prov['commit'], 'dirty': prov['dirty'],
              'machine': prov['device'], 'source': args.runs, 'profile': args.profile, 'methods': rows}
    Path(args.out).write_text(json.dumps(record, indent=1))
    for r in rows:
        print(f"{r['data_and_protocol']:>40} {r['method']:>14} seeds {r['seeds']}: top-1 "
              f"{r['action_top1_mean']:6.2f} ± {r['action_top1_std']}  cMAP {r['privacy_cmap_mean']:6.2f} "
              f"± {r['privacy_cmap_std']}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

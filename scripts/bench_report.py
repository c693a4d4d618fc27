"""Time `bench report` over a tracking store of 500 parent runs (issue 5: at most 5 s on 2 cores).

Builds (once, then reuses) a SQLite MLflow store laid out as ``benchmark/tracking_schema.md``
says: 12 methods x 3 datasets x 2 profiles x 5 seeds in-domain, transfer runs vp_synth ->
vp_synth_b for the learning methods, and older or incomplete reruns, 500 parent runs in all,
each with ~60 params and every parent metric; stage child runs with 50-step histories;
test-frame samples on the seed-0 runs. Then times the command a user runs, ``bench report``,
in a fresh process (imports included): into empty report and results folders (samples
exported, all 12 figures drawn: the target case), again over them (unchanged figures and
samples reused), and ``--from`` the export into an empty folder; and ``build_report``
in-process by phase (store read, export, rendering). Writes results/report_bench.json.

Usage: python scripts/bench_report.py [--store work_dirs/bench_report_store] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STORE_VERSION = '1'
METHODS = [('raw', 'Raw Data', False, True, False), ('depth', 'Depth Image', False, True, False),
           ('downsample_2x', 'Downsample-2x', True, False, False),
           ('downsample_4x', 'Downsample-4x', True, False, False),
           ('blackening', 'Blackening', True, False, False), ('strong_blur', 'StrongBlur', True, False, False),
           ('weak_blur', 'WeakBlur', True, False, False), ('collective', 'Collective', True, False, False),
           ('vita', 'VITA', True, False, True), ('spact', 'SPAct', True, False, True),
           ('stprivacy', 'STPrivacy', True, False, True), ('raprivacy', 'RAPrivacy', True, True, True)]
DATASETS = ('vp_synth', 'vp_hmdb51', 'vp_ucf101')
PROFILES = ('smoke', 'cpu')
SEEDS = range(5)
ATTRS = ('skin_color', 'face', 'gender', 'nudity', 'relationship')


def _plan(total: int = 500) -> list[dict]:
    """The parent runs: (method, train_dataset, dataset, profile, seed, complete, age); 500 by
    default. Beyond 500, points of sweeps (``strong_blur@anonymizer.sigma=<v>``, 5 seeds each on
    vp_synth, cpu profile, tagged ``bench.sweep``), as ablations grow a store."""
    runs = []
    for method, *_ in METHODS:
        for dataset in DATASETS:
            for profile in PROFILES:
                for seed in SEEDS:
                    runs.append(dict(method=method, train=dataset, dataset=dataset, profile=profile,
                                     seed=seed, complete=True))
    learners = [m for m, *rest in METHODS if rest[-1]]
    for method in learners:
        for profile in PROFILES:
            for seed in SEEDS:
                runs.append(dict(method=method, train='vp_synth', dataset='vp_synth_b',
                                 profile=profile, seed=seed, complete=True))
    rng = np.random.default_rng(0)
    while len(runs) < 500:  # reruns: an incomplete newer one or a superseded older one
        base = dict(runs[int(rng.integers(0, 360))])
        base['complete'] = bool(rng.integers(0, 2))
        base['rerun'] = True
        runs.append(base)
    for k in range(total - len(runs)):
        variant, seed = divmod(k, len(SEEDS))
        runs.append(dict(method=f'strong_blur@anonymizer.sigma={variant}', train='vp_synth',
                         dataset='vp_synth', profile='cpu', seed=seed, complete=True,
                         sweep=f'sigma{variant // 20}'))
    return runs[:total]  # fewer than 500: a quick check of the scripts


def build_store(folder: Path, total: int = 500) -> str:
    """Create the store of ``total`` parent runs under ``folder`` unless a finished one of this
    version and size is there."""
    folder = folder.resolve()
    uri = f'sqlite:///{folder / "mlflow.db"}'
    marker = folder / (f'done-v{STORE_VERSION}' if total == 500 else f'done-v{STORE_VERSION}-{total}')
    if marker.exists():
        return uri
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiments = {d: client.create_experiment(d, artifact_location=(folder / 'artifacts' / d).as_uri())
                   for d in (*DATASETS, 'vp_synth_b')}
    info = {m: (name, pl, rd, learns) for m, name, pl, rd, learns in METHODS}
    rng = np.random.default_rng(1)
    t0 = 1_760_000_000_000
    samples = folder / 'upload'
    for i, run in enumerate(_plan(total)):
        name, pl, rd, learns = info[run['method'].partition('@')[0]]
        start = t0 + (i if not run.get('rerun') else 1000 + i) * 60_000
        if run.get('rerun') and run['complete']:
            start = t0 - i * 60_000  # an older run the newest one supersedes
        key = f'{run["method"]}|{run["train"]}|{run["dataset"]}|{run["profile"]}|{run["seed"]}'
        tags = {'mlflow.runName': f'{run["method"]}-{run["profile"]}-s{run["seed"]}',
                'bench.kind': 'parent', 'bench.method': run['method'], 'bench.anonymizer': name,
                'bench.table_name': name, 'bench.privacy_learning': str(pl).lower(),
                'bench.readable': str(rd).lower(), 'bench.dataset': run['dataset'],
                'bench.train_dataset': run['train'], 'bench.profile': run['profile'],
                'bench.seed': str(run['seed']), 'bench.run_key': key,
                'bench.commit': f'{i % 3:x}' * 40, 'bench.dirty': 'false',
                'bench.device': 'cpu (2 cores)', 'bench.host': 'bench', 'bench.command': f'bench run {key}',
                'bench.protocol_version': '1', 'bench.complete': str(run['complete']).lower()}
        if run.get('sweep'):
            tags['bench.sweep'] = run['sweep']
        parent = client.create_run(experiments[run['dataset']], start_time=start, tags=tags).info.run_id
        top1, cmap = rng.uniform(0.3, 0.9), rng.uniform(0.6, 0.8)
        metrics = {'action_top1': top1, 'privacy_cmap': cmap, 'privacy_f1_macro': rng.uniform(0.5, 0.7),
                   'privacy_cmap_attributes': 5.0, 'floor_action_top1': 0.1, 'floor_cmap': 0.584,
                   'floor_f1_macro': 0.688, 'time_fit_s': 10.0, 'time_action_s': 20.0,
                   'time_privacy_s': 20.0, 'time_total_s': 50.0}
        for attr in ATTRS:
            metrics[f'privacy_ap_{attr}'] = cmap + rng.uniform(-0.1, 0.1)
            metrics[f'privacy_f1_{attr}'] = rng.uniform(0.5, 0.7)
        params = {f'cfg.section{j // 10}.key{j}': str(rng.integers(0, 100)) for j in range(60)}
        client.log_batch(parent, metrics=[Metric(k, float(v), start, 0) for k, v in metrics.items()],
                         params=[Param(k, v) for k, v in params.items()])
        for stage in (('fit', 'action', 'privacy') if learns else ('action', 'privacy')):
            child = client.create_run(experiments[run['dataset']], start_time=start, tags={
                'mlflow.parentRunId': parent, 'bench.kind': 'stage', 'bench.stage': stage}).info.run_id
            names = ['train_loss', 'lr'] + (['train_adv', 'train_style'] if stage == 'fit' else [])
            history = [Metric(n, float(np.exp(-s / 20) + rng.uniform(0, 0.05)), start + s, s)
                       for n in names for s in range(50)]
            client.log_batch(child, metrics=history)
            client.set_terminated(child)
        if run['seed'] == 0 and not run.get('rerun') and run['train'] == run['dataset']:
            raw = np.random.default_rng(len(run['dataset'])).integers(
                0, 255, size=(4, 4, 56, 56, 3), dtype=np.uint8)
            folder_i = samples / parent
            folder_i.mkdir(parents=True)
            ids = np.array([f'{run["dataset"]}_clip{k}' for k in range(4)])
            np.savez_compressed(folder_i / 'test_frames.npz', frames=(raw * (i % 7 + 1) // 8).astype(np.uint8),
                                video_ids=ids)
            np.savez_compressed(folder_i / 'raw_frames.npz', frames=raw, video_ids=ids)
            client.log_artifacts(parent, str(folder_i), artifact_path='samples')
        client.set_terminated(parent, 'FINISHED' if run['complete'] else 'FAILED', end_time=start + 50_000)
    marker.touch()
    return uri


def _timed(command: list[str]) -> float:
    """Seconds for ``command`` in a fresh process (imports included), from the project root."""
    t = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t


def _provenance() -> dict:
    """Commit, machine and command, as every run records them (after the timings: it imports torch)."""
    from benchmark.tracking import provenance
    return {**provenance('cpu'), 'cpu_count': os.cpu_count(), 'python': platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--store', type=Path, default=ROOT / 'work_dirs' / 'bench_report_store',
                        help='folder of the benchmark store (built once). Defaults to %(default)s')
    parser.add_argument('--repeat', type=int, default=3, help='timed repetitions. Defaults to 3')
    parser.add_argument('--out', type=Path, default=ROOT / 'results' / 'report_bench.json')
    args = parser.parse_args()

    t = time.perf_counter()
    uri = build_store(args.store)
    build_s = time.perf_counter() - t
    work = args.store / 'report_out'
    from benchmark.report import build_report  # noqa: E402 (after sys.path)

    figures: dict[str, list] = {'cold_cli_s': [], 'warm_cli_s': [], 'from_csv_cli_s': [],
                                'cold_in_process_s': [], 'phases_cold': []}
    bench = [sys.executable, '-W', 'ignore', '-m', 'benchmark.cli', 'report']
    for _ in range(args.repeat):
        shutil.rmtree(work, ignore_errors=True)
        report = [*bench, '--tracking-uri', uri, '--out', str(work / 'reports'),
                  '--results', str(work / 'results')]
        figures['cold_cli_s'].append(_timed(report))  # empty output: every figure drawn
        figures['warm_cli_s'].append(_timed(report))  # same output: figures and samples reused
        figures['from_csv_cli_s'].append(_timed(
            [*bench, '--from', str(work / 'results' / 'runs.csv'), '--out', str(work / 'reports_csv')]))
        shutil.rmtree(work, ignore_errors=True)
        phases: dict = {}
        t = time.perf_counter()
        written = build_report(uri, work / 'reports', work / 'results', timings=phases)
        figures['cold_in_process_s'].append(time.perf_counter() - t)
        figures['phases_cold'].append({k: round(v, 3) for k, v in phases.items()})
    best = {k: round(min(v), 3) for k, v in figures.items() if k.endswith('_s')}
    result = {'command': ' '.join([sys.executable, *sys.argv]), 'machine': _provenance(),
              'load_average': os.getloadavg(), 'store_runs': {'parent': 500},
              'store_build_s': round(build_s, 2), 'files_written': len(written),
              'best_of': args.repeat, 'best_s': best,
              'all_s': {k: [round(x, 3) for x in v] for k, v in figures.items() if k.endswith('_s')},
              'phases_cold': figures['phases_cold'], 'target_s': 5.0,
              'target_case': 'cold_cli_s'}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + '\n')
    for key, value in best.items():
        print(f'{key:>24}: {value:.2f} s (best of {args.repeat})')
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()

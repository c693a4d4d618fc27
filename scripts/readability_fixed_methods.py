"""The readability measures of every fixed method on a profile's vp_synth test videos, timed.

A fixed method's fit is a no-op, so its frames, and with them its ``readability_*`` metrics,
are those a ``bench run`` of it logs; this computes them without training the target models
and writes ``results/readability_<profile>.json``: per method the metrics and the seconds, and
the share of a ``bench run`` of raw frames (its recorded wall time) that the measures cost.

    python scripts/readability_fixed_methods.py --profile cpu

With ``--log-to WORK_DIR`` it also logs the metrics to the complete runs of those methods in
that store that were made before runs logged them (same method, dataset, profile and config
hash, seed aside: a fixed method's frames do not depend on the seed), tagging each
``bench.readability_from`` with this script's commit; runs that already have them, or whose
config differs, are left alone and counted.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmark.anonymizer import build_anonymizer
from benchmark.config import available_methods, resolve_config
from benchmark.datasets.clips import ClipDataset
from benchmark.protocol import READABILITY_VIDEOS, _source_cfg
from benchmark.readability import measure
from benchmark.registry import ANONYMIZERS, DATASETS, import_all

# `bench run --method raw`, cpu profile, protocol 3, alone on two threads (README, results/protocol3_timing)
CPU_RUN_WALL_S = 458.0


def log_to_runs(work_dir: Path, dataset: str, profile: str, rows: dict, source: str) -> dict:
    """Log each method's metrics to its complete runs in ``work_dir``'s store that lack them."""
    from benchmark import tracking
    from benchmark.config import config_hash
    uri = f'sqlite:///{(work_dir / "mlflow.db").resolve()}'
    client = tracking.client(uri)
    exp = client.get_experiment_by_name(dataset)
    counts = dict(logged=[], already=0, other_config=0)
    runs = client.search_runs([exp.experiment_id], f"tags.`bench.kind` = 'parent' and "
                              f"tags.`bench.profile` = '{profile}' and tags.`bench.complete` = 'true'")
    for run in runs:
        tags = run.data.tags
        method = tags.get('bench.method')
        if method not in rows:
            continue
        if any(k.startswith('readability_') for k in run.data.metrics):
            counts['already'] += 1
            continue
        cfg = resolve_config(method, dataset, profile, seed=int(tags['bench.seed']))
        if config_hash(cfg) != tags.get('bench.config_hash'):
            counts['other_config'] += 1
            continue
        for key, value in rows[method]['metrics'].items():
            client.log_metric(run.info.run_id, key, float(value))
        client.set_tag(run.info.run_id, 'bench.readability_from', source)
        counts['logged'].append(f'{method} seed {tags["bench.seed"]}')
    print(f'logged to {len(counts["logged"])} runs in {uri}; {counts["already"]} had them, '
          f'{counts["other_config"]} had another config')
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--dataset', default='vp_synth')
    parser.add_argument('--out', default='results')
    parser.add_argument('--log-to', metavar='WORK_DIR',
                        help='also log the metrics to the earlier complete runs in this store')
    args = parser.parse_args()
    import_all()
    torch.set_num_threads(1)
    rows = {}
    for method in available_methods():
        cfg = resolve_config(method, args.dataset, args.profile)
        if ANONYMIZERS.get(cfg.anonymizer['type']).learns:
            print(f'{method}: learns, needs its fit (a bench run logs its measures): skipped')
            continue
        anonymizer = build_anonymizer(cfg.anonymizer.to_dict()).eval()
        data = cfg.dataset.to_dict()
        source = DATASETS.build(_source_cfg(data, 'test', tuple(anonymizer.needs)))
        ds = ClipDataset(source, test_mode=True, clip_len=cfg.clip.clip_len,
                         frame_interval=data['clip']['frame_interval'], crop_size=cfg.clip.crop_size,
                         resize_short=cfg.clip.resize_short, num_clips=1, num_crops=1)
        start = time.perf_counter()
        metrics = measure(ds, anonymizer, READABILITY_VIDEOS)
        seconds = time.perf_counter() - start
        rows[method] = dict(metrics=metrics, seconds=seconds)
        print(f'{method:16} ' + '  '.join(f'{k.removeprefix("readability_")} {v:.3f}'
                                          for k, v in metrics.items()) + f'  ({seconds:.1f} s)')
    worst = max(r['seconds'] for r in rows.values())
    record = dict(profile=args.profile, dataset=args.dataset, videos=READABILITY_VIDEOS,
                  threads=torch.get_num_threads(), methods=rows, slowest_s=worst,
                  share_of_cpu_run=worst / CPU_RUN_WALL_S if args.profile == 'cpu' else None,
                  cpu_run_wall_s=CPU_RUN_WALL_S,
                  note='seconds of the measures alone (clips read, anonymized and measured), '
                       'with other work on the machine')
    from benchmark import tracking
    prov = tracking.provenance('cpu')
    record.update({k: prov[k] for k in ('commit', 'dirty', 'device', 'command')})
    out = Path(args.out) / f'readability_{args.profile}.json'
    if args.log_to:
        record['logged_to_runs'] = log_to_runs(Path(args.log_to), args.dataset, args.profile, rows,
                                               f'scripts/readability_fixed_methods.py at {prov["commit"][:12]}')
    out.write_text(json.dumps(record, indent=2) + '\n')
    print(f'slowest {worst:.1f} s = {100 * worst / CPU_RUN_WALL_S:.1f} % of a {CPU_RUN_WALL_S:.0f} s '
          f'cpu run; wrote {out}')


if __name__ == '__main__':
    main()

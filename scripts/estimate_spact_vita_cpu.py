"""Estimate the `cpu`-profile time of a learned baseline's run from a shortened measurement.

A full cpu-profile run of SPAct or VITA (fit, videos anonymized once, action and privacy target
models) is not timed here: this measures the parts that differ from raw frames and extrapolates.

1. fit: the method's fit model and optimizers, built from its resolved cpu config the way the
   protocol builds them, take ``--steps`` training steps in each phase (warm-up: reconstruction
   and branches on raw clips; adversarial) on real vp_synth cpu-profile batches (the fit's
   clip length, crop and batch); the process CPU time per step of each phase, times the
   config's iterations of that phase;
2. anonymize once: the fitted anonymizer's eval pass over frames at the stored size (64 px), per
   frame, times the frames of the 1,120 videos (32 each);
3. target stages: raw's measured action and privacy stages on two threads
   (results/protocol3_timing/runs.csv, protocol 3), which a learned method's run repeats on its
   anonymized videos.

CPU seconds are measured on one thread (``torch.set_num_threads(1)``), so that other work on the
machine changes the wall time but little the figure; the two-thread wall time of parts 1 and 2
is estimated by dividing by 1.58, the speed-up of two threads over one that results/threads_cpu.json
measured for `bench run --method raw` (430 s against 679 s). The result is an estimate, labelled
so in the JSON it writes.

    python scripts/estimate_spact_vita_cpu.py --methods spact vita --steps 6 \\
        --out results/spact_vita_cpu_estimate.json
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TWO_THREAD_SPEEDUP = 679 / 430  # results/threads_cpu.json: raw, one thread against two
VIDEOS, FRAMES_PER_VIDEO = 1120, 32  # vp_synth cpu profile: 960 training and 160 test videos


def target_stage_seconds() -> dict:
    rows = list(csv.DictReader(open(ROOT / 'results' / 'protocol3_timing' / 'runs.csv')))
    raw = next(r for r in rows if r['method'] == 'raw')
    return dict(action_s=float(raw['metric.time_action_s']), privacy_s=float(raw['metric.time_privacy_s']),
                threads=int(raw['threads']), record='results/protocol3_timing/runs.csv')


def fit_parts(method: str):
    """The fit model, its optimizers and a loader of training batches, as the protocol makes them."""
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from benchmark.config import resolve_config
    from benchmark.datasets.clips import ClipDataset
    from benchmark.protocol import _source_cfg
    from benchmark.registry import DATASETS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS, import_all
    import_all()
    cfg = resolve_config(method, 'vp_synth', 'cpu')
    fit = cfg.fit.to_dict()
    source = DATASETS.build(_source_cfg(cfg.dataset.to_dict(), 'train', ()))
    model_cfg = copy.deepcopy(fit['model'])
    model_cfg.update(anonymizer=cfg.anonymizer.to_dict(), num_classes=len(source.classes),
                     data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True,
                                            aux_channels=source.aux_channels))
    model = MODELS.build(model_cfg).train()
    optim = copy.deepcopy(fit['optim_wrapper'])
    optim.pop('constructor')
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=optim))(model)
    dataset = ClipDataset(source, 'action', clip_len=fit['clip_len'] or cfg.clip.clip_len,
                          frame_interval=cfg.dataset.clip.frame_interval, crop_size=cfg.clip.crop_size)
    loader = DataLoader(dataset, batch_size=fit['batch_size'], shuffle=True, collate_fn=pseudo_collate,
                        num_workers=0)
    return cfg, model, wrappers, loader


def time_steps(model, wrappers, loader, start_iter: int, steps: int) -> dict:
    """CPU and wall seconds per training step from iteration ``start_iter`` (one untimed step first)."""
    batches = iter(loader)
    model.fit_iter.fill_(start_iter)
    model.train_step(next(batches), wrappers)
    cpu, wall = time.process_time(), time.time()
    for _ in range(steps):
        log = model.train_step(next(batches), wrappers)
    return dict(cpu_s_per_step=(time.process_time() - cpu) / steps, wall_s_per_step=(time.time() - wall) / steps,
                steps=steps, logged=sorted(log))


def anonymize_seconds_per_frame(anonymizer, size: int, frames: int = 64) -> float:
    anonymizer.eval()
    clips = torch.rand(frames // 8, 3, 8, size, size)
    with torch.no_grad():
        anonymizer(clips[:1])
        cpu = time.process_time()
        anonymizer(clips)
    return (time.process_time() - cpu) / frames


def estimate(method: str, steps: int) -> dict:
    cfg, model, wrappers, loader = fit_parts(method)
    warmup = max(model.warmup_iters.values())
    total = cfg.fit.max_iters
    warm = time_steps(model, wrappers, loader, 0, steps)
    adversarial = time_steps(model, wrappers, loader, warmup, steps)
    fit_cpu = warmup * warm['cpu_s_per_step'] + (total - warmup) * adversarial['cpu_s_per_step']
    per_frame = anonymize_seconds_per_frame(model.anonymizer, cfg.dataset.source.size)
    once_cpu = per_frame * VIDEOS * FRAMES_PER_VIDEO
    targets = target_stage_seconds()
    wall = (fit_cpu + once_cpu) / TWO_THREAD_SPEEDUP + targets['action_s'] + targets['privacy_s']
    return dict(
        estimate=True,
        fit=dict(iterations=total, warmup_iterations=warmup, batch=cfg.fit.batch_size,
                 clip_len=cfg.fit.clip_len, warmup_step=warm, adversarial_step=adversarial,
                 cpu_s_one_thread=fit_cpu),
        anonymize_once=dict(cpu_s_per_frame_one_thread=per_frame, frames=VIDEOS * FRAMES_PER_VIDEO,
                            cpu_s_one_thread=once_cpu),
        target_stages_measured_for_raw=targets,
        two_thread_speedup=TWO_THREAD_SPEEDUP,
        run_wall_s_two_threads_estimate=wall,
        run_wall_min_two_threads_estimate=wall / 60)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--methods', nargs='+', default=['spact', 'vita'])
    parser.add_argument('--steps', type=int, default=6, help='timed steps per fit phase')
    parser.add_argument('--out', type=Path, default=ROOT / 'results' / 'spact_vita_cpu_estimate.json')
    args = parser.parse_args(argv)
    from benchmark.tracking import git_state
    torch.set_num_threads(1)
    torch.manual_seed(0)
    commit, dirty = git_state()
    record = dict(command='python ' + ' '.join(shlex.quote(a) for a in sys.argv), commit=commit, dirty=dirty,
                  torch=torch.__version__, note='an estimate from shortened measurements, not a timed run',
                  methods={})
    for method in args.methods:
        result = estimate(method, args.steps)
        record['methods'][method] = result
        fit = result['fit']
        print(f'{method}: fit {fit["warmup_step"]["cpu_s_per_step"]:.2f} s/step warm-up, '
              f'{fit["adversarial_step"]["cpu_s_per_step"]:.2f} s/step adversarial (CPU, one thread) -> '
              f'{fit["cpu_s_one_thread"]:.0f} CPU s over {fit["iterations"]} iterations; anonymize once '
              f'{result["anonymize_once"]["cpu_s_one_thread"]:.0f} CPU s; target stages '
              f'{result["target_stages_measured_for_raw"]["action_s"] + result["target_stages_measured_for_raw"]["privacy_s"]:.0f} s '
              f'(raw, measured) -> about {result["run_wall_min_two_threads_estimate"]:.1f} min per seed on two threads '
              f'(estimate)', flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + '\n')
    print(f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

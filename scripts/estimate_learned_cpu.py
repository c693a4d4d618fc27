"""Estimate the cpu profile's time per seed of a learned method from timed pieces (an ESTIMATE,
not a run): its fit iterations (warm-up and adversarial, as the method config sets them up)
and the target stages' work, each timed on random clips of the profile's shapes, then
multiplied by the counts the profile gives.

    python scripts/estimate_learned_cpu.py --methods collective,stprivacy

Timed in CPU seconds of this process at one thread (``OMP_NUM_THREADS=1``; these do not depend
much on what else the machine runs, wall seconds do), median of ``--iters`` after one
untimed call. What the estimate leaves out: data decoding, MLflow logging, checkpoints,
generating the dataset's cache. Counts: the fit's warm-up and adversarial iterations
(``fit.max_iters``, ``fit.model.warmup_iters``); the target stages' training iterations
(videos per class x classes / batch x epochs, for the action and the privacy stage) and test
clips (test videos x clips x crops, per stage); for a per-frame method whose config sets
``anonymize_once``, every frame of every video through the anonymizer once; otherwise the
anonymizer on every training batch and test clip. Writes results/learned_cpu_estimate.json
and prints the figures with the command and the commit.

``--smoke`` instead runs ``bench run --method M --profile smoke`` end to end for each method
(a real run, in a scratch work dir, on the smoke data cache) and records its wall seconds and
the CPU seconds of the process and its children: results/learned_smoke_time.json.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds(fn, iters: int) -> float:
    """Median CPU seconds of ``fn()`` over ``iters`` calls, after one untimed call."""
    fn()
    times = []
    for _ in range(iters):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def labelled(n: int, clip_len: int, size: int) -> dict:
    from mmaction.structures import ActionDataSample
    from mmengine.structures import LabelData
    gen = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (1, 3, clip_len, size, size), generator=gen, dtype=torch.uint8))
        sample = ActionDataSample()
        sample.gt_labels = LabelData(item=torch.tensor([i % 10]))
        sample.set_metainfo(dict(video_id=f'v{i}', privacy=[i % 2, 1, 0, (i // 2) % 2, 0]))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def fit_figures(cfg, iters: int) -> dict:
    from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    fit = cfg.fit.to_dict()
    model = MODELS.build(dict(fit['model'], anonymizer=cfg.anonymizer.to_dict(), num_classes=10,
                              data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True)))
    optim = dict(fit['optim_wrapper'])
    optim.pop('constructor')
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(type='MultiOptimWrapperConstructor',
                                                     optim_wrapper_cfg=optim))(model)
    data = labelled(fit['batch_size'], fit.get('clip_len') or cfg.clip.clip_len, cfg.clip.crop_size)
    warmup = max(fit['model'].get('warmup_iters', {}).values(), default=0)
    start = fit['model'].get('anonymizer_start_iter', 0)

    def step_at(iteration):
        def step():
            model.fit_iter.fill_(iteration)
            model.train_step(data, wrappers)
        return step
    warm_s = cpu_seconds(step_at(0), iters) if warmup else 0.0
    adversarial_s = cpu_seconds(step_at(max(warmup, start)), iters)
    waiting = min(warmup, start)  # iterations where only the branches train, on raw clips
    total = waiting * warm_s + (fit['max_iters'] - waiting) * adversarial_s
    return dict(warmup_iteration_cpu_s=warm_s, adversarial_iteration_cpu_s=adversarial_s,
                branch_only_iterations=waiting, other_iterations=fit['max_iters'] - waiting,
                fit_cpu_s=total)


def target_figures(cfg, iters: int) -> dict:
    from benchmark.anonymizer import build_anonymizer
    from benchmark.registry import MODELS
    import inspect

    from benchmark.datasets.vp_synth import VPSynthSource
    defaults = {k: p.default for k, p in inspect.signature(VPSynthSource).parameters.items()}
    source = defaults | cfg.dataset.source.to_dict()
    classes = 10
    train_videos = source['train_per_class'] * classes
    test_videos = source['test_per_class'] * classes
    sched = cfg.target_schedule
    train_iters = math.ceil(train_videos / sched.batch_size) * sched.max_epochs
    views = cfg.clip.num_clips * cfg.clip.num_crops
    t, size = cfg.clip.clip_len, cfg.clip.crop_size
    model = MODELS.build(dict(cfg.action_model.to_dict(), data_preprocessor=dict(type='ClipPreprocessor'),
                              cls_head=dict(cfg.action_model.cls_head.to_dict(), num_classes=classes)))
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-3)
    clips = torch.rand(sched.batch_size, 3, t, size, size)
    labels = torch.randint(0, classes, (sched.batch_size,))

    def train_step():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(model.cls_head(model.extract_feat(clips[:, None])[0]), labels)
        loss.backward()
        optim.step()
    view_clips = torch.rand(views, 3, t, size, size)

    def test_video():
        with torch.no_grad():
            model.cls_head(model.extract_feat(view_clips[:, None])[0])
    step_s = cpu_seconds(train_step, iters)
    model.eval()
    test_s = cpu_seconds(test_video, iters)
    anonymizer = build_anonymizer(cfg.anonymizer.to_dict()).eval()
    once = bool(cfg.get('anonymize_once')) and anonymizer.per_frame
    if once:
        video = torch.rand(1, 3, source['num_frames'], source['size'], source['size'])
        with torch.no_grad():
            anon_video_s = cpu_seconds(lambda: anonymizer(video), iters)
        anonymize_s = anon_video_s * (train_videos + test_videos)
        per_batch = dict(anonymize_once_video_cpu_s=anon_video_s)
    else:
        with torch.no_grad():
            batch_s = cpu_seconds(lambda: anonymizer(clips), iters)
            views_s = cpu_seconds(lambda: anonymizer(view_clips), iters)
        anonymize_s = 2 * (train_iters * batch_s + test_videos * views_s)
        per_batch = dict(anonymizer_train_batch_cpu_s=batch_s, anonymizer_test_video_cpu_s=views_s)
    stages = 2 * (train_iters * step_s + test_videos * test_s)
    return dict(target_train_iterations_per_stage=train_iters, target_step_cpu_s=step_s,
                target_test_video_cpu_s=test_s, target_stages_cpu_s=stages, anonymize_cpu_s=anonymize_s,
                anonymize_once=once, **per_batch)


def smoke_figures(method: str) -> dict:
    """Wall and CPU seconds of one real ``bench run`` of ``method`` at the smoke profile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as work_dir:
        wall = time.perf_counter()
        subprocess.run([sys.executable, '-m', 'benchmark.cli', 'run', '--method', method, '--profile', 'smoke',
                        '--work-dir', work_dir], cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(smoke_wall_s=wall, smoke_cpu_s=cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--methods', default='collective,stprivacy')
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--smoke', action='store_true', help='time real smoke runs instead')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    name = 'learned_smoke_time.json' if args.smoke else 'learned_cpu_estimate.json'
    args.out = args.out or str(ROOT / 'results' / name)
    from mmengine.registry import init_default_scope

    from benchmark.config import resolve_config
    from benchmark.registry import import_all
    import_all()
    init_default_scope('benchmark')  # as the protocol's runners: the suite's names, then mmaction2's
    torch.manual_seed(0)
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip())
    kind = ('MEASURED: real smoke runs end to end' if args.smoke
            else 'ESTIMATE from timed pieces, not a measured end-to-end run')
    record = dict(kind=kind,
                  command='OMP_NUM_THREADS=1 python scripts/estimate_learned_cpu.py ' + ' '.join(sys.argv[1:]),
                  commit=commit, dirty_tree=dirty, torch=torch.__version__, threads=torch.get_num_threads(),
                  omp_num_threads=os.environ.get('OMP_NUM_THREADS'), profile=args.profile,
                  iters_timed=args.iters, methods={})
    for method in args.methods.split(','):
        if args.smoke:
            figures = smoke_figures(method)
        else:
            cfg = resolve_config(method, 'vp_synth', args.profile)
            figures = fit_figures(cfg, args.iters) | target_figures(cfg, args.iters)
            figures['per_seed_cpu_s'] = (figures['fit_cpu_s'] + figures['target_stages_cpu_s']
                                         + figures['anonymize_cpu_s'])
            figures['per_seed_minutes'] = figures['per_seed_cpu_s'] / 60
        record['methods'][method] = figures
        print(f'{method} ({"smoke" if args.smoke else args.profile}, {kind}, CPU seconds at one thread): '
              + ', '.join(f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}' for k, v in figures.items()),
              flush=True)
    print(f'command: {record["command"]}\ncommit: {commit}{" (dirty tree)" if dirty else ""}')
    Path(args.out).write_text(json.dumps(record, indent=2) + '\n')
    print(f'written {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Time one RAPrivacy training iteration (both phases, Eq. 8 and 9) and the self-trained encoder's
pretraining step, to size ``max_iters`` of the cpu profile; on a GPU, the paper profile's step.

    python scripts/bench_raprivacy_step.py                        # cpu profile -> results/raprivacy_step_cpu.json
    python scripts/bench_raprivacy_step.py --device cuda --profile paper --batch 32

The encoder weights are random here (timing does not depend on them), so nothing is downloaded
or pretrained. Figures: seconds per iteration (median), clips/s, peak memory (CUDA: allocated;
CPU: the process's peak resident set), with the machine and git commit.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROFILES = dict(  # clip length, crop size, VGG width, ResNet depth, base channels, batch
    cpu=dict(clip_len=8, size=56, width=0.25, depth=18, base=16, batch=8),
    paper=dict(clip_len=16, size=112, width=1.0, depth=50, base=64, batch=32),
)


def provenance() -> dict:
    try:
        from benchmark.provenance import provenance as bench_provenance  # the suite's, where present
        return bench_provenance()
    except ImportError:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return dict(git_commit=commit, node=platform.node(), processor=platform.processor(),
                    cpu_count=os.cpu_count(), torch=torch.__version__)


def build(p: dict, device: str):
    from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    import raprivacy  # noqa: F401  registers the model
    styles = np.random.default_rng(0).integers(0, 256, (16, p['size'], p['size'], 3), dtype=np.uint8)
    backbone = dict(type='ResNet3d', depth=p['depth'], base_channels=p['base'], pretrained=None, pretrained2d=False)
    model = MODELS.build(dict(
        type='RAPrivacyModel', num_classes=10,
        anonymizer=dict(type='RAPrivacyAnonymizer', encoder=dict(weights='random', width=p['width']),
                        style_set=dict(type='ImageStyles', images=styles)),
        action_backbone=backbone,
        privacy_backbone=dict(backbone, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False),
        data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True))).to(device)
    opt = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='MultiOptimWrapperConstructor',
        optim_wrapper_cfg=dict(anonymizer=opt, action_branch=opt, privacy_branch=opt)))(model)
    return model, wrappers


def batch(p: dict, seed: int) -> dict:
    from mmaction.structures import ActionDataSample
    from mmengine.structures import LabelData
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(p['batch']):
        inputs.append(torch.randint(0, 256, (1, 3, p['clip_len'], p['size'], p['size']), generator=gen,
                                    dtype=torch.uint8))
        s = ActionDataSample()
        s.gt_labels = LabelData(item=torch.tensor([i % 3]))
        s.set_metainfo(dict(video_id=f'v{i}'))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def time_train_step(p: dict, device: str, iters: int, warmup: int) -> dict:
    model, wrappers = build(p, device)
    data = batch(p, 0)
    times = []
    for i in range(warmup + iters):
        sync(device)
        start = time.perf_counter()
        model.train_step(data, wrappers)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    step = statistics.median(times)
    return dict(step_s=round(step, 4), step_s_all=[round(t, 4) for t in times],
                clips_per_s=round(p['batch'] / step, 2))


def time_pretrain_step(p: dict, iters: int) -> dict:
    from raprivacy.pretrain import pretrain_settings, train_autoencoder
    frames = np.random.default_rng(0).integers(0, 256, (64, p['size'], p['size'], 3), dtype=np.uint8)
    settings = pretrain_settings(p['width'], size=p['size'], steps=iters, batch=32)
    start = time.perf_counter()
    train_autoencoder(frames, settings, log=lambda m: None)
    return dict(pretrain_step_s=round((time.perf_counter() - start) / iters, 4), pretrain_batch=32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--profile', choices=sorted(PROFILES), default=None,
                        help='defaults to cpu on the CPU, paper on CUDA')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=None, help="clips per iteration (profile's by default)")
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch)')
    parser.add_argument('--out', default=None, help='defaults to results/raprivacy_step_<profile>.json')
    args = parser.parse_args()
    profile = args.profile or ('paper' if args.device.startswith('cuda') else 'cpu')
    p = dict(PROFILES[profile])
    if args.batch:
        p['batch'] = args.batch
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    result = dict(profile=profile, device=args.device, settings=p, threads=torch.get_num_threads())
    result.update(time_train_step(p, args.device, args.iters, args.warmup))
    if args.device.startswith('cuda'):
        result['device_name'] = torch.cuda.get_device_name()
        result['peak_mem_gib'] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
    else:
        result['peak_rss_gib'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)
        result.update(time_pretrain_step(p, max(2, args.iters)))
    result['command'] = ' '.join([Path(sys.argv[0]).name] + sys.argv[1:])
    result['machine'] = provenance()
    out = Path(args.out or ROOT / 'results' / f'raprivacy_step_{profile}.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + '\n')
    print(json.dumps({k: v for k, v in result.items() if k != 'machine'}, indent=2))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

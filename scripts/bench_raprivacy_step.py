"""Time RAPrivacy's fit iterations as the method config sets them up, to size the fit of a profile.

    python scripts/bench_raprivacy_step.py                         # cpu profile, its encoder
    python scripts/bench_raprivacy_step.py --encoder self_trained  # the same with another encoder
    python scripts/bench_raprivacy_step.py --device cuda --profile paper

The model, batch size, clip length, crop size, transfer scale and optimizers are the profile's
(``benchmark/configs/methods/raprivacy.py``); the encoder weights are random of the chosen type
(timing does not depend on them) and the clips random, so nothing is downloaded or pretrained.
Two iterations are timed: an adversarial one (both phases, Eq. 8 and 9, and both branches) and a
warm-up one (phase 1 and both branches on raw clips); then the frozen anonymizer in eval mode
on whole videos, as ``anonymize_once`` runs it before the target models train (seconds per
frame). ``--set KEY=VALUE`` overrides the config as ``bench run --cfg-options`` does (say,
``anonymizer.channels_last=False`` to time the NCHW path); ``--amp`` times both at bf16 autocast,
as ``bench run --amp`` runs them (benchmark/amp.py); ``--keep-denormals`` times them computing
with denormal floats, which ``bench run`` flushes on the CPU. Figures per iteration (median): wall
seconds and, on the CPU, the process's CPU seconds, which do not depend on what else the machine
runs when ``--threads 1``; peak memory (CUDA: allocated; CPU: the process's peak resident set);
the machine and git commit. Writes results/raprivacy_step_<profile>_<encoder>[_bf16][_denormals].json.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(cfg, encoder: str, device: str, amp: bool = False):
    from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    import raprivacy  # noqa: F401  registers the model
    size = cfg.clip.crop_size
    styles = np.random.default_rng(0).integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    # the self-trained encoder is the VGG-19 layout at its width: the same work with random weights
    layout = dict(type='mobilenet_v2') if encoder == 'mobilenet_v2' else \
        dict(type='vgg19', width=cfg.anonymizer.encoder.get('width', 1.0 if encoder == 'vgg19' else 0.125))
    anonymizer = dict(cfg.anonymizer.to_dict(), style_set=dict(type='ImageStyles', images=styles),
                      encoder=dict(layout, weights='random'))
    model_cfg = dict(cfg.fit.model.to_dict(), anonymizer=anonymizer, num_classes=10,
                     data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True))
    model = MODELS.build(model_cfg).to(device)
    optim = cfg.fit.optim_wrapper.to_dict()
    optim.pop('constructor')
    if amp:  # as the protocol sets up the fit under --amp
        from benchmark.amp import optim_wrapper_type
        for part in optim.values():
            part.update(optim_wrapper_type(True, 'cpu' if device == 'cpu' else 'cuda'))
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('benchmark'):  # the suite's wrappers, as in a run
        wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(
            dict(type='MultiOptimWrapperConstructor', optim_wrapper_cfg=optim))(model)
    return model, wrappers


def batch(n: int, clip_len: int, size: int, seed: int) -> dict:
    from mmaction.structures import ActionDataSample
    from mmengine.structures import LabelData
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (1, 3, clip_len, size, size), generator=gen, dtype=torch.uint8))
        s = ActionDataSample()
        s.gt_labels = LabelData(item=torch.tensor([i % 3]))
        s.set_metainfo(dict(video_id=f'v{i}'))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def timed(call, device: str, iters: int, warmup: int, before=None) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``iters`` calls of ``call`` after ``warmup`` untimed ones
    (``before`` runs untimed ahead of each)."""
    walls, cpus = [], []
    for i in range(warmup + iters):
        if before is not None:
            before()
        sync(device)
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        sync(device)
        if i >= warmup:
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return walls, cpus


def time_train_step(model, wrappers, data: dict, device: str, iteration: int, iters: int, warmup: int) -> dict:
    """Median wall and CPU seconds of ``train_step`` at schedule iteration ``iteration``."""
    walls, cpus = timed(lambda: model.train_step(data, wrappers), device, iters, warmup,
                        before=lambda: model.fit_iter.fill_(iteration))
    return dict(wall_s=round(statistics.median(walls), 4), cpu_s=round(statistics.median(cpus), 4),
                wall_s_all=[round(t, 4) for t in walls])


@torch.no_grad()
def time_anonymize(anonymizer, frames: int, clip_len: int, size: int, device: str, iters: int,
                   warmup: int, amp: bool = False) -> dict:
    """Median wall and CPU seconds per frame of the anonymizer in eval mode, ``frames`` frames per
    call in clips of ``clip_len`` frames of ``size`` px, as ``anonymize_once`` groups whole videos."""
    anonymizer.eval()
    n = max(1, frames // clip_len)
    clips = torch.rand(n, 3, clip_len, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    from benchmark.amp import autocast

    def call():
        with autocast(device, amp):
            return anonymizer(clips)
    walls, cpus = timed(call, device, iters, warmup)
    count = n * clip_len
    return dict(frames_per_call=count, wall_s_per_frame=round(statistics.median(walls) / count, 5),
                cpu_s_per_frame=round(statistics.median(cpus) / count, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--profile', default=None, help='defaults to cpu on the CPU, paper on CUDA')
    parser.add_argument('--encoder', choices=('mobilenet_v2', 'self_trained', 'vgg19'), default=None,
                        help="encoder type (default: the profile's)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--iters', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=1, help='torch CPU threads')
    parser.add_argument('--keep-denormals', action='store_true',
                        help="compute with denormal floats instead of flushing them as bench run does on the "
                             "CPU (benchmark/amp.py's flush_denormals), to measure what that costs")
    parser.add_argument('--amp', action='store_true',
                        help='bf16 autocast, as bench run --amp: the optimizer wrappers at that precision '
                             'and the anonymizer under autocast')
    parser.add_argument('--set', nargs='*', default=[], metavar='KEY=VALUE',
                        help='config overrides as for bench run --cfg-options, e.g. anonymizer.channels_last=True')
    parser.add_argument('--anonymize-frames', type=int, default=128,
                        help='also time the frozen anonymizer in eval mode on this many frames in one call, as '
                             'anonymize_once groups them (0: skip)')
    parser.add_argument('--frame-size', type=int, default=64,
                        help="frame side the anonymizer gets there (vp_synth's videos: 64 px, not resized)")
    parser.add_argument('--video-frames', type=int, default=32, help="frames per video (vp_synth's: 32)")
    parser.add_argument('--out', default=None, help='defaults to results/raprivacy_step_<profile>_<encoder>.json')
    args = parser.parse_args()
    from benchmark.config import resolve_config
    from benchmark.tracking import numerics, provenance
    record = dict(provenance=provenance(args.device))  # before anything can change the tree
    profile = args.profile or ('paper' if args.device.startswith('cuda') else 'cpu')
    cfg = resolve_config('raprivacy', 'vp_synth', profile)
    from benchmark.cli import _parse_options
    overrides = _parse_options(args.set)  # as bench run --cfg-options parses them
    cfg.merge_from_dict(overrides)
    encoder = args.encoder or cfg.anonymizer.encoder.get('type', 'vgg19')
    if not args.keep_denormals:
        from benchmark.amp import flush_denormals
        flush_denormals(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()
    model, wrappers = build(cfg, encoder, args.device, args.amp)
    clip_len = cfg.fit.clip_len or cfg.clip.clip_len
    data = batch(cfg.fit.batch_size, clip_len, cfg.clip.crop_size, 0)
    adversarial = max(model.warmup_iters.values(), default=0)
    record.update(profile=profile, device=args.device, encoder=encoder, precision='bf16' if args.amp else 'fp32',
                  denormals=numerics()['denormals'],
                  batch=cfg.fit.batch_size,
                  clip_len=clip_len, crop_size=cfg.clip.crop_size, scale=cfg.anonymizer.get('scale', 1),
                  threads=torch.get_num_threads(),
                  adversarial_iteration=time_train_step(model, wrappers, data, args.device, adversarial,
                                                        args.iters, args.warmup))
    if adversarial:
        record['warmup_iteration'] = time_train_step(model, wrappers, data, args.device, 0, args.iters,
                                                     args.warmup)
    if args.anonymize_frames:
        record['anonymize'] = time_anonymize(model.anonymizer, args.anonymize_frames, args.video_frames,
                                             args.frame_size, args.device, args.iters, args.warmup, args.amp)
    record['overrides'] = overrides
    if args.device.startswith('cuda'):
        record['device_name'] = torch.cuda.get_device_name()
        record['peak_mem_gib'] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 3)
    else:
        record['peak_rss_gib'] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 3)
    out = Path(args.out or ROOT / 'results' / f'raprivacy_step_{profile}_{encoder}{"_bf16" if args.amp else ""}{"_denormals" if args.keep_denormals else ""}.json')
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + '\n')
    print(json.dumps({k: v for k, v in record.items() if k != 'provenance'}, indent=2))
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

"""Why the cpu profile's target action model swings between seeds, and what steadies it.

Two modes. ``--mode protocol`` runs the protocol's own fit and action stages (the MMEngine
runner, data path and test of ``benchmark/protocol.py``) with ``--cfg-options``-style settings,
each run in a scratch folder, and records the per-epoch training loss and the test top-1
(or, with ``--stage privacy``, the privacy stage's cMAP and AP per attribute): the
faithful measurement, minutes per run. ``--mode harness`` (the default) trains the cpu
profile's action model (the narrow mmaction2 3D ResNet-18 of
``configs/_base_/models/r3d18_tiny.py``) on one method's anonymized vp_synth clips outside the
protocol's runner, so that many settings and seeds fit in minutes: the same model, clip
sampling (8 frames, interval 2, random 56 px crops of 64 px frames, flips), normalization,
AdamW, warm-up and cosine schedule as the protocol, but clips drawn with replacement and a
lighter test (3 clips x centre crop per test video; the protocol takes 5 x 3). Every 150
iterations it logs the mean training loss and the test top-1, which shows when a run leaves
its plateau at chance.

    python scripts/diag_target_stability.py --grid "bs=16 iters=900" "bs=32 iters=450" \
        --methods downsample_2x --seeds 0,1,2,3
    python scripts/diag_target_stability.py --mode protocol \
        --grid "target_schedule.max_epochs=44" --methods downsample_2x,weak_blur --seeds 0
    python scripts/diag_target_stability.py --mode protocol --stage privacy \
        --grid "target_schedule.max_epochs=44" --methods raw --seeds 0,2

Writes ``results/target_stability_cpu.json`` (appending), with the command, commit and machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import tracking  # noqa: E402
from benchmark.anonymizer import build_anonymizer  # noqa: E402
from benchmark.cli import _parse_options  # noqa: E402
from benchmark.config import resolve_config  # noqa: E402
from benchmark.datasets.sampling import spread_clip_indices, train_clip_indices  # noqa: E402
from benchmark.protocol import _source_cfg  # noqa: E402
from benchmark.registry import DATASETS, MODELS, import_all  # noqa: E402
from benchmark.runner import init_weights_quietly  # noqa: E402

DEFAULTS = dict(bs=16, iters=900, lr=2e-3, wd=0.05, warmup=60)
MEAN, STD = 0.45, 0.225


def load(source):
    frames = np.stack([source.read(i, np.arange(source.num_frames(i))) for i in range(len(source))])
    return torch.from_numpy(frames), np.array([source.action(i) for i in range(len(source))])


def train_once(method: str, seed: int, setting: dict, data_cache: dict) -> dict:
    from mmengine.registry import DefaultScope
    cfg = resolve_config(method, 'vp_synth', 'cpu', seed=seed)
    anonymizer = build_anonymizer(cfg.anonymizer).eval()
    key = method
    if key not in data_cache:
        sources = {s: DATASETS.build(_source_cfg(cfg.dataset.to_dict(), s, tuple(anonymizer.needs)))
                   for s in ('train', 'test')}
        data_cache[key] = (*load(sources['train']), *load(sources['test']),
                           sources['train'].aux_channels)
    train_x, train_y, test_x, test_y, aux_names = data_cache[key]
    clip_len, interval, crop = cfg.clip.clip_len, cfg.dataset.clip.frame_interval, cfg.clip.crop_size
    size = train_x.shape[2]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model_cfg = cfg.action_model.to_dict()
    model_cfg['cls_head']['num_classes'] = int(train_y.max()) + 1
    model_cfg['data_preprocessor'] = dict(type='ClipPreprocessor')
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance('diag_target_stability', scope_name='benchmark')
    model = MODELS.build(model_cfg)
    init_weights_quietly(model)
    classes = model_cfg['cls_head']['num_classes']

    def prepare(x):
        x = x.permute(0, 4, 1, 2, 3).float() / 255
        aux = {name: x[:, 3 + i:4 + i] for i, name in enumerate(aux_names)}
        with torch.no_grad():
            rgb = anonymizer(x[:, :3], aux).clamp(0, 1)
        return (rgb - MEAN) / STD

    def batch():
        idx = rng.integers(0, len(train_x), setting['bs'])
        clips = []
        for i in idx:
            frames = train_clip_indices(train_x.shape[1], clip_len, interval, rng)
            y0, x0 = rng.integers(0, size - crop + 1, 2)
            clip = train_x[i, frames, y0:y0 + crop, x0:x0 + crop]
            clips.append(clip.flip(2) if rng.random() < 0.5 else clip)
        return torch.stack(clips), torch.from_numpy(train_y[idx])

    def test(num_clips: int) -> float:
        model.eval()
        right, offset = 0, (size - crop) // 2
        with torch.no_grad():
            for start in range(0, len(test_x), 16):
                clips = [test_x[i, f, offset:offset + crop, offset:offset + crop]
                         for i in range(start, min(start + 16, len(test_x)))
                         for f in spread_clip_indices(test_x.shape[1], clip_len, interval, num_clips)]
                logits = model.cls_head(model.backbone(prepare(torch.stack(clips))))
                probs = logits.softmax(-1).view(-1, num_clips, classes).mean(1)
                right += int((probs.argmax(-1).numpy() == test_y[start:start + 16]).sum())
        model.train()
        return right / len(test_x)

    optimizer = torch.optim.AdamW(model.parameters(), lr=setting['lr'], weight_decay=setting['wd'])
    iters, warmup = setting['iters'], setting['warmup']

    def lr_at(it):
        if it < warmup:
            return setting['lr'] * (0.1 + 0.9 * it / warmup)
        return setting['lr'] * 0.5 * (1 + math.cos(math.pi * (it - warmup) / max(1, iters - warmup)))

    start, losses, curve = time.time(), [], []
    model.train()
    for it in range(iters):
        for group in optimizer.param_groups:
            group['lr'] = lr_at(it)
        x, y = batch()
        loss = F.cross_entropy(model.cls_head(model.backbone(prepare(x))), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 40)
        optimizer.step()
        losses.append(loss.item())
        if (it + 1) % 150 == 0 or it + 1 == iters:
            curve.append(dict(iteration=it + 1, loss=round(float(np.mean(losses)), 3),
                              test_top1=round(test(1), 3)))
            losses = []
    return dict(method=method, seed=seed, **setting, clips_seen=iters * setting['bs'],
                top1=round(test(3), 4), seconds=round(time.time() - start, 1), curve=curve)


def protocol_once(method: str, seed: int, options: dict, scratch: Path, stage: str = 'action') -> dict:
    """The protocol's fit and ``stage`` (action or privacy) for one (method, seed, options), in ``scratch``."""
    from benchmark.protocol import Protocol
    cfg = resolve_config(method, 'vp_synth', 'cpu', options=options, seed=seed)
    digest = hashlib.sha1(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    folder = scratch / f'{method}_s{seed}_{digest}'
    protocol = Protocol(cfg, folder, f'sqlite:///{folder}/mlflow.db', log=lambda *a: None)
    start = time.time()
    protocol._prepare(fresh=True)
    protocol._fit()
    metrics = protocol._target(stage)['metrics']
    per_epoch: dict[int, list] = {}
    for path in (protocol.run_dir / stage).glob('*/vis_data/scalars.json'):
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if 'loss' in entry and 'epoch' in entry:
                per_epoch.setdefault(int(entry['epoch']), []).append(entry['loss'])
    curve = [dict(epoch=e, loss=round(float(np.mean(v)), 3)) for e, v in sorted(per_epoch.items())]
    # the first epoch whose mean loss is below 0.85 ln(classes): the model has left chance
    chance = math.log(len(protocol.sources['vp_synth', 'train'].classes))
    left = next((c['epoch'] for c in curve if c['loss'] < 0.85 * chance), None)
    figures = (dict(top1=round(metrics['action_top1'], 4),
                    top1_ci=[round(metrics['action_top1_ci_low'], 4), round(metrics['action_top1_ci_high'], 4)])
               if stage == 'action' else
               dict(cmap=round(metrics['privacy_cmap'], 4),
                    ap={k[len('privacy_ap_'):]: round(v, 4) for k, v in metrics.items()
                        if k.startswith('privacy_ap_')}))
    if stage == 'privacy':  # multi-label BCE: no chance level of ln(classes)
        left = None
    return dict(method=method, seed=seed, mode='protocol', stage=stage, options=options,
                schedule=dict(cfg.target_schedule), **figures,
                left_chance_epoch=left, seconds=round(time.time() - start, 1), curve=curve)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mode', choices=('harness', 'protocol'), default='harness')
    parser.add_argument('--grid', nargs='+', default=['bs=16 iters=900'],
                        help='settings, each "key=value ...": harness: bs, iters, lr, wd, warmup; '
                             'protocol: config keys as for --cfg-options ("" for the profile as is)')
    parser.add_argument('--scratch', default='/tmp/diag_target_stability',
                        help='protocol mode: folder for the runs (their own stores)')
    parser.add_argument('--stage', choices=('action', 'privacy'), default='action',
                        help='protocol mode: the target stage to train and test')
    parser.add_argument('--methods', default='downsample_2x')
    parser.add_argument('--seeds', default='0,1,2,3')
    parser.add_argument('--out', default='results/target_stability_cpu.json')
    args = parser.parse_args(argv)
    import_all()
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {'runs': []}
    prov = tracking.provenance('cpu')
    data_cache: dict = {}
    for text in args.grid:
        if args.mode == 'protocol':
            for method in args.methods.split(','):
                for seed in (int(s) for s in args.seeds.split(',')):
                    result = protocol_once(method, seed, _parse_options(text.split()), Path(args.scratch),
                                           args.stage)
                    result.update({k: prov[k] for k in ('commit', 'dirty', 'device', 'threads', 'command')})
                    record['runs'].append(result)
                    print(json.dumps({k: result.get(k) for k in ('method', 'seed', 'stage', 'options', 'top1',
                                                                 'cmap', 'left_chance_epoch', 'seconds')}), flush=True)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(record, indent=1))
            continue
        setting = dict(DEFAULTS)
        for pair in text.split():
            k, v = pair.split('=')
            setting[k] = type(DEFAULTS[k])(float(v)) if k in DEFAULTS else v
        if 'warmup' not in text:  # one epoch of 960 clips, as the protocol's warm-up
            setting['warmup'] = round(960 / setting['bs'])
        for method in args.methods.split(','):
            for seed in (int(s) for s in args.seeds.split(',')):
                result = train_once(method, seed, setting, data_cache)
                result.update({k: prov[k] for k in ('commit', 'dirty', 'device', 'threads', 'command')})
                record['runs'].append(result)
                print(json.dumps({k: result[k] for k in ('method', 'seed', 'bs', 'iters', 'top1', 'seconds')}),
                      flush=True)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(record, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

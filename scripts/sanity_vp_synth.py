"""Cheap learnability check of VP-Synth at the cpu profile's resolution (64 px, 56 px crops).

Trains tiny torch models for about a minute each (not the protocol's mmaction2 models):
a 3D CNN on 8-frame clips (frame interval 2) for actions, the same network on one frame
repeated (motion removed) to show single frames are ambiguous, and a 2D CNN on single
frames for the 5 privacy attributes, on raw frames and with the people blackened by their
masks. Prints top-1 and cMAP with chance floors and writes results/vp_synth_sanity.json.

    python scripts/sanity_vp_synth.py [--epochs 12]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import average_precision_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.datasets.vp_synth import VPSynthSource  # noqa: E402


def clips(src, rng, train, static=False, blacken=False):
    """(N, 3, 8, 56, 56) float clips, interval 2, random (train) or centre crops."""
    out = []
    for i in range(len(src)):
        start = rng.integers(0, src.num_frames(i) - 15) if train else (src.num_frames(i) - 15) // 2
        idx = start + np.arange(8) * 2
        if static:
            idx = np.full(8, idx[rng.integers(8)] if train else idx[4])
        x = src.read(i, idx).astype(np.float32) / 255
        if blacken:
            x[..., :3] *= (x[..., 4:5] < 0.5)
        y0, x0 = (rng.integers(0, 9, 2) if train else (4, 4))
        x = x[:, y0:y0 + 56, x0:x0 + 56, :3]
        if train and rng.random() < 0.5:
            x = x[:, :, ::-1]
        out.append(torch.from_numpy(np.ascontiguousarray(x)).permute(3, 0, 1, 2))
    return (torch.stack(out) - 0.45) / 0.225


def net3d(out):
    def block(i, o, s):
        return nn.Sequential(nn.Conv3d(i, o, 3, s, 1, bias=False), nn.BatchNorm3d(o), nn.ReLU())
    return nn.Sequential(block(3, 16, (1, 2, 2)), block(16, 32, 2), block(32, 64, 2),
                         block(64, 96, 2), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(96, out))


def train_eval(train_src, test_src, target, epochs, static=False, blacken=False, seed=0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n_out = 10 if target == 'action' else 5
    model = net3d(n_out)
    opt = torch.optim.AdamW(model.parameters(), 2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * (len(train_src) // 32 + 1))

    def labels(src):
        if target == 'action':
            return torch.tensor([src.action(i) for i in range(len(src))])
        return torch.tensor([src.privacy(i) for i in range(len(src))], dtype=torch.float32)

    y_train, y_test = labels(train_src), labels(test_src)
    loss_fn = nn.CrossEntropyLoss() if target == 'action' else nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        x = clips(train_src, rng, True, static, blacken)
        model.train()
        for b in torch.randperm(len(x)).split(32):
            opt.zero_grad()
            loss_fn(model(x[b]), y_train[b]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(b) for b in clips(test_src, rng, False, static, blacken).split(64)])
    if target == 'action':
        return float((logits.argmax(1) == y_test).float().mean())
    probs = torch.sigmoid(logits).numpy()
    return float(np.mean([average_precision_score(y_test[:, k], probs[:, k]) for k in range(5)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=12)
    parser.add_argument('--domain', default='a')
    args = parser.parse_args()
    torch.set_num_threads(2)
    train = VPSynthSource('train', domain=args.domain, size=64)
    test = VPSynthSource('test', domain=args.domain, size=64)
    floor = float(np.mean([test.privacy(i) for i in range(len(test))]))
    runs = dict(action_motion=('action', False, False), action_single_frame=('action', True, False),
                privacy_single_frame=('privacy', True, False),
                privacy_single_frame_blackened=('privacy', True, True))
    figures = dict(action_chance=0.1, privacy_cmap_floor=floor)
    for name, (target, static, blacken) in runs.items():
        start = time.time()
        figures[name] = train_eval(train, test, target, args.epochs, static, blacken)
        print(f'{name}: {figures[name]:.3f} ({time.time() - start:.0f} s)', flush=True)
    print(f'chance: action 0.100, privacy cMAP floor {floor:.3f}')
    out = ROOT / 'results' / 'vp_synth_sanity.json'
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(dict(command=' '.join(sys.argv), domain=args.domain,
                                   epochs=args.epochs, figures=figures), indent=1) + '\n')


if __name__ == '__main__':
    main()

"""Diagnose RAPrivacy's fit: can its action branch leave chance on raw clips, and how soon?

In the stored cpu-profile fits (results/curves.csv) the action branch's L_act stays at 2.2 to
2.5 (ln 10 = 2.30) for all 300 iterations, on anonymized clips. This script trains the same
branch (the profile's backbone, batch, clip length, optimizer) on raw vp_synth training clips,
with no anonymizer, and logs its loss and batch accuracy: if it leaves chance here, a warm-up
on raw clips (``fit.model.warmup_iters.action_branch``) can hand the adversarial phase a
branch that already knows the actions; the iteration where it leaves chance sizes that warm-up.

Writes results/raprivacy_action_warmup_<profile>.json: the per-iteration loss and accuracy, the
mean accuracy over windows of 25 iterations, the command, the commit and the machine.

``--lr``, ``--clip-len``, ``--batch`` and ``--dropout`` replace the profile's values (the output file's name
then says so), to ask what the branch needs to leave chance.

Usage: python scripts/diag_raprivacy_action_warmup.py [--profile cpu] [--iters 300] [--lr 2e-3]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--window', type=int, default=25)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--lr', type=float, help="the action branch's lr (default: the profile's)")
    parser.add_argument('--clip-len', type=int, help="frames per clip (default: the fit's)")
    parser.add_argument('--batch', type=int, help="clips per batch (default: the fit's)")
    parser.add_argument('--dropout', type=float, help="dropout before the classifier (default: the fit's)")
    parser.add_argument('--out', type=Path, default=ROOT / 'results')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    import torch.nn.functional as F
    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from benchmark.config import resolve_config
    from benchmark.data import ClipPreprocessor
    from benchmark.datasets.clips import ClipDataset
    from benchmark.registry import DATASETS, import_all
    from benchmark.tracking import provenance
    from raprivacy.model import ActionBranch
    import_all()
    record = dict(what='RAPrivacy fit action branch trained on raw clips (no anonymizer)',
                  profile=args.profile, seed=args.seed, **provenance('cpu'))

    cfg = resolve_config('raprivacy', 'vp_synth', args.profile, seed=args.seed)
    fit = cfg.fit
    source = DATASETS.build(dict(cfg.dataset.source.to_dict(), split='train'))
    clip = cfg.clip
    dataset = ClipDataset(source, target='action', test_mode=False,
                          clip_len=args.clip_len or fit.clip_len or clip.clip_len,
                          frame_interval=cfg.dataset.clip.frame_interval, crop_size=clip.crop_size,
                          resize_short=clip.get('resize_short'))
    gen = torch.Generator().manual_seed(args.seed)
    batch = args.batch or fit.batch_size
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, generator=gen,
                        collate_fn=pseudo_collate, num_workers=0, drop_last=True)
    preprocess = ClipPreprocessor(aux_channels=source.aux_channels, normalize=False)
    branch = ActionBranch(fit.model.action_backbone.to_dict(), len(source.classes),
                          fit.model.get('dropout', 0.5) if args.dropout is None else args.dropout)
    optim = fit.optim_wrapper.action_branch.optimizer
    lr = args.lr or optim.lr
    opt = torch.optim.AdamW(branch.parameters(), lr=lr, weight_decay=optim.weight_decay)
    record.update(batch=batch, clip_len=dataset.clip_len, crop=clip.crop_size, lr=lr,
                  dropout=branch.dropout.p,
                  classes=len(source.classes), backbone=fit.model.action_backbone.to_dict())

    losses, accs, start, it = [], [], time.time(), 0
    while it < args.iters:
        for data in loader:
            data = preprocess(data, True)
            clips = data['inputs'][:, 0]
            actions = torch.cat([s.gt_labels.item.view(-1)[:1] for s in data['data_samples']]).long()
            logits = branch(clips)
            loss = F.cross_entropy(logits, actions)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(round(loss.item(), 4))
            accs.append(round((logits.argmax(1) == actions).float().mean().item(), 4))
            it += 1
            if it % 10 == 0:
                recent = sum(accs[-args.window:]) / len(accs[-args.window:])
                print(f'iter {it}: loss {loss.item():.3f}, accuracy over the last '
                      f'{min(it, args.window)} {recent:.3f} ({time.time() - start:.0f} s)', flush=True)
            if it >= args.iters:
                break
    windows = [round(sum(accs[i:i + args.window]) / len(accs[i:i + args.window]), 4)
               for i in range(0, len(accs), args.window)]
    record.update(loss=losses, accuracy=accs, window=args.window, window_accuracy=windows,
                  seconds=round(time.time() - start, 1))
    args.out.mkdir(parents=True, exist_ok=True)
    changed = ''.join(f'_{k}{v:g}' for k, v in (('lr', args.lr), ('clip', args.clip_len), ('batch', args.batch),
                                                 ('dropout', args.dropout)) if v is not None)
    path = args.out / f'raprivacy_action_warmup_{args.profile}{changed}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(f'wrote {path}: window accuracy {windows}')


if __name__ == '__main__':
    main()

"""Diagnose the two readings of RAPrivacy's L_pri: what does each pay the anonymizer for?

The anonymizer raises L_pri (Eq. 9). For each reading (``eq9_action_pairs``: Eq. 7 over
action-defined pairs, as printed; ``ntxent_views``: SPAct's NT-Xent over two views of each
clip) this script trains the cpu profile's privacy branch on raw vp_synth training clips to
lower that reading (as the fit's branch does), then measures it on test clips as each of these
anonymizers leaves them:

- ``raw``: the frames themselves (nothing hidden);
- ``depth``: the rendered depth image (the person's colours and clothes gone, the motion kept);
- ``blackening``: the person blacked out (the person gone, the motion mostly too);
- ``constant``: a grey frame (everything gone).

A reading that rewards hiding the person should score ``depth`` well above ``raw``, toward
``constant``; ``reach`` is (L(x) - L(raw)) / (L(constant) - L(raw)), 0 for as good as raw frames,
1 for as good as a grey frame. Writes results/raprivacy_privacy_readings_<profile>.json with the
losses, the command, the commit and the machine.

Usage: python scripts/diag_raprivacy_privacy_readings.py [--profile cpu] [--iters 400]
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
READINGS = ('eq9_action_pairs', 'ntxent_views')
INPUTS = ('raw', 'depth', 'blackening', 'constant')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--iters', type=int, default=400, help='training iterations of each privacy branch')
    parser.add_argument('--eval-batches', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', type=Path, default=ROOT / 'results')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mmengine.dataset import pseudo_collate
    from torch.utils.data import DataLoader

    from benchmark.anonymizer import build_anonymizer
    from benchmark.config import resolve_config
    from benchmark.data import ClipPreprocessor
    from benchmark.datasets.clips import ClipDataset
    from benchmark.registry import DATASETS, import_all
    from benchmark.tracking import provenance
    from raprivacy.losses import clip_views, ntxent_loss, pair_contrastive_loss
    from raprivacy.model import PrivacyBranch, RAPrivacyModel
    import_all()
    record = dict(what='L_pri of a trained privacy branch, each reading, on clips left by each anonymizer',
                  profile=args.profile, iters=args.iters, seed=args.seed, **provenance('cpu'))
    cfg = resolve_config('raprivacy', 'vp_synth', args.profile, seed=args.seed)
    fit, model_cfg = cfg.fit, cfg.fit.model

    def loader(split: str, shuffle: bool) -> DataLoader:
        source = DATASETS.build(dict(cfg.dataset.source.to_dict(), split=split))
        dataset = ClipDataset(source, target='action', test_mode=not shuffle,
                              clip_len=fit.clip_len or cfg.clip.clip_len,
                              frame_interval=cfg.dataset.clip.frame_interval, crop_size=cfg.clip.crop_size,
                              resize_short=cfg.clip.get('resize_short'), num_clips=1, num_crops=1)
        gen = torch.Generator().manual_seed(args.seed)
        return DataLoader(dataset, batch_size=fit.batch_size, shuffle=shuffle, generator=gen,
                          collate_fn=pseudo_collate, num_workers=0, drop_last=True), source

    train, source = loader('train', True)
    test, _ = loader('test', True)  # shuffled: batches of several actions
    preprocess = ClipPreprocessor(aux_channels=source.aux_channels, normalize=False, keep_aux=True)
    anonymizers = dict(depth=build_anonymizer(dict(type='DepthImage')),
                       blackening=build_anonymizer(dict(type='Blackening', dilate=2.0)))

    def batch_of(data):
        data = preprocess(data, True)
        clips = data['inputs'][:, 0]
        actions, videos = RAPrivacyModel.labels(data['data_samples'], clips.device)
        return clips, data, actions, videos

    def term(branch, reading, clips, actions, videos):
        if reading == 'ntxent_views':
            emb1, emb2 = branch(torch.cat(clip_views(clips, **model_cfg.get('views', {})))).chunk(2)
            return ntxent_loss(emb1, emb2, videos, model_cfg.get('temperature', 0.1))
        return pair_contrastive_loss(branch(clips), actions, videos, model_cfg.get('margin', 1.0))

    results = {}
    for reading in READINGS:
        torch.manual_seed(args.seed)
        branch = PrivacyBranch(model_cfg.privacy_backbone.to_dict(), model_cfg.get('privacy_embed_dim', 128))
        optim = fit.optim_wrapper.privacy_branch.optimizer
        opt = torch.optim.AdamW(branch.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
        start, it, curve = time.time(), 0, []
        while it < args.iters:
            for data in train:
                clips, _, actions, videos = batch_of(data)
                loss = term(branch, reading, clips, actions, videos)
                opt.zero_grad()
                loss.backward()
                opt.step()
                it += 1
                if it % 50 == 0:
                    curve.append(round(loss.item(), 4))
                    print(f'{reading}: iter {it}, loss {loss.item():.3f} ({time.time() - start:.0f} s)', flush=True)
                if it >= args.iters:
                    break
        branch.eval()  # batch statistics of the training clips, not of each kind of input
        sums = dict.fromkeys(INPUTS, 0.0)
        torch.manual_seed(args.seed)
        with torch.no_grad():
            for i, data in enumerate(test):
                if i == args.eval_batches:
                    break
                clips, prepared, actions, videos = batch_of(data)
                aux = {k: v[:, 0] for k, v in prepared['aux'].items()}
                views = dict(raw=clips, constant=torch.full_like(clips, 0.5),
                             **{name: a(clips, aux).clamp(0, 1) for name, a in anonymizers.items()})
                for name in INPUTS:
                    sums[name] += term(branch, reading, views[name], actions, videos).item()
        loss = {k: round(v / args.eval_batches, 4) for k, v in sums.items()}
        span = loss['constant'] - loss['raw']
        results[reading] = dict(train_curve=curve, loss=loss,
                                reach={k: round((loss[k] - loss['raw']) / span, 3) if span else None
                                       for k in INPUTS},
                                seconds=round(time.time() - start, 1))
        print(reading, results[reading]['loss'], results[reading]['reach'], flush=True)
    record.update(readings=results, batch=fit.batch_size, eval_batches=args.eval_batches,
                  clip_len=fit.clip_len or cfg.clip.clip_len, crop=cfg.clip.crop_size,
                  lr=fit.optim_wrapper.privacy_branch.optimizer.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f'raprivacy_privacy_readings_{args.profile}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(f'wrote {path}')


if __name__ == '__main__':
    main()

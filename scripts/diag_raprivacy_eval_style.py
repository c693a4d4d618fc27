"""Does the style image RAPrivacy is evaluated with bound its frames' outline?

At evaluation every clip takes one style from the anonymizer's bank (``anonymizer.eval_style``,
default 0). This script loads a fitted anonymizer, evaluates it with each style of its bank in
turn, and measures the automated readability (``benchmark.readability``: outline, depth
likeness, colour) on the same videos the protocol measures (``READABILITY_VIDEOS``, the centre
view of each). If one style drew the person's outline much better, ``eval_style`` would be a
knob worth choosing (on training videos, not test ones); if the spread is small, the outline is
bounded by what the fit learned, not by the style it is shown.

Writes results/raprivacy_eval_styles_<profile>.json with the scores per style, their range,
the command, the commit and the machine.

Usage: python scripts/diag_raprivacy_eval_style.py --run WORK/vp_synth/raprivacy/cpu/seed0/fit
           [--split test] [--profile cpu] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--run', type=Path, required=True,
                        help="a fitted RAPrivacy anonymizer: a run's fit/ folder or its anonymizer.pth")
    parser.add_argument('--split', default='test', choices=('train', 'test'))
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--out', type=Path, default=ROOT / 'results')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from benchmark import readability
    from benchmark.anonymize import load_anonymizer
    from benchmark.config import resolve_config
    from benchmark.datasets.clips import ClipDataset
    from benchmark.protocol import READABILITY_VIDEOS
    from benchmark.registry import DATASETS, import_all
    from benchmark.tracking import provenance
    import_all()
    anonymizer = load_anonymizer(args.run)
    if not hasattr(anonymizer, 'style_bank'):
        sys.exit(f'diag_raprivacy_eval_style: {args.run} is a {type(anonymizer).__name__}, not a '
                 f'RAPrivacy anonymizer; give the fit/ folder of a raprivacy run')
    cfg = resolve_config('raprivacy', 'vp_synth', args.profile)
    source = DATASETS.build(dict(cfg.dataset.source.to_dict(), split=args.split))
    dataset = ClipDataset(source, test_mode=True, clip_len=cfg.clip.clip_len,
                          frame_interval=cfg.dataset.clip.frame_interval, crop_size=cfg.clip.crop_size,
                          resize_short=cfg.clip.get('resize_short'), num_clips=1, num_crops=1)
    record = dict(what='readability of one fitted RAPrivacy anonymizer evaluated with each style of its bank',
                  anonymizer=str(args.run.resolve()), default_eval_style=int(anonymizer.eval_style),
                  split=args.split, videos=READABILITY_VIDEOS, profile=args.profile,
                  **provenance('cpu'))
    styles = {}
    for k in range(len(anonymizer.style_bank)):
        anonymizer.eval_style = k
        start = time.time()
        metrics = readability.measure(dataset, anonymizer, READABILITY_VIDEOS)
        styles[k] = {name.removeprefix('readability_'): round(float(value), 4)
                     for name, value in metrics.items()}
        print(f'style {k}: {styles[k]} ({time.time() - start:.1f} s)', flush=True)
    record['styles'] = styles
    for name in ('outline', 'colour', 'depth'):
        values = np.array([s[name] for s in styles.values()])
        record[name] = dict(min=float(values.min()), max=float(values.max()), mean=round(float(values.mean()), 4),
                            std=round(float(values.std(ddof=1)), 4), style_of_max=int(values.argmax()))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f'raprivacy_eval_styles_{args.profile}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(f"outline over {len(styles)} styles: {record['outline']['min']} to {record['outline']['max']} "
          f"(mean {record['outline']['mean']}, default style {record['default_eval_style']}: "
          f"{styles[record['default_eval_style']]['outline']}); wrote {path}")


if __name__ == '__main__':
    main()

"""How far apart vp_synth and vp_synth_b are, on raw frames: target models trained on one
domain's training split and tested on the other's test split.

The transfer table (``bench report --dataset vp_synth_b``) says what moving an anonymizer
from domain a to domain b costs; that means something only if the domains differ where it
matters. Here the protocol's own action and privacy stages (the cpu profile's target models,
data path and test) train on raw ``--train`` clips, exactly as a ``bench run --method raw
--dataset <train>`` does with the same seed, and are tested on raw ``--test`` videos. Put the
figures beside the in-domain runs (``bench run --method raw --dataset <test>``): the gap is
what a model loses by meeting the other domain.

    python scripts/domain_gap.py --seeds 0,1,2      # vp_synth -> vp_synth_b

Writes ``results/domain_gap_cpu.json`` (appending), with the command, commit and machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import tracking  # noqa: E402
from benchmark.config import resolve_config  # noqa: E402
from benchmark.protocol import Protocol, _source_cfg  # noqa: E402
from benchmark.registry import DATASETS, import_all  # noqa: E402


class CrossDomainTest(Protocol):
    """The protocol's target stages on raw frames, tested on another dataset's test split."""

    def __init__(self, cfg, test_data: dict, *args, **kwargs) -> None:
        super().__init__(cfg, *args, **kwargs)
        if self.anonymizer.learns:
            raise SystemExit('domain_gap: a fixed method only (the fit would be skipped)')
        self.test_data = test_data

    def _check_data(self) -> None:
        super()._check_data()
        test = DATASETS.build(_source_cfg(self.test_data, 'test', self.needs))
        train = self.sources[self.eval_data['name'], 'train']
        if list(test.classes) != list(train.classes) or list(test.attributes) != list(train.attributes):
            raise SystemExit(f'domain_gap: {self.test_data["name"]} has other classes or attributes '
                             f'than {self.eval_data["name"]}')
        self.sources[self.test_data['name'], 'test'] = test

    def _dataloader(self, data, split, target, batch_size, num_workers, test, infinite=False,
                    source=None, clip_len=None):
        if test:
            data, source = self.test_data, None
        return super()._dataloader(data, split, target, batch_size, num_workers, test, infinite,
                                   source, clip_len)


def cross_domain(method: str, train: str, test: str, seed: int, scratch: Path, profile: str = 'cpu') -> dict:
    cfg = resolve_config(method, train, profile, seed=seed)
    test_data = resolve_config(method, test, profile, seed=seed).dataset.to_dict()
    folder = scratch / f'{method}_{train}_to_{test}_s{seed}'
    protocol = CrossDomainTest(cfg, test_data, folder, f'sqlite:///{folder}/mlflow.db', log=lambda *a: None)
    start = time.time()
    protocol._prepare(fresh=True)
    protocol._fit()  # a fixed method's fit only saves its (identity) state for the data path
    action = protocol._target('action')['metrics']
    privacy = protocol._target('privacy')['metrics']
    return dict(method=method, train=train, test=test, profile=profile, seed=seed,
                action_top1=round(action['action_top1'], 4),
                privacy_cmap=round(privacy['privacy_cmap'], 4),
                privacy_ap={k[len('privacy_ap_'):]: round(v, 4) for k, v in privacy.items()
                            if k.startswith('privacy_ap_')},
                seconds=round(time.time() - start, 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--method', default='raw', help='a fixed method (default: raw)')
    parser.add_argument('--train', default='vp_synth')
    parser.add_argument('--test', default='vp_synth_b')
    parser.add_argument('--seeds', default='0,1,2')
    parser.add_argument('--scratch', default='/tmp/domain_gap')
    parser.add_argument('--profile', default='cpu')
    parser.add_argument('--out', help='default: results/domain_gap_<profile>.json')
    args = parser.parse_args(argv)
    import_all()
    out = Path(args.out or f'results/domain_gap_{args.profile}.json')
    record = json.loads(out.read_text()) if out.is_file() else {'runs': []}
    prov = tracking.provenance('cpu')
    for seed in (int(s) for s in args.seeds.split(',')):
        result = cross_domain(args.method, args.train, args.test, seed, Path(args.scratch), args.profile)
        result.update(provenance=prov)
        record['runs'].append(result)
        print(json.dumps({k: v for k, v in result.items() if k != 'provenance'}), flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1) + '\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

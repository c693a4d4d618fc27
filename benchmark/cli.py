"""``bench``: run the protocol, sweep, report, list, inspect data, anonymize video, browse runs.

A thin layer, like mmaction2's tools/train.py: parse, resolve the config, build, run.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = {
    'run': """examples:
  bench run --method raw --dataset vp_synth                 # cpu profile, seed 0
  bench run --method strong_blur --seeds 0,1,2              # one MLflow run per seed
  bench run --method raprivacy --dataset vp_hmdb51 --profile paper --device cuda --amp \\
            --data-root /data/hmdb51
  bench run --method raw --train-dataset vp_synth --dataset vp_synth_b   # transfer
  bench run --method raw --profile smoke --cfg-options target_schedule.max_epochs=2
""",
    'sweep': """examples:
  # the style ablation: which style set RAPrivacy transfers toward
  bench sweep --method raprivacy --grid anonymizer.style_set.type=VPSynthDepthStyles,VPSynthRGBStyles \\
              --seeds 0,1
  # two grids multiply: 2 x 2 variants
  bench sweep --method strong_blur --grid anonymizer.sigma=4.0,8.0 --grid anonymizer.dilate=0.0,4.0
Each variant is a run of its own (method shown as <method>@<key>=<value>,...) in the same
store, resumable like any run; `bench report` lists the variants beside the methods.
""",
    'ls': """examples:
  bench ls methods
  bench ls datasets
  bench ls profiles
""",
    'config': """examples:
  bench config --method strong_blur --dataset vp_synth --profile cpu
""",
    'ui': """examples:
  bench ui                          # the default store, work_dirs/mlflow.db
  bench ui --port 5001 --tracking-uri sqlite:///elsewhere/mlflow.db
""",
}


def _parse_options(pairs: list[str] | None) -> dict:
    """``key=value`` strings to a dict, values parsed as Python literals where possible."""
    import ast
    out = {}
    for pair in pairs or []:
        if '=' not in pair:
            raise SystemExit(f'bench: --cfg-options {pair!r} is not key=value')
        key, value = pair.split('=', 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _seeds(args) -> list[int]:
    if args.seeds:
        try:
            return [int(s) for s in args.seeds.split(',') if s.strip()]
        except ValueError:
            raise SystemExit(f'bench: --seeds {args.seeds!r} must be integers like 0,1,2') from None
    return [args.seed]


def _select_device(device: str) -> None:
    if device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''  # MMEngine picks CUDA whenever it sees one
        return
    import torch
    if not torch.cuda.is_available():
        raise SystemExit('bench: --device cuda but no CUDA device is visible: use --device cpu')


def _data_options(args) -> dict:
    options = _parse_options(args.cfg_options)
    if getattr(args, 'data_root', None):
        options['dataset.source.data_root'] = args.data_root
    if getattr(args, 'style_root', None):
        options['anonymizer.style_set'] = dict(type='FolderStyles', root=args.style_root)
    return options


def cmd_run(args) -> int:
    from benchmark.config import resolve_config
    from benchmark.protocol import Protocol
    from benchmark.tracking import resolve_tracking_uri
    _select_device(args.device)
    if args.amp and args.device != 'cuda':
        raise SystemExit('bench: --amp needs --device cuda (bf16 autocast on the GPU)')
    work_root = Path(args.work_dir)
    uri = resolve_tracking_uri(args.tracking_uri, work_root)
    options = _data_options(args)
    for seed in _seeds(args):
        cfg = resolve_config(args.method, args.dataset, args.profile,
                             train_dataset=args.train_dataset, options=options, seed=seed)
        protocol = Protocol(cfg, work_root, uri, device=args.device, amp=args.amp)
        result = protocol.run(fresh=args.fresh)
        _print_result(cfg, result)
    print(f'\nruns are in {uri}: browse them with `bench ui'
          f'{"" if args.tracking_uri is None and "MLFLOW_TRACKING_URI" not in os.environ else " --tracking-uri " + uri}`'
          f', tabulate them with `bench report`')
    return 0


def _grid(pairs: list[str]) -> list[dict]:
    """``key=v1,v2`` entries to the list of their combinations."""
    import ast
    import itertools
    axes = []
    for pair in pairs:
        if '=' not in pair:
            raise SystemExit(f'bench: --grid {pair!r} is not key=value1,value2,...')
        key, values = pair.split('=', 1)
        parsed = []
        for v in values.split(','):
            try:
                parsed.append(ast.literal_eval(v))
            except (ValueError, SyntaxError):
                parsed.append(v)
        axes.append([(key, v) for v in parsed])
    return [dict(combo) for combo in itertools.product(*axes)]


def _variant_name(point: dict) -> str:
    return ','.join(f'{k}={v}' for k, v in point.items())


def cmd_sweep(args) -> int:
    from benchmark.config import resolve_config
    from benchmark.protocol import Protocol
    from benchmark.tracking import resolve_tracking_uri
    _select_device(args.device)
    work_root = Path(args.work_dir)
    uri = resolve_tracking_uri(args.tracking_uri, work_root)
    base = _data_options(args)
    points = _grid(args.grid)
    configs = [resolve_config(args.method, args.dataset, args.profile,
                              train_dataset=args.train_dataset, options={**base, **point},
                              seed=seed, variant=_variant_name(point))
               for point in points for seed in _seeds(args)]  # resolve all first: fail early
    print(f'sweep: {len(points)} variants x {len(_seeds(args))} seeds = {len(configs)} runs')
    for cfg in configs:
        result = Protocol(cfg, work_root, uri, device=args.device, amp=args.amp).run()
        _print_result(cfg, result)
    return 0


def _print_result(cfg, result: dict) -> None:
    m = result['metrics']
    name = f'{cfg.method}@{cfg.variant}' if cfg.get('variant') else cfg.method
    print(f'\n== {name} on {cfg.dataset.name} ({cfg.profile} profile, seed {cfg.seed}) ==')
    print(f'  action top-1      {100 * m["action_top1"]:6.2f} %   (chance floor '
          f'{100 * m["floor_action_top1"]:.2f} %, higher is better)')
    print(f'  privacy cMAP      {100 * m["privacy_cmap"]:6.2f} %   (chance floor '
          f'{100 * m["floor_cmap"]:.2f} %, lower is better)')
    print(f'  privacy F1 macro  {m["privacy_f1_macro"]:6.3f}     (all-positive floor '
          f'{m["floor_f1_macro"]:.3f}, lower is better)')
    attrs = [k.removeprefix('privacy_ap_') for k in m if k.startswith('privacy_ap_')]
    print('  AP per attribute  ' + ', '.join(f'{a} {100 * m["privacy_ap_" + a]:.1f}' for a in attrs))
    print(f'  time              {m["time_total_s"]:.0f} s '
          f'(fit {m.get("time_fit_s", 0):.0f}, action {m["time_action_s"]:.0f}, '
          f'privacy {m["time_privacy_s"]:.0f})')
    print(f'  MLflow run        {result["run_id"]}   folder {result["run_dir"]}')


def cmd_ls(args) -> int:
    from benchmark.config import available_datasets, available_methods, available_profiles
    if args.what == 'methods':
        from mmengine.config import Config
        from benchmark.anonymizer import build_anonymizer
        from benchmark.config import CONFIG_DIR
        from benchmark.registry import ANONYMIZERS, import_all
        import_all()
        used = set()
        print(f'{"method":16} {"anonymizer":22} {"Table 1 row":14} {"learns":7} needs')
        for name in available_methods():
            cfg = Config.fromfile(str(CONFIG_DIR / 'methods' / f'{name}.py'))
            cls = ANONYMIZERS.get(cfg.anonymizer['type'])
            used.add(cfg.anonymizer['type'])
            try:
                table = build_anonymizer(cfg.anonymizer.to_dict()).table_name
            except Exception:  # a learning method whose weights are not here: the class name will do
                table = cls.table_name
            print(f'{name:16} {cfg.anonymizer["type"]:22} {table:14} '
                  f'{"yes" if cls.learns else "no":7} {", ".join(cls.needs) or "-"}')
        unused = sorted(set(ANONYMIZERS.module_dict) - used)
        if unused:
            print(f'registered anonymizers without a method config: {", ".join(unused)}')
    elif args.what == 'datasets':
        for name in available_datasets():
            print(name)
    else:
        for name in available_profiles():
            print(name)
    return 0


def cmd_config(args) -> int:
    from benchmark.config import resolve_config
    cfg = resolve_config(args.method, args.dataset, args.profile,
                         train_dataset=args.train_dataset, options=_data_options(args),
                         seed=args.seed)
    print(cfg.pretty_text)
    return 0


def cmd_ui(args) -> int:
    import subprocess
    from benchmark.tracking import default_artifact_root, resolve_tracking_uri
    uri = resolve_tracking_uri(args.tracking_uri, Path(args.work_dir))
    cmd = [sys.executable, '-m', 'mlflow', 'ui', '--backend-store-uri', uri,
           '--host', '127.0.0.1', '--port', str(args.port)]
    root = default_artifact_root(uri)
    if root:
        cmd += ['--default-artifact-root', root]
    print(f'MLflow UI over {uri} at http://127.0.0.1:{args.port} (Ctrl-C stops it)')
    return subprocess.call(cmd)


def _common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--method', required=True, help='method config name (bench ls methods)')
    p.add_argument('--dataset', default='vp_synth', help='evaluation dataset (default: vp_synth)')
    p.add_argument('--train-dataset', default=None,
                   help='fit the anonymizer on this dataset instead (transfer evaluation)')
    p.add_argument('--profile', default='cpu', help='smoke | cpu | paper (default: cpu)')
    p.add_argument('--seed', type=int, default=0, help='training seed (default: 0)')
    p.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                   help='override config entries, e.g. target_schedule.max_epochs=5')
    p.add_argument('--data-root', help='root of a real dataset (vp_ucf101, vp_hmdb51)')
    p.add_argument('--style-root', help='folder of style images (e.g. SBU Kinect depth frames)')


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument('--work-dir', default='work_dirs',
                   help='root of run folders and the default MLflow store (default: work_dirs)')
    p.add_argument('--tracking-uri', default=None,
                   help='MLflow store (default: $MLFLOW_TRACKING_URI or sqlite:///<work-dir>/mlflow.db)')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='bench', description='raprivacy-bench: privacy-preserving action recognition, '
        'one protocol for every method.', formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Run `bench <command> --help` for examples.')
    sub = parser.add_subparsers(dest='command', required=True)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser('run', help='run the protocol for one method', epilog=EXAMPLES['run'],
                       formatter_class=fmt)
    _common_run_args(p)
    p.add_argument('--seeds', help='comma-separated seeds, one run each (overrides --seed)')
    _store_args(p)
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--amp', action='store_true', help='bf16 mixed precision (CUDA)')
    p.add_argument('--fresh', action='store_true',
                   help='discard the run folder of this (method, dataset, profile, seed) first')
    p.set_defaults(func=cmd_run)

    p = sub.add_parser('sweep', help='run a method over a grid of config values (ablations)',
                       epilog=EXAMPLES['sweep'], formatter_class=fmt)
    _common_run_args(p)
    p.add_argument('--grid', action='append', required=True, metavar='KEY=V1,V2',
                   help='a config key and its values; repeat for a product grid')
    p.add_argument('--seeds', help='comma-separated seeds, one run each')
    _store_args(p)
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--amp', action='store_true', help='bf16 mixed precision (CUDA)')
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser('ls', help='list methods, datasets or profiles', epilog=EXAMPLES['ls'],
                       formatter_class=fmt)
    p.add_argument('what', choices=('methods', 'datasets', 'profiles'))
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser('config', help='print the resolved config of a run',
                       epilog=EXAMPLES['config'], formatter_class=fmt)
    _common_run_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser('ui', help='the MLflow UI over the store, on 127.0.0.1',
                       epilog=EXAMPLES['ui'], formatter_class=fmt)
    _store_args(p)
    p.add_argument('--port', type=int, default=5000)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from benchmark.protocol import ProtocolError
    from benchmark.registry import UnknownNameError
    from benchmark.tracking import TrackingError
    try:
        return args.func(args)
    except (UnknownNameError, ProtocolError, TrackingError, FileNotFoundError) as err:
        print(f'bench: {err}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\nbench: interrupted; run the same command again to resume', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())

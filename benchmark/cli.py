"""``bench``: run the protocol, sweep, report, list, inspect data, anonymize video, browse runs,
run the human readability study.

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
  bench run --method spact --dataset vp_synth_b              # in-domain on B: fitted on B
  bench run --method spact --train-dataset vp_synth --dataset vp_synth_b   # transfer: the
            # anonymizer fitted on vp_synth, the target models trained and tested on vp_synth_b
            # (the fit of the in-domain vp_synth run in --work-dir, if there is one)
  bench run --method spact --train-dataset vp_synth --dataset vp_synth_b --fit-from work_dirs_table1
            # ... the anonymizer fitted by the in-domain run stored in another work dir
  bench run --method raprivacy --train-dataset vp_ucf101 --train-data-root /data/ucf101 \\
            --dataset vp_hmdb51 --data-root /data/hmdb51 --profile paper --device cuda
  bench run --method raw --profile smoke --cfg-options target_schedule.max_epochs=2
  bench run --method raprivacy --amp        # bf16 autocast on a CPU with AVX512-BF16/AMX units:
            # faster, not the same numbers (tagged bench.precision=bf16; the header counts them)
  torchrun --nproc-per-node 4 -m benchmark.cli run --method raw --profile paper --device cuda \\
            --launcher pytorch                    # one run, 4 GPUs, the same global batch
""",
    'sweep': """examples:
  # the style ablation: which style set RAPrivacy transfers toward (bench styles ls)
  bench sweep --method raprivacy --grid style=depth,edges,silhouette,thermal,rgb --seeds 0,1 \\
              --name styles --jobs 2
  # two grids multiply: 2 x 2 variants
  bench sweep --method strong_blur --grid anonymizer.sigma=4.0,8.0 --grid anonymizer.dilate=0.0,4.0
  bench report --sweep styles                    # its table and figures, under reports/
Each point is a run of its own (method shown as <method>@<key>=<value>,...) tagged with the
sweep's name in MLflow. The same command again skips finished points, resumes interrupted ones
and runs failed ones again; a failing point never stops the others and is listed at the end.
""",
    'styles': """examples:
  bench styles ls                                # the style sets of `--grid style=...`
  bench styles preview thermal                   # reports/styles_thermal.png
  bench styles preview folder --root ~/sbu_depth # a folder of your own (--style-root)
""",
    'ls': """examples:
  bench ls methods
  bench ls datasets
  bench ls profiles
""",
    'config': """examples:
  bench config --method strong_blur --dataset vp_synth --profile cpu
""",
    'report': """examples:
  bench report                                   # every dataset and profile in the store
  bench report --dataset vp_synth --profile cpu
  bench report --dataset vp_synth_b              # with transfer runs: transfer_<profile>.md,
                                                 # in-domain vs transferred and the cost
  bench report --from results/runs.csv           # rebuild tables and plots without the store
  bench report --from a/runs.csv --from b/runs.csv   # runs of two stores (machines) in one table:
                                                 # merged into --results, then reported
  bench report --sweep styles                    # reports/sweep_styles.{md,csv}, plots/sweep_styles_*
  bench report --sweep styles --reference rgb    # every point against style=rgb (default: the
                                                 # first value given on each grid axis)
  bench report --tracking-uri http://mlflow.example:5000 --out paper_reports/
""",
    'datasets': """examples:
  bench datasets preview vp_synth                # reports/vp_synth_preview.{png,gif}
  bench datasets preview vp_synth_b --size 112
  bench datasets check vp_hmdb51 --data-root /data/hmdb51
  bench datasets check vp_ucf101 --data-root /data/ucf101 --split-id 2 --quick
""",
    'anonymize': """examples:
  bench anonymize --run 3f2c9e... patient.mp4 patient_anonymized.mp4
  bench anonymize --checkpoint work_dirs/vp_synth/raprivacy/cpu/seed0/fit/anonymizer.pth \\
                  frames_in/ frames_out/
The anonymizer is the one a `bench run` fitted (its MLflow run or its checkpoint file); video is
processed in windows of frames, so memory does not grow with the video's length. An output that
is the input (the same file or folder, or a link to it) is refused before anything is written.
""",
    'study': """examples:
  bench study                          # the page on http://127.0.0.1:5050, clips from work_dirs
  bench study --port 8080 --profile cpu --dataset vp_synth
  bench study results                  # human top-1 per method, logged to the runs in MLflow
The clips are the sample clips of the store's counting runs (4 test videos per run on the cpu
profile), method names hidden; answers go to <work-dir>/study.db (--db) as they are given.
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
        if '=' not in pair or pair.startswith('='):
            raise SystemExit(f'bench: --cfg-options {pair!r} is not key=value')
        key, value = pair.split('=', 1)
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


MAX_SEEDS = 100  # more runs than this in one command asks for --many-seeds
SEED_LIMIT = 2**32  # numpy's seeds are 32-bit


def _seeds(args) -> list[int]:
    """The command's seeds, checked before anything is created: non-negative 32-bit integers,
    each once, at most ``MAX_SEEDS`` of them unless ``--many-seeds``."""
    if args.seeds is None:
        seeds = [args.seed]
    else:
        try:
            seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
        except ValueError:
            seeds = []
        if not seeds:
            raise SystemExit(f'bench: --seeds {args.seeds[:80]!r} must be integers >= 0 like 0,1,2')
    bad = [s for s in seeds if not 0 <= s < SEED_LIMIT]
    if bad:
        raise SystemExit(f'bench: seed {bad[0]} is out of range: seeds are integers from 0 to {SEED_LIMIT - 1}')
    if len(set(seeds)) < len(seeds):
        twice = next(s for s in seeds if seeds.count(s) > 1)
        raise SystemExit(f'bench: seed {twice} is given twice in --seeds: each seed is one run')
    if len(seeds) > MAX_SEEDS and not args.many_seeds:
        raise SystemExit(f'bench: --seeds lists {len(seeds)} seeds, {len(seeds)} runs per variant; more '
                         f'than {MAX_SEEDS} needs --many-seeds')
    return seeds


def _select_device(device: str) -> None:
    if device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''  # MMEngine picks CUDA whenever it sees one
        return
    import torch
    if not torch.cuda.is_available():
        raise SystemExit('bench: --device cuda but no CUDA device is visible: use --device cpu')


def _check_amp(args) -> None:
    """Refuse ``--amp`` where bf16 would not run or would run slower (``benchmark.amp``)."""
    if not args.amp:
        return
    from benchmark.amp import bf16_problem
    problem = bf16_problem(args.device)
    if problem:
        raise SystemExit(f'bench: --amp on --device {args.device}: {problem}; leave out --amp')


def _data_options(args) -> dict:
    options = _parse_options(args.cfg_options)
    if getattr(args, 'data_root', None):
        options['dataset.source.data_root'] = args.data_root
    if getattr(args, 'train_data_root', None):
        options['fit_dataset.source.data_root'] = args.train_data_root
    if getattr(args, 'style_root', None):
        options['anonymizer.style_set'] = dict(type='FolderStyles', root=args.style_root)
    return options


def _store_for_writing(args) -> str:
    """The run's store, refused in seconds (before torch loads) when a server does not answer."""
    from benchmark.store import check_reachable, resolve_tracking_uri
    uri = resolve_tracking_uri(args.tracking_uri, Path(args.work_dir))
    check_reachable(uri)
    return uri


def _store_for_reading(args) -> str:
    """The store a reading command opens: it must exist (nothing is created) and answer."""
    from benchmark.store import check_readable, resolve_tracking_uri
    uri = resolve_tracking_uri(args.tracking_uri, Path(args.work_dir))
    check_readable(uri)
    return uri


def cmd_run(args) -> int:
    seeds = _seeds(args)
    _select_device(args.device)
    _check_amp(args)
    from benchmark import distributed
    distributed.init(args.launcher, args.device)
    uri = _store_for_writing(args)
    from benchmark import console
    from benchmark.config import resolve_config
    from benchmark.protocol import Protocol
    work_root = Path(args.work_dir)
    ui_hint = _ui_hint(args)
    options = _data_options(args)
    collapsed = 0
    configs = [resolve_config(args.method, args.dataset, args.profile,
                              train_dataset=args.train_dataset, options=options, seed=seed)
               for seed in seeds]  # every seed's config first: a bad option fails before any run
    out = console.Console(console.mode_for(args.verbose))
    with console.use(out):
        for cfg in configs:
            if not distributed.rank():  # process 0 prints the run
                _header(cfg, work_root, uri, ui_hint, args.device)
            protocol = Protocol(cfg, work_root, uri, device=args.device, amp=args.amp,
                                launcher=args.launcher, fit_from=args.fit_from)
            result = _run_one(protocol, f'seed {cfg.seed}', args.fresh)
            if result is None:
                collapsed += 1
            elif result:  # empty on the processes of a distributed run other than 0
                _print_result(cfg, result)
    if distributed.rank():
        return 2 if collapsed else 0
    if out.verbose:  # quiet, the header said it: the result block stays the last thing printed
        print(f'\nruns are in {uri}: browse them with `{ui_hint}`, tabulate them with '
              f'`{ui_hint.replace("bench ui", "bench report")}`')
    return 2 if collapsed else 0


def _header(cfg, work_root: Path, uri: str, ui_hint: str, device: str) -> None:
    """What runs and where it is recorded, before anything else of the run is printed."""
    from benchmark.protocol import method_name, run_folder
    train = f' (anonymizer fitted on {cfg.fit_dataset["name"]})' if cfg.fit_dataset else ''
    print(f'bench run: {method_name(cfg)} on {cfg.dataset.name}{train}, {cfg.profile} profile, '
          f'seed {cfg.seed}, {device}')
    print(f'  recorded in {uri} (`{ui_hint}`)')
    print(f'  run folder  {run_folder(work_root, cfg)} (full log: <stage>/<date>/<date>.log)',
          flush=True)


def _run_one(protocol, label: str, fresh: bool = False) -> dict | None:
    """Run one protocol run and return its result; None if its fit collapsed (recorded as
    FAILED, said on stderr; the other seeds and variants still run)."""
    from benchmark.errors import FitCollapsed
    try:
        return protocol.run(fresh=fresh)
    except FitCollapsed as err:
        print(f'bench: {label}: {err}', file=sys.stderr)
        return None


def _ui_hint(args) -> str:
    """The `bench ui` command that opens the store this command uses."""
    if args.tracking_uri:
        return f'bench ui --tracking-uri {args.tracking_uri}'
    if os.environ.get('MLFLOW_TRACKING_URI'):
        return 'bench ui'  # the variable selects the same store
    return 'bench ui' if args.work_dir == 'work_dirs' else f'bench ui --work-dir {args.work_dir}'


def _sweep_name(args, axes) -> str:
    import re
    if args.name:
        return args.name
    return re.sub(r'[^A-Za-z0-9_.-]', '_', '_'.join([args.method, *(a.name for a in axes)]))[:64]


def cmd_sweep(args) -> int:
    import time
    from benchmark import sweep
    from benchmark.protocol import run_key
    if args.jobs < 1:
        raise SystemExit(f'bench: --jobs {args.jobs}: give 1 or more worker processes')
    seeds = _seeds(args)
    if args.device == 'cpu':
        _select_device(args.device)
    _check_amp(args)
    uri = _store_for_writing(args)
    work_root = Path(args.work_dir)
    axes = sweep.parse_grid(args.grid)
    name = _sweep_name(args, axes)
    manifest = sweep.Manifest(work_root, name)
    points = sweep.resolve(args.method, args.dataset, args.profile, args.train_dataset,
                           _data_options(args), axes, seeds)  # every point checked before any runs
    if args.device == 'cuda':
        _select_device(args.device)
    data = manifest.start(dict(method=args.method, dataset=args.dataset, profile=args.profile,
                               train_dataset=args.train_dataset,
                               grid={a.name: a.values for a in axes}, seeds=seeds))
    states = [sweep.point_state(p, work_root, data) for p in points]
    ui_hint = _ui_hint(args)
    variants = len(points) // len(seeds)
    per_job = sweep.threads_per_job(args.jobs)
    threads = f', {per_job} thread{"s" if per_job > 1 else ""} each' if args.device == 'cpu' else ''
    print(f'sweep {name}: {variants} variants x {len(seeds)} seeds = {len(points)} runs of '
          f'{args.method} on {args.dataset}, {args.profile} profile, {args.device}, '
          f'{args.jobs} job{"s" if args.jobs > 1 else ""}{threads}, engine {args.engine}')
    print(f'  recorded in {uri} (`{ui_hint}`; `{ui_hint.replace("bench ui", "bench report")} '
          f'--sweep {name}` tabulates it)')
    planned = len(sweep.planned_points(data['definition']))
    if planned > len(points):  # earlier parts of this sweep planned other values or seeds
        print(f'  with its earlier parts the sweep plans {planned} runs ('
              + '; '.join(f'{k}={",".join(map(str, v))}' for k, v in data['definition']['grid'].items())
              + f'; seeds {",".join(map(str, data["definition"]["seeds"]))}): '
              f'`bench report --sweep {name}` counts what is missing')
    counts = {s: states.count(s) for s in ('finished', 'interrupted', 'failed', 'new')}
    print(f'  {counts["finished"]} finished before (skipped), {counts["interrupted"]} interrupted '
          f'(resumed), {counts["failed"]} failed before (run again), {counts["new"]} new',
          flush=True)
    todo = [p for p, s in zip(points, states) if s != 'finished']
    finished = {run_key(p.cfg): sweep.finished_result(p, work_root)['run_id']
                for p, s in zip(points, states) if s == 'finished'}
    sweep.tie_finished(uri, list(finished.values()), name)  # e.g. by `bench run`, another sweep
    for key, run_id in finished.items():
        manifest.record(key, dict(outcome='finished', run_id=run_id))
    start = time.monotonic()
    specs = [sweep.point_spec(p, name, work_root, uri, args.device, args.amp) for p in todo]
    labels = {spec['run_key']: p.label for spec, p in zip(specs, todo)}
    failures = []
    ended = []

    def done(spec, outcome):
        manifest.record(spec['run_key'], {k: v for k, v in outcome.items() if k != 'metrics'})
        ended.append(spec)
        label = labels[spec['run_key']]
        if outcome['outcome'] == 'finished':
            print(f'[{len(ended)}/{len(specs)}] {label}  {_point_figures(outcome)}', flush=True)
        else:
            failures.append((label, outcome['error']))
            print(f'[{len(ended)}/{len(specs)}] {label}  failed  {outcome["error"]}', flush=True)

    logs = manifest.path.parent / name
    engine = sweep.build_engine(args.engine, args.jobs, args.device, logs, args.slurm_partition)
    engine.map(specs, done)
    from benchmark.console import duration
    print(f'sweep {name}: {len(points) - len(failures)}/{len(points)} runs finished, in '
          f'{duration(time.monotonic() - start)} (skipped {counts["finished"]}, resumed '
          f'{counts["interrupted"]}, ran again {counts["failed"]}, ran {counts["new"]}; worker '
          f'logs in {logs})')
    if failures:
        print(f'{len(failures)} failed (run the same command again to retry them):')
        for label, error in failures:
            print(f'  {label}: {error}')
    return 0 if not failures else 2


def _point_figures(result: dict) -> str:
    """A finished sweep run in one line: its headline metrics and time."""
    m = result['metrics']
    return (f'done    top-1 {100 * m["action_top1"]:.1f} %  cMAP {100 * m["privacy_cmap"]:.1f} %  '
            f'F1 {m["privacy_f1_macro"]:.3f}  ({m["time_total_s"]:.0f} s)')


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
    fit = (f'fit reused: {m["time_fit_reused_s"]:.0f} s in the in-domain run' if 'time_fit_reused_s' in m
           else f'fit {m.get("time_fit_s", 0):.0f}')
    print(f'  time              {m["time_total_s"]:.0f} s '
          f'({fit}, action {m["time_action_s"]:.0f}, privacy {m["time_privacy_s"]:.0f})')
    earlier = sum(v for k, v in m.items() if k.endswith('_resumed_s'))
    if earlier:
        print(f'                    of which {earlier:.0f} s in attempts before a resume (up to the '
              f'checkpoints they resumed from)')
    partial = [k.removeprefix('time_').removesuffix('_partial') for k in m if k.endswith('_partial')]
    if partial:
        print(f'                    {", ".join(partial)}: resumed from a checkpoint without its earlier '
              f'time; the figure counts the last attempt only')
    if m.get('time_setup_s', 0) >= 1:  # e.g. RAPrivacy's encoder trained on first use
        print(f'  setup             {m["time_setup_s"]:.0f} s before the stages (building the '
              f'anonymizer; cached for later runs)')
    print(f'  MLflow run        {result["run_id"]}   folder {result["run_dir"]}')


def cmd_ls(args) -> int:
    from benchmark.config import available_datasets, available_methods, available_profiles
    if args.what == 'methods':  # read from the files: no anonymizer built, no torch imported
        from benchmark.catalog import methods, unused_anonymizers
        print(f'{"method":16} {"anonymizer":22} {"Table 1 row":14} {"learns":7} needs')
        for m in methods():
            print(f'{m.name:16} {m.anonymizer:22} {m.table_name:14} '
                  f'{"yes" if m.learns else "no":7} {", ".join(m.needs) or "-"}')
        unused = unused_anonymizers()
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
    from benchmark.store import default_artifact_root
    uri = _store_for_reading(args)
    cmd = [sys.executable, '-m', 'mlflow', 'ui', '--backend-store-uri', uri,
           '--host', '127.0.0.1', '--port', str(args.port)]
    root = default_artifact_root(uri)
    if root:
        cmd += ['--default-artifact-root', root]
    print(f'MLflow UI over {uri} at http://127.0.0.1:{args.port} (Ctrl-C stops it)', flush=True)
    return serve(cmd)


def serve(cmd: list[str], grace_s: float = 10.0) -> int:
    """Run a server until it exits, or until SIGTERM or SIGINT stops it with all its processes.

    MLflow's server runs its workers in processes of their own: started in a process group of
    its own, the whole group gets the signal (SIGKILL for what is left after ``grace_s``), not
    only its first process. Returns 0 when a signal stopped it, else the server's status.
    """
    import signal
    import subprocess
    import time
    server = subprocess.Popen(cmd, start_new_session=True)
    stopping = []  # when the first signal came

    def stop(signum, _frame):
        if not stopping:
            stopping.append(time.monotonic())
            _signal_group(server, signal.SIGTERM)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    while True:
        try:
            code = server.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            if stopping and time.monotonic() - stopping[0] > grace_s:  # it ignores SIGTERM
                _signal_group(server, signal.SIGKILL)
    _signal_group(server, signal.SIGKILL)  # workers that outlived the server's first process
    return 0 if stopping else code


def _signal_group(server, signum: int) -> None:
    try:
        os.killpg(server.pid, signum)
    except ProcessLookupError:  # the whole group is gone
        pass


def cmd_study(args) -> int:
    from benchmark import study
    from benchmark.config import available_datasets, available_profiles
    _check_names(args.dataset, available_datasets(), 'dataset')
    _check_names(args.profile, available_profiles(), 'profile')
    db = Path(args.db) if args.db else Path(args.work_dir) / 'study.db'
    if args.action == 'results':
        if not db.is_file():
            raise study.StudyError(f'no study at {db}: start one with `bench study` (or pass --db)')
        store = study.StudyStore(db)
        rows, per_run = study.results(store)
        if not rows:
            raise study.StudyError(f'{db} holds no answers yet: share the `bench study` page first')
        print(study.format_results(rows))
        logged = study.log_results(_store_for_reading(args), per_run)
        print(f'logged readability_human_* on {logged} runs in MLflow; `bench report` shows them '
              f'in Table 1')
        return 0
    uri = _store_for_reading(args)
    store = study.StudyStore(db)
    filled = study.fill_pool(store, uri, args.dataset, args.profile)
    if not filled['clips']:
        raise study.StudyError(
            f'no run in {uri} has sample clips with action labels ({filled["unlabelled"]} runs saved '
            f'theirs without): `bench run` a method first')
    if filled['unlabelled']:
        print(f'left out {filled["unlabelled"]} runs whose samples carry no action labels (runs '
              f'from before the study page; run them again with --fresh to include them)')
    print(f'{filled["clips"]} clips in {db} ({filled["added"]} new); the study page is at '
          f'http://127.0.0.1:{args.port} (Ctrl-C stops it; answers are kept)', flush=True)
    study.create_app(store).run(host='127.0.0.1', port=args.port, threaded=True)
    return 0


def _check_names(names: list[str] | None, valid: list[str], kind: str) -> None:
    from benchmark.errors import UnknownNameError, closest
    for name in names or []:
        if name not in valid:
            raise UnknownNameError(closest(name, valid, kind))


def cmd_report(args) -> int:
    from benchmark.config import available_datasets, available_methods, available_profiles
    _check_names(args.dataset, available_datasets(), 'dataset')
    _check_names(args.profile, available_profiles(), 'profile')
    if args.reference and not args.sweep:
        from benchmark.errors import InputError
        raise InputError('--reference picks the point a sweep\'s others are compared with: '
                         'give --sweep NAME too (Table 1 compares with raw frames)')
    uri = None if args.from_csv else _store_for_reading(args)
    if args.from_csv and len(args.from_csv) > 1:
        args.from_csv = [str(_merge_exports(args.from_csv, Path(args.results)))]
    if args.sweep:
        from benchmark.report.sweep import build_sweep_report
        for path in build_sweep_report(uri, args.sweep, Path(args.out), Path(args.results),
                                       from_csv=Path(args.from_csv[0]) if args.from_csv else None,
                                       work_dir=Path(args.work_dir), reference=args.reference):
            print(path)
        return 0
    from benchmark.report import build_report
    written = build_report(tracking_uri=uri, out=Path(args.out), results_dir=Path(args.results),
                           datasets=args.dataset, profiles=args.profile,
                           from_csv=Path(args.from_csv[0]) if args.from_csv else None,
                           extra_methods=available_methods())
    for path in written:
        print(path)
    return 0


def _merge_exports(sources: list[str], results: Path) -> Path:
    """Several ``--from``: their exports merged into ``--results``, which the report then reads."""
    from benchmark.errors import InputError, first_line
    from benchmark.report import runs as runs_io
    from benchmark.report import _check_writable
    _check_writable(results, '--results')
    try:
        merged = runs_io.merge_exports([Path(s) for s in sources], results)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(first_line(err)) from None
    print(f'merged {len(sources)} exports into {merged}')
    return merged


def cmd_styles(args) -> int:
    from raprivacy.styles import STYLE_NAMES, STYLE_SETS, write_preview
    if args.action == 'ls':
        for name, kind in STYLE_NAMES.items():
            doc = (STYLE_SETS.get(kind).__doc__ or '').strip().splitlines()[0]
            print(f'{name:11} {kind:24} {doc}')
        print(f'{"folder":11} {"FolderStyles":24} your own images: --style-root PATH')
        return 0
    if not args.name:
        raise SystemExit('bench: styles preview NAME: give a style set (bench styles ls)')
    try:
        print(write_preview(args.name, args.out, num=args.num, size=args.size, root=args.root))
    except (ValueError, FileNotFoundError) as err:
        from benchmark.errors import InputError, first_line
        raise InputError(first_line(err)) from None
    return 0


def cmd_datasets(args) -> int:
    from benchmark.config import available_datasets
    _check_names([args.name], available_datasets(), 'dataset')
    if args.action == 'preview':
        if not args.name.startswith('vp_synth'):
            raise SystemExit(f'bench: preview draws the embedded datasets (vp_synth, vp_synth_b); '
                             f'use `bench datasets check {args.name}` for real data')
        from benchmark.datasets.vp_synth import write_preview
        domain = 'b' if args.name == 'vp_synth_b' else 'a'
        for path in write_preview(Path(args.out), domain=domain, size=args.size):
            print(path)
        return 0
    from benchmark.datasets.check import check_dataset
    if not args.data_root:
        raise SystemExit(f'bench: datasets check {args.name} needs --data-root PATH '
                         f'(see README, "Using the real datasets")')
    report = check_dataset(args.name, args.data_root, split_id=args.split_id,
                           annotations=args.annotations,
                           decode='sample' if args.quick else True)
    print(report.format())
    return 0 if report.ok else 1


def cmd_anonymize(args) -> int:
    from benchmark.anonymize import check_paths
    if bool(args.run) == bool(args.checkpoint):
        raise SystemExit('bench: give exactly one of --run RUN_ID or --checkpoint PATH')
    uri = _store_for_reading(args) if args.run else None
    _select_device(args.device)
    from benchmark.amp import flush_denormals
    flush_denormals(args.device)  # as the runs anonymize (benchmark/amp.py)
    import time
    from raprivacy import anonymize_video, load_anonymizer
    from benchmark import console
    from benchmark.errors import InputError, first_line
    start = time.monotonic()
    try:
        check_paths(args.input, args.output)  # before anything is loaded or written
        with console.use(console.Console(console.mode_for(args.verbose))):
            anonymizer = load_anonymizer(checkpoint=args.checkpoint, run_id=args.run,
                                         tracking_uri=uri, device=args.device)
            out = anonymize_video(anonymizer, args.input, args.output, device=args.device)
    except ValueError as err:  # input the tool cannot use, e.g. a video PyAV cannot decode
        raise InputError(first_line(err)) from None
    seconds = time.monotonic() - start
    at = (f', worked at {out["size"]} (its fitted size) and resized back' if out['size'] else '')
    print(f'anonymized {out["frames"]} frames ({out["frame_size"]}, {out["fps"]:g} fps) in '
          f'{seconds:.1f} s{at}: {out["output"]}')
    return 0


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
    p.add_argument('--train-data-root', help='root of the --train-dataset, when it is a real one')
    p.add_argument('--style-root', help='folder of style images (e.g. SBU Kinect depth frames)')


def _verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument('-v', '--verbose', action='store_true',
                   help="MMEngine's whole log on the console (environment, config, every logged "
                        "iteration) instead of one progress bar per stage; it is always in the run "
                        "folder and the MLflow run")


def _many_seeds_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument('--many-seeds', action='store_true',
                   help=f'allow more than {MAX_SEEDS} seeds in --seeds (each one a full run)')


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
    _many_seeds_arg(p)
    _store_args(p)
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--amp', action='store_true',
                   help='bf16 autocast (CUDA, or a CPU with AVX512-BF16/AMX); recorded as bench.precision')
    p.add_argument('--launcher', choices=('none', 'pytorch'), default='none',
                   help='pytorch: one of several processes started by torchrun (benchmark/distributed.py)')
    p.add_argument('--fresh', action='store_true',
                   help='discard the run folder of this (method, dataset, profile, seed) first')
    p.add_argument('--fit-from', metavar='WORK_DIR',
                   help='transfer runs: take the anonymizer the in-domain run on --train-dataset (same '
                        'method, profile, config, seed) fitted in this work dir; default: --work-dir when '
                        "it holds one, else fit; 'none': always fit")
    _verbose_arg(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser('sweep', help='run a method over a grid of config values (ablations)',
                       epilog=EXAMPLES['sweep'], formatter_class=fmt)
    _common_run_args(p)
    p.add_argument('--grid', action='append', required=True, metavar='KEY=V1,V2',
                   help='a config key (or a short form: style) and its values; repeat for a '
                        'product grid')
    p.add_argument('--seeds', help='comma-separated seeds, one run each')
    p.add_argument('--name', help='the sweep\'s name, its MLflow tag bench.sweep and the '
                                  'report\'s (default: <method>_<grid keys>)')
    p.add_argument('--jobs', type=int, default=1,
                   help='points run at once, each in its own process (CPU: the cores divided '
                        'among them; CUDA: one GPU each). Default: 1')
    p.add_argument('--engine', choices=('local', 'submitit'), default='local',
                   help='local: worker processes started here (default); submitit: submitit\'s '
                        'local executor, or Slurm with --slurm-partition')
    p.add_argument('--slurm-partition', help='--engine submitit: submit to this Slurm partition')
    _many_seeds_arg(p)
    _store_args(p)
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    p.add_argument('--amp', action='store_true',
                   help='bf16 autocast (CUDA, or a CPU with AVX512-BF16/AMX); recorded as bench.precision')
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser('ls', help='list methods, datasets or profiles', epilog=EXAMPLES['ls'],
                       formatter_class=fmt)
    p.add_argument('what', choices=('methods', 'datasets', 'profiles'))
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser('config', help='print the resolved config of a run',
                       epilog=EXAMPLES['config'], formatter_class=fmt)
    _common_run_args(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser('report', help='Table 1, transfer table and plots from the runs',
                       epilog=EXAMPLES['report'], formatter_class=fmt)
    _store_args(p)
    p.add_argument('--dataset', action='append', help='only this dataset (repeatable)')
    p.add_argument('--profile', action='append', help='only this profile (repeatable)')
    p.add_argument('--out', default='reports', help='where tables and plots go (default: reports)')
    p.add_argument('--results', default='results',
                   help='where runs.csv is exported (default: results)')
    p.add_argument('--from', dest='from_csv', metavar='RUNS_CSV', action='append',
                   help='rebuild from an exported runs.csv instead of the store; repeated, the '
                        'exports (of several stores or machines) are merged into --results first')
    p.add_argument('--sweep', metavar='NAME',
                   help='the ablation table and figures of this sweep (bench sweep --name) only')
    p.add_argument('--reference', metavar='POINT',
                   help='--sweep: the point every other is compared with, e.g. style=rgb (default: '
                        'the first value given on each grid axis)')
    p.set_defaults(func=cmd_report)

    p = sub.add_parser('datasets', help='preview the embedded data or check a real dataset',
                       epilog=EXAMPLES['datasets'], formatter_class=fmt)
    p.add_argument('action', choices=('preview', 'check'))
    p.add_argument('name', help='dataset name (bench ls datasets)')
    p.add_argument('--out', default='reports', help='preview: output folder (default: reports)')
    p.add_argument('--size', type=int, default=112, help='preview: frame size (default: 112)')
    p.add_argument('--data-root', help='check: root of the dataset')
    p.add_argument('--split-id', type=int, default=1, help='check: official split 1, 2 or 3')
    p.add_argument('--annotations', help='check: privacy label pickle (default: under the root)')
    p.add_argument('--quick', action='store_true',
                   help='check: decode a sample of videos instead of all of them')
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser('styles', help="list RAPrivacy's style sets or preview one",
                       epilog=EXAMPLES['styles'], formatter_class=fmt)
    p.add_argument('action', choices=('ls', 'preview'))
    p.add_argument('name', nargs='?', help='preview: the style set (bench styles ls)')
    p.add_argument('--out', default='reports', help='preview: output folder (default: reports)')
    p.add_argument('--num', type=int, default=16, help='preview: images shown (default: 16)')
    p.add_argument('--size', type=int, default=112, help='preview: image side (default: 112)')
    p.add_argument('--root', help='preview folder: the folder of images')
    p.set_defaults(func=cmd_styles)

    p = sub.add_parser('anonymize', help='anonymize a video with a fitted anonymizer',
                       epilog=EXAMPLES['anonymize'], formatter_class=fmt)
    p.add_argument('input', help='video file or folder of frames')
    p.add_argument('output', help='video file or folder for the frames')
    p.add_argument('--run', help='MLflow run id of a bench run')
    p.add_argument('--checkpoint', help='anonymizer.pth of a bench run (anonymizer.json beside it)')
    _store_args(p)
    p.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    _verbose_arg(p)
    p.set_defaults(func=cmd_anonymize)

    p = sub.add_parser('study', help='the human readability study page, and its results',
                       epilog=EXAMPLES['study'], formatter_class=fmt)
    p.add_argument('action', nargs='?', choices=('serve', 'results'), default='serve',
                   help='serve the page (default) or tabulate and log the answers')
    _store_args(p)
    p.add_argument('--db', help='the study\'s SQLite file (default: <work-dir>/study.db)')
    p.add_argument('--port', type=int, default=5050)
    p.add_argument('--dataset', action='append', help='only clips of this dataset (repeatable)')
    p.add_argument('--profile', action='append', help='only clips of this profile (repeatable)')
    p.set_defaults(func=cmd_study)

    p = sub.add_parser('ui', help='the MLflow UI over the store, on 127.0.0.1',
                       epilog=EXAMPLES['ui'], formatter_class=fmt)
    _store_args(p)
    p.add_argument('--port', type=int, default=5000)
    p.set_defaults(func=cmd_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from benchmark.errors import BenchError, first_line
    try:
        return args.func(args)
    except BenchError as err:  # the suite's own errors: the message is the whole answer
        print(f'bench: {first_line(err)}', file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder the system refused: name it
        named = f'{err.filename}: {err.strerror}' if err.filename and err.strerror else first_line(err)
        print(f'bench: {named}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('\nbench: interrupted; run the same command again to resume', file=sys.stderr)
        return 130


if __name__ == '__main__':
    sys.exit(main())

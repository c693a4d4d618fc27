"""The GPU check of issue 21: the paper profile's training steps, each GPU-path switch on and
off, and the protocol end to end, in one process that fits a short lease.

    bash scripts/gpu_check.sh                                  # on the GPU machine (see there)
    python scripts/gpu_check.py --out /tmp/gpu --dry           # the same on the CPU, tiny sizes

Measured (each a row of ``steps`` in ``$OUT/gpu_check.json``, written again after every row so a
run cut short keeps what it measured):

- ``raprivacy``: one training iteration of ``RAPrivacyModel`` past its warm-up (phase 1, Eq. 8;
  phase 2, Eq. 9; the action and privacy branches' steps) at batch 32, 16x112x112 clips, the
  paper's full-width VGG-19 encoder (random weights: timing does not depend on them), R3D-50
  action branch and per-frame ResNet-50 privacy branch. Settings: ``plain`` (fp32, AdaAttN
  through softmax and matmul, the style encoded per frame, frames one time step at a time,
  NCHW), then the switches added one by one (``bf16``, ``style_per_clip``, ``frame_batch``,
  ``channels_last``, ``sdpa``), ``fast`` (all of them), ``fast`` less each one, and
  ``fast+compile``.
- ``vit_s``: one training step of the paper's ViT-S target model (mmaction2 Recognizer3D,
  ``benchmark/configs/_base_/models/vit_s.py``) at batch 32: fp32, bf16, bf16 + compile.

Each row: median milliseconds per step, clips per second, peak GPU memory, the losses of its
first step and, for RAPrivacy, the largest difference of its anonymized clips (eval mode, 2
clips) from the plain fp32 path's (the GPU's own check of the CPU equivalence tests).

End to end (``e2e``): ``bench run`` on vp_synth, paper profile with a shortened schedule
(``E2E_OPTIONS``), for raw and for RAPrivacy with every switch and ``--amp``: wall seconds,
the run's metrics, or the one-line error. It needs MLflow; where MLflow does not import, the
rows say so and the check exits 3 after writing its figures.

Rows are run in priority order (the figures the issue asks for first; compile late, since its
warm-up takes minutes) while ``--budget-s``
lasts; a row that would start after it is recorded as skipped. Anything the check needs and
does not find stops it in one line (exit 2) before anything is measured.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUIRED = ('torch', 'numpy', 'mmengine', 'mmcv', 'mmaction')
PLAIN = dict(attention='matmul', style_per_clip=False, frame_batch=1, channels_last=False)
FAST = dict(attention='sdpa', style_per_clip=True, frame_batch=None, channels_last=True)
# switch name -> (anonymizer settings, model settings, bf16) it sets on top of another setting
SWITCHES = {
    'bf16': ({}, {}, True),
    'style_per_clip': (dict(style_per_clip=True), {}, False),
    'frame_batch': (dict(frame_batch=None), {}, False),
    'channels_last': (dict(channels_last=True), dict(channels_last_3d=True), False),
    'sdpa': (dict(attention='sdpa'), {}, False),
}
E2E_OPTIONS = ['target_schedule.max_epochs=1', 'target_schedule.warmup_epochs=0',
               'dataset.source.train_per_class=4', 'dataset.source.test_per_class=2']
E2E_RAPRIVACY = ['anonymizer.encoder.weights=random', 'fit.max_iters=30', 'fit.checkpoint_interval=1000',
                 'fit.model.warmup_iters.action_branch=10', 'fit.model.warmup_iters.privacy_branch=10',
                 'fit.model.ramp_iters.privacy=10', 'fit.model.guard=None',
                 'fit.model.channels_last_3d=True', 'anonymizer.channels_last=True',
                 'anonymizer.attention=sdpa', 'anonymizer.style_per_clip=True']


class Sizes:
    """The paper's sizes, or tiny ones for ``--dry``."""

    def __init__(self, dry: bool) -> None:
        self.dry = dry
        self.batch, self.clip_len, self.size = (2, 4, 32) if dry else (32, 16, 112)
        self.width = 0.0625 if dry else 1.0  # VGG-19 channel multiplier
        self.depth, self.base = (18, 4) if dry else (50, 64)
        self.vit = (dict(embed_dims=48, depth=2, num_heads=2, img_size=32, num_frames=4) if dry
                    else dict(embed_dims=384, depth=12, num_heads=6, img_size=112, num_frames=16))
        self.warmup, self.iters = (1, 1) if dry else (2, 5)
        self.profile = 'smoke' if dry else 'paper'


def fail(message: str) -> None:
    print(f'gpu_check: {message}', file=sys.stderr)
    raise SystemExit(2)


def environment(device: str) -> dict:
    """Versions and the device; stops in one line on a missing package or device."""
    missing = [name for name in REQUIRED if importlib.util.find_spec(name) is None]
    if missing:
        fail(f'{", ".join(missing)} not importable: carry them (bash scripts/gpu_check.sh pack, '
             f'then carry .gpu_site; or ../shared/device/fetch-wheels.sh and carry .whl)')
    import torch
    if device == 'cuda' and not torch.cuda.is_available():
        fail('no CUDA device visible (pass --dry for the CPU check)')
    import mmaction
    import mmcv
    import mmengine
    env = dict(device=device, torch=torch.__version__, cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version() if device == 'cuda' else None,
               mmengine=mmengine.__version__, mmcv=mmcv.__version__, mmaction=mmaction.__version__,
               python=platform.python_version(), host=platform.node(), cpus=os.cpu_count(),
               date=time.strftime('%Y-%m-%dT%H:%M:%S%z'), commit=_git('rev-parse', 'HEAD'),
               dirty=bool(_git('status', '--porcelain', '--untracked-files=no')),
               mlflow=importlib.util.find_spec('mlflow') is not None)
    if device == 'cuda':
        props = torch.cuda.get_device_properties(0)
        env.update(device_name=props.name, memory_gib=round(props.total_memory / 2**30, 1))
    else:
        env['device_name'] = f'cpu ({os.cpu_count()} cores)'
    return env


def _git(*args: str) -> str:
    try:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ''


def sync(device: str) -> None:
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def autocast(device: str, bf16: bool):
    import torch
    return torch.autocast(device, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def timed(step, device: str, sizes: Sizes) -> tuple[dict, dict]:
    """Median wall time of ``step()`` after warm-up, peak memory, and the first step's output."""
    import torch
    if device == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    first, walls = None, []
    start = time.perf_counter()
    for i in range(sizes.warmup + sizes.iters):
        sync(device)
        t0 = time.perf_counter()
        out = step()
        sync(device)
        walls.append(time.perf_counter() - t0)
        if first is None:
            first = out
    median = statistics.median(walls[sizes.warmup:])
    row = dict(ms=round(1000 * median, 2), clips_per_s=round(sizes.batch / median, 1),
               first_step_ms=round(1000 * walls[0], 1), seconds=round(time.perf_counter() - start, 1))
    if device == 'cuda':
        row['peak_gib'] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return row, first


def time_train_step(row: dict, net, optim_wrapper, data: dict, device: str, sizes: Sizes, bf16: bool) -> dict:
    """Time ``net.train_step`` into ``row`` (``timed``); the first step's losses."""
    def step():
        with autocast(device, bf16):
            log = net.train_step(data, optim_wrapper)
        return {k: round(float(v), 5) for k, v in log.items() if k.startswith('loss')}
    timing, losses = timed(step, device, sizes)
    row.update(timing, first_losses=losses)
    return losses


# ---------------------------------------------------------------------------------- RAPrivacy
def raprivacy_model(sizes: Sizes, device: str, anonymizer: dict, model: dict, state=None):
    import numpy as np
    import torch
    import raprivacy  # noqa: F401  registers the model
    from benchmark.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
    torch.manual_seed(0)
    styles = np.random.default_rng(0).integers(0, 256, (16, sizes.size, sizes.size, 3), dtype=np.uint8)
    backbone = dict(type='ResNet3d', depth=sizes.depth, base_channels=sizes.base, pretrained=None,
                    pretrained2d=False)
    cfg = dict(type='RAPrivacyModel', num_classes=10, dropout=0.0, views=dict(min_scale=1.0, flip=False),
               anonymizer=dict(type='RAPrivacyAnonymizer', style_set=dict(type='ImageStyles', images=styles),
                               encoder=dict(type='vgg19', weights='random', width=sizes.width), **anonymizer),
               action_backbone=backbone,
               privacy_backbone=dict(backbone, inflate=(0, 0, 0, 0), conv1_kernel=(1, 7, 7), with_pool2=False),
               data_preprocessor=dict(type='ClipPreprocessor', normalize=False, keep_aux=True), **model)
    net = MODELS.build(cfg)
    if state is not None:
        net.load_state_dict(state)
    net = net.to(device)
    one = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.05))
    wrappers = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
        type='MultiOptimWrapperConstructor',
        optim_wrapper_cfg=dict(anonymizer=one, action_branch=one, privacy_branch=one)))(net)
    return net, wrappers


def clip_batch(sizes: Sizes, n: int, seed: int) -> dict:
    import torch
    from mmaction.structures import ActionDataSample
    from mmengine.structures import LabelData
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (1, 3, sizes.clip_len, sizes.size, sizes.size), generator=gen,
                                    dtype=torch.uint8))
        sample = ActionDataSample()
        sample.gt_labels = LabelData(item=torch.tensor([i % 10]))
        sample.set_metainfo(dict(video_id=f'v{i}'))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def raprivacy_settings() -> list[tuple[str, dict, dict, bool]]:
    """(name, anonymizer settings, model settings, bf16) in priority order."""
    def with_switches(base: tuple[dict, dict, bool], names) -> tuple[dict, dict, bool]:
        anonymizer, model, bf16 = dict(base[0]), dict(base[1]), base[2]
        for name in names:
            a, m, b = SWITCHES[name]
            anonymizer.update(a)
            model.update(m)
            bf16 = bf16 or b
        return anonymizer, model, bf16

    plain = (dict(PLAIN), {}, False)
    fast = with_switches(plain, SWITCHES)
    rows = [('fast', *fast), ('fast+compile', fast[0], dict(fast[1], compile=True), True), ('plain', *plain)]
    for i in range(1, len(SWITCHES)):
        names = list(SWITCHES)[:i]
        rows.append(('plain+' + '+'.join(names), *with_switches(plain, names)))
    for name in SWITCHES:
        others = [n for n in SWITCHES if n != name]
        rows.append((f'fast-{name}', *with_switches(plain, others)))
    return rows


def raprivacy_rows(sizes: Sizes, device: str) -> list[tuple[dict, object]]:
    import torch
    shared: dict = {}

    def reference() -> dict:
        """The plain path's weights and its anonymized probe clips, once."""
        if not shared:
            net, _ = raprivacy_model(sizes, device, PLAIN, {})
            probe = torch.rand(2, 3, sizes.clip_len, sizes.size, sizes.size,
                               generator=torch.Generator().manual_seed(1))
            with torch.no_grad():
                shared.update(out=net.anonymizer.eval()(probe.to(device)).float(), probe=probe,
                              state={k: v.detach().cpu().clone() if torch.is_tensor(v) else v
                                     for k, v in net.state_dict().items()},
                              data=clip_batch(sizes, sizes.batch, 0))
        return shared

    rows = []
    for name, anonymizer, model, bf16 in raprivacy_settings():
        row = dict(model='raprivacy', setting=name, anonymizer=anonymizer, model_settings=model, bf16=bf16,
                   batch=sizes.batch, clip_len=sizes.clip_len, size=sizes.size)
        if 'compile' in model and sizes.dry:  # tens of minutes of tracing on a small CPU
            rows.append((row, lambda: _skip_in_dry_mode()))
            continue
        rows.append((row, lambda row=row, a=anonymizer, m=model, b=bf16: _raprivacy_row(
            row, sizes, device, a, m, b, reference())))
    return rows


class SkippedInDryMode(Exception):
    """A row the CPU check does not run (compile: tests/raprivacy/test_fast_path.py covers it)."""


def _skip_in_dry_mode() -> None:
    raise SkippedInDryMode('compile is not timed in --dry mode')


def _raprivacy_row(row, sizes, device, anonymizer, model, bf16, ref: dict) -> None:
    import torch
    net, wrappers = raprivacy_model(sizes, device, anonymizer, model, ref['state'])
    data = ref['data']
    with torch.no_grad(), autocast(device, bf16):
        out = net.anonymizer.eval()(ref['probe'].to(device)).float()
    row['max_abs_diff_vs_plain'] = float((out - ref['out']).abs().max())
    net.train()
    losses = time_train_step(row, net, wrappers, data, device, sizes, bf16)
    if 'loss_total' not in losses:
        raise RuntimeError('the step did not run phase 2 (Eq. 9)')


# ---------------------------------------------------------------------------------- ViT-S
def vit_rows(sizes: Sizes, device: str) -> list[tuple[dict, object]]:
    rows = []
    for name, bf16, compiled in (('bf16', True, False), ('fp32', False, False), ('bf16+compile', True, True)):
        row = dict(model='vit_s', setting=name, bf16=bf16, batch=sizes.batch, clip_len=sizes.clip_len,
                   size=sizes.size, **({'vit': sizes.vit} if sizes.dry else {}))
        rows.append((row, lambda row=row, b=bf16, c=compiled: _vit_row(row, sizes, device, b, c)))
    return rows


def _vit_row(row, sizes, device, bf16, compiled) -> None:
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from benchmark.amp import float_head_outputs
    from benchmark.registry import MODELS, import_all
    import_all()
    init_default_scope('benchmark')  # the suite's data preprocessor, inside mmaction2's model
    cfg = Config.fromfile(str(ROOT / 'benchmark/configs/_base_/models/vit_s.py'))
    model_cfg = cfg.action_model.to_dict()
    model_cfg['backbone'].update(sizes.vit)
    model_cfg['cls_head'].update(num_classes=10, in_channels=sizes.vit['embed_dims'])
    model_cfg['data_preprocessor'] = dict(type='ClipPreprocessor')
    torch.manual_seed(0)
    net = MODELS.build(model_cfg).to(device).train()
    float_head_outputs(net)  # as the protocol does under --amp (benchmark/amp.py)
    if compiled:
        if sizes.dry:
            _skip_in_dry_mode()
        net.compile()
    wrapper = OptimWrapper(torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.05))
    time_train_step(row, net, wrapper, clip_batch(sizes, sizes.batch, 0), device, sizes, bf16)


# ---------------------------------------------------------------------------------- end to end
def e2e_rows(sizes: Sizes, device: str, work: Path) -> list[tuple[dict, object]]:
    rows = []
    for method in ('raw', 'raprivacy'):
        row = dict(model='e2e', method=method, profile=sizes.profile)
        rows.append((row, lambda row=row, m=method: _e2e_row(row, sizes, device, m, work)))
    return rows


def _e2e_row(row, sizes, device, method, work) -> None:
    if importlib.util.find_spec('mlflow') is None:
        raise RuntimeError('mlflow is not importable here: the protocol records its runs in MLflow '
                           '(carry its wheels: ../shared/device/fetch-wheels.sh mlflow==3.17.2)')
    options = list(E2E_OPTIONS) if not sizes.dry else []
    if method == 'raprivacy' and not sizes.dry:
        options += E2E_RAPRIVACY
    command = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', method, '--dataset', 'vp_synth',
               '--profile', sizes.profile, '--device', device, '--work-dir', str(work), '--fresh']
    if device == 'cuda':
        command.append('--amp')
    if options:
        command += ['--cfg-options', *options]
    row['command'] = ' '.join(command[1:])
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                          timeout=max(30.0, row.pop('_deadline') - time.time()))
    row['wall_s'] = round(time.perf_counter() - start, 1)
    if done.returncode:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ['']
        raise RuntimeError(f'exit {done.returncode}: {tail[0][:300]}')
    result = sorted(work.glob(f'vp_synth/{method}/{sizes.profile}/seed*/result.json'))[-1]
    metrics = json.loads(result.read_text())['metrics']
    row['metrics'] = {k: round(v, 4) for k, v in metrics.items()
                      if k.startswith(('action_top1', 'privacy_cmap', 'privacy_f1', 'time_')) and '_ci_' not in k}


# ---------------------------------------------------------------------------------- driver
def run_row(row: dict, record: dict, save, budget_end: float, body) -> bool:
    """Run one row unless the budget is spent; record its figures or its one-line error."""
    record['steps'].append(row)
    if time.time() > budget_end:
        row['status'] = 'skipped: budget spent'
        save()
        return False
    row['_deadline'] = budget_end + 60
    label = ' '.join(str(row.get(k)) for k in ('model', 'setting', 'method') if row.get(k))
    print(f'gpu_check: {label} ...', flush=True)
    try:
        body()
        row['status'] = 'ok'
    except SkippedInDryMode as err:
        row['status'] = f'skipped: {err}'
    except Exception as err:  # noqa: BLE001  a row that fails is a figure too; the others still run
        message = str(err).strip().splitlines()
        row['status'] = f'failed: {type(err).__name__}: {message[0][:300] if message else ""}'
        row['traceback'] = traceback.format_exc(limit=-3)[-1500:]
    finally:
        row.pop('_deadline', None)
        with contextlib.suppress(Exception):
            import torch
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    print(f'gpu_check: {label}: {row["status"]} {row.get("clips_per_s", row.get("wall_s", ""))}', flush=True)
    save()
    return row['status'] == 'ok'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default=os.environ.get('OUT'), help='folder for gpu_check.json (default: $OUT)')
    parser.add_argument('--dry', action='store_true', help='CPU, tiny sizes, one timed step per row')
    parser.add_argument('--budget-s', type=float, default=420.0,
                        help='start no row after this many seconds (default: 420)')
    parser.add_argument('--parts', default='vit,raprivacy,e2e', help='comma-separated: vit, raprivacy, e2e')
    parser.add_argument('--work', default=None, help='run folders of the end-to-end runs (default: a new temp dir)')
    args = parser.parse_args(argv)
    if not args.out:
        fail('no --out and no $OUT: name the folder for gpu_check.json')
    device = 'cpu' if args.dry else 'cuda'
    parts = [p for p in args.parts.split(',') if p]
    unknown = set(parts) - {'vit', 'raprivacy', 'e2e'}
    if unknown:
        fail(f'--parts {",".join(sorted(unknown))}: the parts are vit, raprivacy and e2e')
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = dict(check='issue 21 GPU path', dry=args.dry, environment=environment(device), steps=[])
    if args.dry:
        import torch
        torch.set_num_threads(max(1, int(os.environ.get('OMP_NUM_THREADS', '1'))))
    else:
        import torch
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are fp32
    sizes = Sizes(args.dry)
    path = out / 'gpu_check.json'

    def save() -> None:
        record['elapsed_s'] = round(time.time() - start, 1)
        path.write_text(json.dumps(record, indent=2, default=str) + '\n')

    save()
    budget_end = start + args.budget_s
    work = Path(args.work or tempfile.mkdtemp(prefix='gpu_check_'))  # run folders stay out of $OUT
    rows = dict(vit=vit_rows(sizes, device) if 'vit' in parts else [],
                raprivacy=raprivacy_rows(sizes, device) if 'raprivacy' in parts else [],
                e2e=e2e_rows(sizes, device, work) if 'e2e' in parts else [])
    # the figures first (ViT-S bf16, RAPrivacy with every switch), the end-to-end runs,
    # RAPrivacy plain, then with compile (minutes of warm-up), then the rows that show what
    # each switch gives
    rap = rows['raprivacy']
    order = rows['vit'][:1] + rap[:1] + rows['e2e'] + rap[2:3] + rap[1:2] + rap[3:] + rows['vit'][1:]
    for row, body in order:
        run_row(row, record, save, budget_end, body)
    save()
    bad = [r for r in record['steps'] if r['status'] != 'ok' and not r['status'].startswith('skipped: compile')]
    print(f'gpu_check: wrote {path} ({len(record["steps"]) - len(bad)} of {len(record["steps"])} rows ok)')
    return 3 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

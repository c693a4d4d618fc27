"""Integrity drills (issue #15): kill -9 and resume, parallel first runs, crafted files.

Every drill runs `bench run` as a user does (a subprocess of this checkout, smoke profile,
vp_synth) in its own folder under --work-root, and checks the MLflow store and the run
folders afterwards:

- ``kill``: a lengthened smoke run of raw frames (4 epochs, 16 training videos per class) is
  killed with SIGKILL at random points (a random stage among action and privacy, after a random
  epoch's checkpoint, plus a random part of an epoch), then run again. Each must end as one
  complete MLflow run whose result metrics are bit-identical to an uninterrupted run with the
  same seed (every metric of result.json but the wall times ``time_*``).
- ``fit``: the same for RAPrivacy, killed inside its iteration-based fit (12 iterations,
  a checkpoint every 2).
- ``parallel``: 4 methods started at once on an empty work dir, ``--tries`` times: every run
  must finish, with exactly one complete parent run and three finished stages per method.
- ``crafted``: a checkpoint whose unpickling would run ``touch`` is put in an interrupted run's
  folder, and a label pickle that would do the same is given to a real-data run: both must
  be refused in one line naming the file, and the marker file must not exist.

    python scripts/drill_integrity.py                     # all drills, results/integrity_drill.json
    python scripts/drill_integrity.py --drills kill --kills 3 --out /tmp/drill.json

Runs use the environment's thread settings (OMP_NUM_THREADS): a run is deterministic for a
given thread count only, so reference and resumed runs must share it.
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import random
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KILL_OPTIONS = ['target_schedule.max_epochs=4', 'dataset.source.train_per_class=16']
FIT_ITERS = 12
FIT_OPTIONS = [f'fit.max_iters={FIT_ITERS}', 'fit.checkpoint_interval=2',
               "fit.param_scheduler=[{'type': 'CosineAnnealingLR', 'by_epoch': False, 'begin': 0, "
               f"'end': {FIT_ITERS}, 'T_max': {FIT_ITERS}, 'eta_min': 0.0}}]"]
PARALLEL_METHODS = ('raw', 'depth', 'downsample_2x', 'blackening')
STAGES = ('fit', 'action', 'privacy')


def bench_command(method: str, work: Path, seed: int = 0, options=(), extra=()) -> list[str]:
    cmd = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', method, '--profile', 'smoke',
           '--seed', str(seed), '--work-dir', str(work), *extra]
    return cmd + (['--cfg-options', *options] if options else [])


CODE = REPO  # the checkout whose `bench` the drills run (--code)


def environment() -> dict:
    env = dict(os.environ, PYTHONPATH=str(CODE))
    env.pop('MLFLOW_TRACKING_URI', None)  # every drill uses its work dir's own store
    return env


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, stdout=log.open('w'), stderr=subprocess.STDOUT, env=environment(),
                            cwd=CODE)


def run(cmd: list[str], log: Path, timeout: float = 3600) -> int:
    proc = start(cmd, log)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors='replace').splitlines() if line.strip()]
    return lines[-1] if lines else ''


def run_dir(work: Path, method: str, seed: int = 0) -> Path:
    return work / 'vp_synth' / method / 'smoke' / f'seed{seed}'


def result_metrics(folder: Path) -> dict[str, float]:
    """The run's metrics without its wall times, which no two runs share."""
    data = json.loads((folder / 'result.json').read_text())
    return {k: v for k, v in data['metrics'].items() if not k.startswith('time_')}


def bits(value: float) -> bytes:
    return struct.pack('<d', float(value))


def differing(a: dict, b: dict) -> list[str]:
    """Metric names whose values are not bit-for-bit equal (NaN equals NaN of the same bits)."""
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or bits(a[k]) != bits(b[k]))


def store_summary(work: Path) -> dict:
    """Parent and stage runs in the work dir's store, per method: status and completeness."""
    from mlflow.tracking import MlflowClient
    client = MlflowClient(f'sqlite:///{(work / "mlflow.db").resolve()}')
    exp = client.get_experiment_by_name('vp_synth')
    if exp is None:
        return {}
    runs = client.search_runs([exp.experiment_id], '', max_results=1000)
    out: dict = {}
    for r in runs:
        tags = r.data.tags
        method = tags.get('bench.method', '?')
        entry = out.setdefault(method, {'parents': [], 'stages': []})
        if tags.get('bench.kind') == 'parent':
            entry['parents'].append(dict(status=r.info.status, complete=tags.get('bench.complete')))
        else:
            entry['stages'].append(dict(stage=tags.get('bench.stage'), status=r.info.status))
    return out


def one_complete_run(summary: dict, method: str) -> bool:
    entry = summary.get(method, {})
    parents, stages = entry.get('parents', []), entry.get('stages', [])
    return (len(parents) == 1 and parents[0] == dict(status='FINISHED', complete='true')
            and sorted(s['stage'] for s in stages) == sorted(STAGES)
            and all(s['status'] == 'FINISHED' for s in stages))


def checkpoint_complete(path: Path) -> bool:
    from benchmark.checkpoints import complete
    return path.is_file() and complete(path)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> bool:
    deadline = time.time() + timeout
    while not checkpoint_complete(path):
        if proc.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.02)
    return True


def landed(folder: Path) -> dict:
    """Where a kill left the run folder: stages done and the newest checkpoint of each other.

    A checkpoint the kill cut short is deleted by the rerun; MMEngine deletes the previous one
    before writing the next, so that stage then starts over.
    """
    from benchmark.checkpoints import complete, training_checkpoints
    out = {}
    for stage in STAGES:
        d = folder / stage
        if (d / 'result.json').exists():
            out[stage] = 'done'
        elif d.is_dir():
            ckpts = training_checkpoints(d)
            out[stage] = (f'{ckpts[0].name}{"" if complete(ckpts[0]) else " (half-written)"}'
                          if ckpts else 'started, no checkpoint')
    return out


def resumed_from(log: Path) -> list[str]:
    # MMEngine's line on a verbose console (and on checkouts before issue #23); the bar's otherwise
    return [line.split('mmengine - INFO - ')[-1] for line in log.read_text(errors='replace').splitlines()
            if 'resumed epoch:' in line or 'resumed from its checkpoint at' in line]


def reference(method: str, work: Path, options: list[str], label: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    start_time = time.time()
    code = run(bench_command(method, work, options=options), work / f'{label}.log')
    seconds = time.time() - start_time
    if code != 0:
        raise SystemExit(f'drill: the uninterrupted {method} run failed ({last_line(work / f"{label}.log")})')
    stage_s = json.loads((run_dir(work, method) / 'result.json').read_text())['metrics']
    return dict(metrics=result_metrics(run_dir(work, method)), seconds=round(seconds, 1),
                stage_seconds={s: round(stage_s.get(f'time_{s}_s', 0.0), 2) for s in STAGES})


def kill_drill(root: Path, kills: int, rng: random.Random, method: str, options: list[str],
               targets, step_seconds, label: str) -> dict:
    """``targets``: (stage, checkpoint name) pairs to kill after, drawn at random per kill;
    ``step_seconds(reference)``: the longest random wait after that checkpoint."""
    ref = reference(method, root / 'reference', options, 'reference')
    control = reference(method, root / 'control', options, 'control')
    wait_s = step_seconds(ref)
    records = []
    for i in range(kills):
        work = root / f'kill{i}'
        shutil.rmtree(work, ignore_errors=True)
        stage, ckpt = rng.choice(targets)
        delay = rng.uniform(0, wait_s)
        folder = run_dir(work, method)
        proc = start(bench_command(method, work, options=options), work / 'first.log')
        reached = wait_for(folder / stage / ckpt, proc)
        time.sleep(delay)
        killed = proc.poll() is None
        if killed:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        where = landed(folder)
        code = run(bench_command(method, work, options=options), work / 'resume.log')
        summary = store_summary(work)
        diff = differing(ref['metrics'], result_metrics(folder)) if code == 0 else ['(no result)']
        records.append(dict(kill=i, target=f'{stage} after {ckpt} + {delay:.2f} s', killed=killed,
                            reached_target=reached, left=where, resumed=resumed_from(work / 'resume.log'),
                            rerun_exit=code, one_complete_run=one_complete_run(summary, method),
                            metrics_differing=diff, bit_identical=code == 0 and not diff,
                            **({} if code == 0 else {'error': last_line(work / 'resume.log')})))
        print(f'[{label}] kill {i}: {records[-1]["target"]}, left {where}, '
              f'bit-identical {records[-1]["bit_identical"]}', flush=True)
    good = [r for r in records if r['killed'] and r['one_complete_run'] and r['bit_identical']]
    return dict(method=method, options=options, kills=kills,
                killed_mid_run=sum(r['killed'] for r in records),
                resumed_from_a_checkpoint=sum(bool(r['resumed']) for r in records),
                one_complete_run=sum(r['one_complete_run'] for r in records),
                bit_identical=sum(r['bit_identical'] for r in records), passed=len(good),
                uninterrupted_runs_bit_identical=not differing(ref['metrics'], control['metrics']),
                reference_seconds=ref['seconds'], reference_stage_seconds=ref['stage_seconds'],
                metrics_compared=len(ref['metrics']), records=records)


def parallel_drill(root: Path, tries: int) -> dict:
    records = []
    for t in range(tries):
        work = root / f'try{t}'
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        procs = {m: start(bench_command(m, work), work / f'{m}.log') for m in PARALLEL_METHODS}
        codes = {m: p.wait(timeout=3600) for m, p in procs.items()}
        summary = store_summary(work)
        complete = {m: one_complete_run(summary, m) and (run_dir(work, m) / 'result.json').is_file()
                    for m in PARALLEL_METHODS}
        parents = sum(len(v['parents']) for v in summary.values())
        stages = sum(len(v['stages']) for v in summary.values())
        records.append(dict(attempt=t, finished=sum(c == 0 for c in codes.values()), exit_codes=codes,
                            complete_runs=sum(complete.values()), parent_runs=parents, stage_runs=stages,
                            errors={m: last_line(work / f'{m}.log') for m, c in codes.items() if c}))
        print(f'[parallel] try {t}: {records[-1]["finished"]}/4 finished, {parents} parent runs, '
              f'{stages} stage runs', flush=True)
    n = len(PARALLEL_METHODS)
    return dict(methods=list(PARALLEL_METHODS), tries=tries,
                tries_all_finished=sum(r['finished'] == n and r['complete_runs'] == n
                                       and r['parent_runs'] == n and r['stage_runs'] == 3 * n
                                       for r in records), records=records)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(str(self.marker))}',)


def crafted_checkpoint_drill(root: Path) -> dict:
    import torch
    work = root / 'checkpoint'
    shutil.rmtree(work, ignore_errors=True)
    marker = root / 'checkpoint_code_ran'
    marker.unlink(missing_ok=True)
    options = ['target_schedule.max_epochs=2']
    folder = run_dir(work, 'raw')
    proc = start(bench_command('raw', work, options=options), work / 'first.log')
    reached = wait_for(folder / 'action' / 'epoch_1.pth', proc)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    crafted = folder / 'action' / 'epoch_2.pth'
    torch.save({'meta': {'epoch': 2, 'iter': 0}, 'state_dict': _Exploit(marker)}, crafted)
    code = run(bench_command('raw', work, options=options), work / 'crafted.log')
    message = last_line(work / 'crafted.log')
    crafted.unlink(missing_ok=True)
    after = run(bench_command('raw', work, options=options), work / 'after.log')
    return dict(reached_checkpoint=reached, exit_code=code, message=message,
                names_the_file=str(crafted) in message, refused=code == 2 and 'refusing' in message,
                code_ran=marker.exists(), resumes_once_removed=after == 0)


def crafted_labels_drill(root: Path) -> dict:
    import cv2
    import numpy as np
    tree = root / 'ucf101'
    shutil.rmtree(tree, ignore_errors=True)
    marker = root / 'labels_code_ran'
    marker.unlink(missing_ok=True)
    clip = 'ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01'
    (tree / 'ucfTrainTestlist').mkdir(parents=True)
    (tree / 'ucfTrainTestlist' / 'classInd.txt').write_text('1 ApplyEyeMakeup\n')
    (tree / 'ucfTrainTestlist' / 'trainlist01.txt').write_text(f'{clip}.avi 1\n')
    (tree / 'ucfTrainTestlist' / 'testlist01.txt').write_text(f'{clip}.avi\n')
    video = tree / 'UCF-101' / f'{clip}.avi'
    video.parent.mkdir(parents=True)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 25, (32, 32))
    for i in range(8):
        writer.write(np.full((32, 32, 3), 20 * i, np.uint8))
    writer.release()
    labels = tree / 'annotations' / 'ucf101_privacy_attribute_label.pickle'
    labels.parent.mkdir()
    labels.write_bytes(pickle.dumps({f'{clip}.mp4': _Exploit(marker)}))
    work = root / 'labels_work'
    shutil.rmtree(work, ignore_errors=True)
    code = run(bench_command('raw', work, extra=['--dataset', 'vp_ucf101', '--data-root', str(tree)]),
               root / 'labels.log')
    message = last_line(root / 'labels.log')
    return dict(exit_code=code, message=message, names_the_file=str(labels) in message,
                refused=code == 2 and 'refusing' in message, code_ran=marker.exists(),
                store_created=(work / 'mlflow.db').exists())


def summary(record: dict) -> dict:
    """The issue's figures: passed / tried for each drill that ran."""
    out = {}
    for key in ('kill', 'fit'):
        if key in record:
            d = record[key]
            out[f'{key}: one complete run, bit-identical metrics'] = f'{d["passed"]}/{d["kills"]}'
    if 'parallel' in record:
        d = record['parallel']
        out['parallel: tries where 4/4 finished, none lost or doubled'] = f'{d["tries_all_finished"]}/{d["tries"]}'
    for key in ('crafted_checkpoint', 'crafted_label_pickle'):
        if key in record:
            d = record[key]
            out[f'{key}: refused, file named, nothing executed'] = bool(
                d['refused'] and d['names_the_file'] and not d['code_ran'])
    return out


def machine() -> dict:
    import torch
    from benchmark.tracking import git_state
    commit, dirty = git_state(REPO)
    return dict(commit=commit, dirty=dirty, cpu_count=os.cpu_count(), platform=platform.platform(),
                processor=platform.processor() or platform.machine(), python=platform.python_version(),
                torch=torch.__version__, omp_num_threads=os.environ.get('OMP_NUM_THREADS', '(unset)'),
                nice=os.nice(0))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--drills', default='kill,fit,parallel,crafted')
    parser.add_argument('--kills', type=int, default=10, help='kill -9 drills of raw (default: 10)')
    parser.add_argument('--fit-kills', type=int, default=3, help='kills in RAPrivacy\'s fit (default: 3)')
    parser.add_argument('--tries', type=int, default=5, help='parallel fresh-store tries (default: 5)')
    parser.add_argument('--seed', type=int, default=15, help='seed of the kill points (default: 15)')
    parser.add_argument('--work-root', default=None, help='where the drills run (default: a temp dir)')
    parser.add_argument('--out', default=str(REPO / 'results' / 'integrity_drill.json'))
    parser.add_argument('--code', default=str(REPO),
                        help='checkout whose bench the drills run (default: this one; e.g. main, '
                             'for a before/after)')
    args = parser.parse_args()
    global CODE
    CODE = Path(args.code).resolve()
    drills = args.drills.split(',')
    root = Path(args.work_root or tempfile.mkdtemp(prefix='integrity_drill_'))
    rng = random.Random(args.seed)
    record = dict(command=shlex.join([Path(sys.executable).name, *sys.argv]), code=str(CODE),
                  date=time.strftime('%Y-%m-%dT%H:%M:%S%z'), machine=machine(), work_root=str(root),
                  kill_point_seed=args.seed)
    start_time = time.time()
    if 'kill' in drills:
        targets = [(stage, f'epoch_{k}.pth') for stage in ('action', 'privacy') for k in (1, 2, 3)]

        def epoch_s(ref):  # one and a half epochs of the longer target stage (4 epochs)
            return 1.5 * max(ref['stage_seconds']['action'], ref['stage_seconds']['privacy']) / 4
        record['kill'] = kill_drill(root / 'kill', args.kills, rng, 'raw', KILL_OPTIONS, targets,
                                    epoch_s, 'kill')
    if 'fit' in drills:
        targets = [('fit', f'iter_{k}.pth') for k in range(2, FIT_ITERS, 2)]

        def two_iterations_s(ref):
            return 2 * ref['stage_seconds']['fit'] / FIT_ITERS
        record['fit'] = kill_drill(root / 'fit', args.fit_kills, rng, 'raprivacy', FIT_OPTIONS,
                                   targets, two_iterations_s, 'fit')
    if 'parallel' in drills:
        record['parallel'] = parallel_drill(root / 'parallel', args.tries)
    if 'crafted' in drills:
        record['crafted_checkpoint'] = crafted_checkpoint_drill(root / 'crafted')
        record['crafted_label_pickle'] = crafted_labels_drill(root / 'crafted')
    record['summary'] = summary(record)
    record['seconds'] = round(time.time() - start_time, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + '\n')
    print(f'wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Drill of the ordinary mistakes of issue 16: every one answered in one line, nothing written.

Runs each row of the issue's table as a new user would type it (smoke profile on vp_synth, in
private folders under a temporary root, each command from an empty folder of its own; the
store is that of one smoke run of raw made first) and records, per row: the command, its exit
status, the lines it printed (stdout and stderr together), its wall time and CPU time (the
machine is shared: the 1-minute load average is recorded beside), and the row's checks:

- a mistake ends with a non-zero status in at most 2 lines of output, those about a store
  within 5 s, and nothing is created or changed under the root (the dataset cache outside it
  is read only);
- the rows about behaviour (the report folder, `bench anonymize` sizes, stopping `bench ui`)
  check what the issue expects of them instead.

A silent server (accepts connections, never answers, stops itself) stands for a hung MLflow
server; port 9 on 127.0.0.1 (nothing listens there) for a dead one. Read-only folders are
read-only tmpfs mounts in a private mount namespace when run as root (root writes through file
modes), plain mode 555 folders otherwise. Writes results/errors_drill.json with the commit and
machine.

Usage: nice -n 19 python scripts/drill_errors.py [--out results/errors_drill.json] [--root DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.silent_server import SilentServer  # noqa: E402

BENCH = [sys.executable, '-m', 'benchmark.cli']
MAX_LINES = 2
STORE_LIMIT_S = 5.0
DEAD = 'http://127.0.0.1:9'


@dataclass
class Row:
    """One drilled command.

    ``writes``: paths (relative to the root) it may create or change; ``check``: more
    problems to report, from the finished row; ``store``: a row about a store (5 s limit);
    ``mistake``: a mistake (non-zero, at most 2 lines) rather than a behaviour row.
    """

    name: str
    issue: str
    argv: list[str]
    store: bool = False
    mistake: bool = True
    writes: list[str] = field(default_factory=list)
    check: Callable[[dict], list[str]] | None = None
    wrap: list[str] = field(default_factory=list)  # e.g. a read-only mount around the command
    cwd: Path | None = None  # default: an empty folder of its own


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for path in root.rglob('*'):
        try:
            st = path.lstat()
        except OSError:
            continue
        out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return out


def changes(before: dict, after: dict, allowed: list[str]) -> list[str]:
    changed = [p for p in set(before) | set(after) if before.get(p) != after.get(p)]
    return sorted(p for p in changed if not any(p == a or p.startswith(a.rstrip('/') + '/')
                                                for a in allowed))


def run_row(row: Row, root: Path, env: dict) -> dict:
    cwd = row.cwd or Path(tempfile.mkdtemp(prefix='cwd_', dir=root))
    before = snapshot(root)
    cpu = _children_cpu_s()
    start = time.perf_counter()
    proc = subprocess.run(row.wrap + row.argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    wall = time.perf_counter() - start
    cpu = _children_cpu_s() - cpu
    output = (proc.stdout + proc.stderr).rstrip('\n').replace(str(root), '$ROOT')
    lines = output.splitlines()
    record = dict(row=row.name, issue=row.issue, command=_shown(row.argv, root),
                  load_1min=round(os.getloadavg()[0], 2),
                  exit_status=proc.returncode, lines=len(lines), seconds=round(wall, 2),
                  cpu_seconds=round(cpu, 2),
                  output=lines[-MAX_LINES:] if row.mistake else lines[-4:], problems=[])
    if row.mistake:
        if proc.returncode == 0:
            record['problems'].append('exit status 0')
        if len(lines) > MAX_LINES:
            record['problems'].append(f'{len(lines)} lines of output')
        if 'Traceback' in output:
            record['problems'].append('a traceback')
    if row.store and wall > STORE_LIMIT_S:
        record['problems'].append(f'{wall:.1f} s for a store row (limit {STORE_LIMIT_S:g} s)')
    written = changes(before, snapshot(root), row.writes)
    if written:
        record['problems'].append(f'wrote {", ".join(written[:5])}')
    if row.check:
        record['problems'] += row.check(record)
    record['ok'] = not record['problems']
    return record


def _children_cpu_s() -> float:
    """User and system CPU seconds of the finished child processes: what a command cost,
    apart from how long it waited for a core the owner's other work held."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _shown(argv: list[str], root: Path) -> str:
    text = ' '.join(argv).replace(' '.join(BENCH), 'bench', 1)
    return text.replace(str(root), '$ROOT')


def read_only_wrap(folder: Path) -> list[str]:
    """A command prefix under which ``folder`` is read-only (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    mount = f'mount -t tmpfs -o ro,size=64k tmpfs {folder} && exec "$@"'
    return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', mount, 'sh']


def setup(root: Path, env: dict) -> dict:
    """The store of one smoke run, files that are not what they claim, a video, a data tree."""
    import numpy as np
    import torch
    work = root / 'store'
    subprocess.run(BENCH + ['run', '--method', 'raw', '--profile', 'smoke', '--work-dir', str(work)],
                   env=env, check=True, capture_output=True, cwd=root)
    run_dir = work / 'vp_synth' / 'raw' / 'smoke' / 'seed0'
    run_id = json.loads((run_dir / 'result.json').read_text())['run_id']
    files = root / 'files'
    files.mkdir()
    (files / 'zero.db').touch()
    (files / 'garbage.db').write_bytes(os.urandom(4096))
    data = (work / 'mlflow.db').read_bytes()
    (files / 'truncated').mkdir()
    (files / 'truncated' / 'mlflow.db').write_bytes(data[:len(data) // 3])
    (files / 'notes.txt').write_text('these are my notes, not a runs.csv\n' * 3)
    (files / 'binary.csv').write_bytes(os.urandom(2048))
    empty_store = root / 'empty_store'  # an MLflow store without a run
    empty_store.mkdir()
    from mlflow.tracking import MlflowClient
    MlflowClient(f'sqlite:///{empty_store / "mlflow.db"}').search_experiments()
    for name, state in (('wrong_keys', {'epoch': 3, 'weight': torch.ones(2)}), ('garbage', None)):
        folder = files / name
        folder.mkdir()
        shutil.copy(run_dir / 'fit' / 'anonymizer.json', folder / 'anonymizer.json')
        if state is None:
            (folder / 'anonymizer.pth').write_bytes(os.urandom(1024))
        else:
            torch.save(state, folder / 'anonymizer.pth')
    resume = root / 'resume'  # the run, interrupted after its fit, whose anonymizer.pth is not its own
    shutil.copytree(work, resume)
    interrupted = resume / run_dir.relative_to(work)
    state = json.loads((interrupted / 'state.json').read_text())
    (interrupted / 'state.json').write_text(json.dumps(dict(state, complete=False)))
    (interrupted / 'result.json').unlink()
    for stage in ('action', 'privacy'):
        shutil.rmtree(interrupted / stage)
    torch.save({'epoch': 3, 'weight': torch.ones(2)}, interrupted / 'fit' / 'anonymizer.pth')
    fixed = files / 'downsample_fitted_at_28'  # what a smoke run of downsample_2x leaves
    fixed.mkdir()
    torch.save({}, fixed / 'anonymizer.pth')
    (fixed / 'anonymizer.json').write_text(json.dumps(dict(
        anonymizer=dict(type='Downsample', factor=2), method='downsample_2x', clip_len=4,
        crop_size=28, aux_channels=[], trained_on='vp_synth')))
    import av
    with av.open(str(files / 'clip.mp4'), mode='w') as container:
        stream = container.add_stream('mpeg4', rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, 'yuv420p'
        for i in range(12):
            image = np.zeros((64, 96, 3), np.uint8)
            image[:, : 8 * i] = (200, 80, 30)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tree = root / 'hmdb51'  # a tiny HMDB51 tree whose label pickle would run a command
    import cv2
    (tree / 'testTrainMulti_7030_splits').mkdir(parents=True)
    (tree / 'testTrainMulti_7030_splits' / 'chew_test_split1.txt').write_text(
        'a_chew_0.avi 1 \nb_chew_1.avi 2 \n')
    (tree / 'chew').mkdir()
    for clip in ('a_chew_0', 'b_chew_1'):
        writer = cv2.VideoWriter(str(tree / 'chew' / f'{clip}.avi'),
                                 cv2.VideoWriter_fourcc(*'MJPG'), 25, (64, 48))
        for _ in range(8):
            writer.write(np.full((48, 64, 3), 90, np.uint8))
        writer.release()
    marker = root / 'PWNED'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)
    (files / 'hostile.pickle').write_bytes(pickle.dumps({'chew/a_chew_0.mp4': Exploit()}))
    clone = root / 'clone'  # a clone holding the committed reports and results
    clone.mkdir()
    archive = subprocess.run(['git', '-C', str(ROOT), 'archive', 'HEAD', 'reports', 'results'],
                             check=True, capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(clone)], input=archive, check=True)
    return dict(work=work, run_id=run_id, files=files, tree=tree, marker=marker, clone=clone,
                empty_store=empty_store, resume=resume)


def rows(root: Path, s: dict, silent: SilentServer) -> list[Row]:
    w, f = str(s['work']), s['files']
    fresh = str(root / 'fresh_work_dir')  # never created by a mistake
    smoke = ['--profile', 'smoke', '--work-dir']
    run = BENCH + ['run', '--method', 'raw'] + smoke
    report = BENCH + ['report', '--work-dir', w]
    anonymize_run = BENCH + ['anonymize', '--run', s['run_id'], str(f / 'clip.mp4'), 'out.mp4']
    said = lambda text: lambda r: [] if any(text in line for line in r['output']) else [  # noqa: E731
        f'does not say {text!r}']
    return [
        Row('max_epochs=0', '--cfg-options target_schedule.max_epochs=0',
            run + [fresh, '--cfg-options', 'target_schedule.max_epochs=0'], check=said('>= 1')),
        Row('max_epochs=abc', '--cfg-options target_schedule.max_epochs=abc (fresh work dir)',
            run + [fresh, '--cfg-options', 'target_schedule.max_epochs=abc'],
            check=said("target_schedule.max_epochs='abc' is a str")),
        Row('seeds -1', '--seeds -1', run + [fresh, '--seeds', '-1']),
        Row('seeds ,', '--seeds ,', run + [fresh, '--seeds', ',']),
        Row('sigma=-3', 'strong_blur --cfg-options anonymizer.sigma=-3',
            BENCH + ['run', '--method', 'strong_blur'] + smoke + [fresh, '--cfg-options',
                                                                  'anonymizer.sigma=-3'],
            check=said('sigma=-3')),
        Row('sigmaa=4', '--cfg-options anonymizer.sigmaa=4',
            BENCH + ['run', '--method', 'strong_blur'] + smoke + [fresh, '--cfg-options',
                                                                  'anonymizer.sigmaa=4'],
            check=said("did you mean 'sigma'")),
        Row('unknown key hint', "unknown key's hint gives `bench config`'s real syntax",
            run + [fresh, '--cfg-options', 'target_schedule.max_epoch=2'],
            check=said('bench config --method raw --dataset vp_synth --profile smoke')),
        Row('vp_synth --data-root', 'vp_synth --data-root /nonexistent',
            run + [w, '--data-root', '/nonexistent'], check=said('takes no data root')),
        Row('vp_hmdb51 --data-root', 'vp_hmdb51 --data-root /nonexistent (the root is missing)',
            run + [fresh, '--dataset', 'vp_hmdb51', '--data-root', '/nonexistent'],
            check=said('/nonexistent')),
        Row('report, no store', 'bench report on an empty work dir', BENCH + ['report', '--work-dir',
                                                                           fresh], store=True),
        Row('report, empty store', 'bench report on an empty store',
            BENCH + ['report', '--work-dir', str(s['empty_store'])], store=True),
        Row('report, 0-byte store', 'bench report on a 0-byte store',
            BENCH + ['report', '--tracking-uri', f'sqlite:///{f / "zero.db"}'], store=True),
        Row('report, garbage store', 'bench report on a garbage mlflow.db',
            BENCH + ['report', '--tracking-uri', f'sqlite:///{f / "garbage.db"}'], store=True),
        Row('report, truncated store', 'bench report on a truncated mlflow.db',
            BENCH + ['report', '--work-dir', str(f / 'truncated')], store=True),
        Row('report --from text', 'bench report --from a text file',
            BENCH + ['report', '--from', str(f / 'notes.txt')], check=said('notes.txt')),
        Row('report --from binary', 'bench report --from a binary file',
            BENCH + ['report', '--from', str(f / 'binary.csv')], check=said('binary.csv')),
        Row('report --profile smok', 'bench report --profile smok', report + ['--profile', 'smok'],
            store=True, check=said("did you mean 'smoke'")),
        Row('report --dataset vp_synthh', 'bench report --dataset vp_synthh',
            report + ['--dataset', 'vp_synthh'], store=True, check=said("did you mean 'vp_synth'")),
        Row('report, refused', 'bench report --tracking-uri http://127.0.0.1:9',
            BENCH + ['report', '--tracking-uri', DEAD], store=True),
        Row('report, silent', 'bench report against a server that accepts but never answers',
            BENCH + ['report', '--tracking-uri', silent.url], store=True),
        Row('run, refused', 'bench run --tracking-uri http://127.0.0.1:9',
            run + [fresh, '--tracking-uri', DEAD], store=True),
        Row('run, silent', 'bench run against a server that accepts but never answers',
            run + [fresh, '--tracking-uri', silent.url], store=True),
        Row('anonymize --run, refused', 'bench anonymize --run ID --tracking-uri http://127.0.0.1:9',
            anonymize_run + ['--tracking-uri', DEAD], store=True),
        Row('anonymize --run, silent', 'bench anonymize --run ID against a silent server',
            anonymize_run + ['--tracking-uri', silent.url], store=True),
        Row('anonymize, wrong-keys checkpoint', 'a wrong-keys torch file as anonymizer.pth',
            BENCH + ['anonymize', '--checkpoint', str(f / 'wrong_keys'), str(f / 'clip.mp4'),
                     'out.mp4'], check=said('wrong_keys/anonymizer.pth')),
        Row('anonymize, garbage checkpoint', 'a garbage file as anonymizer.pth',
            BENCH + ['anonymize', '--checkpoint', str(f / 'garbage' / 'anonymizer.pth'),
                     str(f / 'clip.mp4'), 'out.mp4'], check=said('garbage/anonymizer.pth')),
        Row('run, wrong-keys fit/anonymizer.pth', 'a wrong-keys torch file as the anonymizer.pth '
            'of a run resumed after its fit', run + [str(s['resume'])],
            check=said('fit/anonymizer.pth does not hold the weights of Identity')),
        Row('report, read-only --out', 'bench report with a read-only --out',
            report + ['--out', str(root / 'ro_out'), '--results', str(root / 'ro_out')],
            store=True, wrap=read_only_wrap(root / 'ro_out'), check=said('ro_out')),
        Row('anonymize, missing folder', 'bench anonymize into a missing folder',
            BENCH + ['anonymize', '--checkpoint', str(f / 'downsample_fitted_at_28'),
                     str(f / 'clip.mp4'), str(root / 'missing' / 'out.mp4')], check=said('missing')),
        Row('anonymize, read-only folder', 'bench anonymize into a read-only folder',
            BENCH + ['anonymize', '--checkpoint', str(f / 'downsample_fitted_at_28'),
                     str(f / 'clip.mp4'), str(root / 'ro_anon' / 'out.mp4')],
            wrap=read_only_wrap(root / 'ro_anon'), check=said('ro_anon')),
        Row('datasets check, hostile pickle', 'bench datasets check given a hostile label pickle',
            BENCH + ['datasets', 'check', 'vp_hmdb51', '--data-root', str(s['tree']),
                     '--annotations', str(f / 'hostile.pickle'), '--quick'],
            check=lambda r: ['the pickle ran its command'] if s['marker'].exists() else []),
        Row('ui, no store', 'bench ui --work-dir /nonexistent',
            BENCH + ['ui', '--work-dir', fresh], store=True, check=said('no tracking store')),
        Row('anonymize, fixed method at a small crop',
            'bench anonymize with a fixed method trained at a small crop',
            BENCH + ['anonymize', '--checkpoint', str(f / 'downsample_fitted_at_28'),
                     str(f / 'clip.mp4'), str(root / 'fixed_out.mp4')], mistake=False,
            writes=['fixed_out.mp4'], check=lambda r: _own_size(r, root / 'fixed_out.mp4')),
        Row('report in a clone', 'plain bench report in a clone holding committed reports',
            BENCH + ['report', '--work-dir', w], mistake=False, cwd=s['clone'],
            writes=['clone/reports', 'clone/results'],
            check=lambda r: _clone_report(s['clone'], s['run_id'])),
    ]


def _own_size(record: dict, out: Path) -> list[str]:
    import av
    problems = [] if record['exit_status'] == 0 else ['failed']
    if not any("video's own size" in line for line in record['output']):
        problems.append('does not say the size it worked at')
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        if (frame.width, frame.height) != (96, 64):
            problems.append(f'output is {frame.width}x{frame.height}, not 96x64')
    return problems


def _clone_report(clone: Path, run_id: str) -> list[str]:
    """Tables, figures and samples of the clone's report all come from the user's one run."""
    import numpy as np
    import pandas as pd
    problems = []
    runs = pd.read_csv(clone / 'results' / 'runs.csv', dtype=str)
    if set(runs.run_id) != {run_id}:
        problems.append(f'runs.csv holds {len(runs)} runs')
    for sample in (clone / 'results' / 'samples').glob('*.npz'):
        with np.load(sample) as data:
            if str(data['run_id']) != run_id:
                problems.append(f'{sample.name} is from another run')
    reports = sorted(str(p.relative_to(clone / 'reports')) for p in (clone / 'reports').rglob('*')
                     if p.is_file() and p.name != '.inputs.json')
    stale = [p for p in reports if '_cpu' in p]
    if stale:
        problems.append(f'stale outputs kept: {", ".join(stale)}')
    if 'plots/frames_vp_synth_smoke.png' not in reports:
        problems.append('no frame grid of the run')
    return problems


def run_ui_signal(root: Path, work: Path, env: dict, signum: int) -> dict:
    """Start `bench ui`, wait until it serves, send ``signum``, check the whole server stops.

    ``seconds`` is the time from the signal to bench's exit; the lines are MLflow's log.
    """
    name = signal.Signals(signum).name
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    argv = BENCH + ['ui', '--work-dir', str(work), '--port', str(port)]
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    problems = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not _listening(port):
        time.sleep(0.5)
    if not _listening(port):
        problems.append('the server never listened')
    time.sleep(2)  # its workers up too
    servers = _server_group(port)
    start = time.perf_counter()
    proc.send_signal(signum)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        problems.append('bench ui did not exit within 30 s')
        proc.kill()
        proc.wait()
    wall = time.perf_counter() - start
    time.sleep(0.5)
    if _listening(port):
        problems.append(f'port {port} still accepts connections')
    left = {pid for pid in servers if _alive(pid)}
    if left:
        problems.append(f'{len(left)} server processes still alive')
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    output = proc.stdout.read().rstrip('\n').replace(str(root), '$ROOT').splitlines()
    return dict(row=f'ui, {name}', issue=f'{name} to bench ui', load_1min=round(os.getloadavg()[0], 2),
                command=_shown(argv, root) + f'; kill -{name[3:]} <bench>',
                exit_status=proc.returncode, lines=len(output), seconds=round(wall, 2),
                output=output[-2:], server_processes=len(servers), problems=problems,
                ok=not problems)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(('127.0.0.1', port)) == 0


def _server_group(port: int) -> set[int]:
    """Every process of the MLflow server's process group (its uvicorn workers included)."""
    table = [line.split(None, 2) for line in subprocess.run(
        ['ps', '-eo', 'pid=,pgid=,args='], capture_output=True, text=True).stdout.splitlines()]
    groups = {pgid for pid, pgid, args in table if 'mlflow' in args and f'--port {port}' in args}
    return {int(pid) for pid, pgid, _ in table if pgid in groups}


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[-1][0] != 'Z'
    except OSError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default=str(ROOT / 'results' / 'errors_drill.json'))
    parser.add_argument('--root', help='work root (default: a new temporary folder, removed after)')
    args = parser.parse_args()
    from benchmark.tracking import provenance
    root = Path(args.root or tempfile.mkdtemp(prefix='drill_errors_')).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS='ignore')
    env.pop('MLFLOW_TRACKING_URI', None)
    silent = SilentServer()
    try:
        start = time.perf_counter()
        s = setup(root, env)
        setup_s = time.perf_counter() - start
        records = []
        for row in rows(root, s, silent):
            records.append(run_row(row, root, env))
            r = records[-1]
            print(f'{"ok  " if r["ok"] else "FAIL"} {r["row"]:38} exit {r["exit_status"]:3} '
                  f'{r["lines"]:3} lines {r["seconds"]:6.2f} s  {"; ".join(r["problems"])}', flush=True)
        for signum in (signal.SIGTERM, signal.SIGINT):
            records.append(run_ui_signal(root, s['work'], env, signum))
            r = records[-1]
            print(f'{"ok  " if r["ok"] else "FAIL"} {r["row"]:38} exit {r["exit_status"]:3} '
                  f'{r["lines"]:3} lines {r["seconds"]:6.2f} s  {"; ".join(r["problems"])}', flush=True)
    finally:
        silent.close()
        if not args.root:
            shutil.rmtree(root, ignore_errors=True)
    machine = dict(provenance('cpu'), cpu_count=os.cpu_count(), python=platform.python_version(),
                   load_average=list(os.getloadavg()))
    record = dict(command=' '.join([Path(sys.executable).name, *sys.argv]), machine=machine,
                  setup_s=round(setup_s, 1), limits=dict(max_lines=MAX_LINES, store_s=STORE_LIMIT_S),
                  all_ok=all(r['ok'] for r in records), rows=records)
    Path(args.out).write_text(json.dumps(record, indent=1) + '\n')
    print(f'{sum(r["ok"] for r in records)} of {len(records)} rows ok; wrote {args.out}')
    return 0 if record['all_ok'] else 1


if __name__ == '__main__':
    sys.exit(main())

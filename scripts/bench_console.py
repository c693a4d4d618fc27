"""Measure what `bench` prints (issue #23): lines of `bench run` to a terminal and to a pipe,
whether the result block comes last, and how long `bench ls methods` takes.

    python scripts/bench_console.py                      # smoke profile, seconds to minutes
    python scripts/bench_console.py --profile cpu        # README command 1 (minutes each)
    python scripts/bench_console.py --profile cpu --only pipe

Each run goes to a fresh scratch work dir (a finished run would only say it is complete); the
data cache ($BENCH_CACHE) is shared, so a profile whose data is cached prints no data-generation
bar. A terminal is a pseudo-terminal 120 columns wide, read back as the screen it leaves
(``tests/terminal.py``); a pipe counts stdout and stderr lines together. Figures are printed
and merged into results/console_bench.json under the profile's name.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmark.tracking import git_state  # noqa: E402
from tests.terminal import run_on_terminal, screen_lines  # noqa: E402

RESULT_BLOCK = ('== ', '  action top-1', '  privacy cMAP', '  privacy F1 macro', '  AP per attribute',
                '  time', '  MLflow run')
LIMITS = {'terminal': 40, 'pipe': 80}  # issue #23, for README command 1


def result_block_last(lines: list[str]) -> bool:
    tail = lines[-len(RESULT_BLOCK):]
    return len(tail) == len(RESULT_BLOCK) and all(x.startswith(p) for x, p in zip(tail, RESULT_BLOCK))


def bench_run(where: str, profile: str, method: str, scratch: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f'{where}_', dir=scratch))
    cmd = [sys.executable, '-m', 'benchmark.cli', 'run', '--method', method, '--dataset', 'vp_synth',
           '--profile', profile, '--work-dir', str(work)]
    start = time.time()
    if where == 'terminal':
        code, output = run_on_terminal(cmd, REPO)
        lines = screen_lines(output)
    else:
        proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        code, lines = proc.returncode, proc.stdout.rstrip('\n').splitlines()
    record = dict(command=' '.join(['bench', *cmd[3:]]), exit_status=code, lines=len(lines),
                  limit_for_command_1=LIMITS[where], result_block_last=result_block_last(lines),
                  seconds=round(time.time() - start, 1), output=lines)
    print(f'{where:8} {profile}: {len(lines)} lines (limit {LIMITS[where]} for command 1), '
          f'result block last: {record["result_block_last"]}, {record["seconds"]:.0f} s, '
          f'exit {code}', flush=True)
    return record


def timed(cmd: list[str], repeats: int, code: Path = REPO) -> dict:
    """Median wall and CPU seconds (user + system) of ``cmd`` run from checkout ``code``."""
    walls, cpus = [], []
    env = {**os.environ, 'PYTHONPATH': str(code)}
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, cwd=code, check=True, capture_output=True, env=env)
        walls.append(round(time.perf_counter() - start, 3))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3))
    return dict(wall_s=walls, cpu_s=cpus, median_wall_s=sorted(walls)[len(walls) // 2],
                median_cpu_s=sorted(cpus)[len(cpus) // 2])


def ls_methods(repeats: int, compare: Path | None) -> dict:
    """`bench ls methods`, beside an empty Python start (what the machine's load costs any
    command) and, with ``compare``, the same command from another checkout."""
    ls = [sys.executable, '-m', 'benchmark.cli', 'ls', 'methods']
    record = dict(timed(ls, repeats), limit_s=1.0,
                  python_start=timed([sys.executable, '-c', 'pass'], repeats))
    print(f'ls methods: median {record["median_wall_s"]:.2f} s wall, {record["median_cpu_s"]:.2f} s '
          f'CPU over {repeats} runs (limit 1 s); an empty Python start: '
          f'{record["python_start"]["median_wall_s"]:.2f} s wall, '
          f'{record["python_start"]["median_cpu_s"]:.2f} s CPU', flush=True)
    if compare:
        commit, dirty = git_state(compare)
        record['compared'] = dict(timed(ls, repeats, compare), checkout=str(compare), commit=commit,
                                  dirty=dirty)
        print(f'ls methods from {compare}: median {record["compared"]["median_wall_s"]:.2f} s wall, '
              f'{record["compared"]["median_cpu_s"]:.2f} s CPU', flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='smoke')
    parser.add_argument('--method', default='raw')
    parser.add_argument('--only', choices=('terminal', 'pipe', 'ls'), action='append',
                        help='measure only these (repeatable; default: all three)')
    parser.add_argument('--ls-repeats', type=int, default=5)
    parser.add_argument('--compare-ls', type=Path, metavar='CHECKOUT',
                        help='also time `bench ls methods` from this checkout (e.g. one before #23)')
    parser.add_argument('--out', default=str(REPO / 'results' / 'console_bench.json'))
    args = parser.parse_args()
    todo = args.only or ['terminal', 'pipe', 'ls']
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {}
    commit, dirty = git_state(REPO)
    machine = dict(commit=commit, dirty=dirty, date=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                   host=platform.node(), cpus=os.cpu_count(), niceness=os.nice(0))
    with tempfile.TemporaryDirectory(prefix='bench_console_') as scratch:
        for where in ('terminal', 'pipe'):
            if where in todo:  # each run keeps the machine's state it ran in
                record[f'{args.method}_{args.profile}_{where}'] = dict(
                    bench_run(where, args.profile, args.method, Path(scratch)), **machine,
                    load_average=os.getloadavg())
    if 'ls' in todo:
        record['ls_methods'] = dict(ls_methods(args.ls_repeats, args.compare_ls), **machine,
                                    load_average=os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

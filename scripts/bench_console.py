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


def ls_methods(repeats: int) -> dict:
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, '-m', 'benchmark.cli', 'ls', 'methods'], cwd=REPO,
                       check=True, capture_output=True)
        walls.append(round(time.perf_counter() - start, 3))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 3))
    record = dict(wall_s=walls, cpu_s=cpus, median_wall_s=sorted(walls)[len(walls) // 2],
                  median_cpu_s=sorted(cpus)[len(cpus) // 2], limit_s=1.0)
    print(f'ls methods: median {record["median_wall_s"]:.2f} s wall, {record["median_cpu_s"]:.2f} s '
          f'CPU over {repeats} runs (limit 1 s)', flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--profile', default='smoke')
    parser.add_argument('--method', default='raw')
    parser.add_argument('--only', choices=('terminal', 'pipe', 'ls'), action='append',
                        help='measure only these (repeatable; default: all three)')
    parser.add_argument('--ls-repeats', type=int, default=5)
    parser.add_argument('--out', default=str(REPO / 'results' / 'console_bench.json'))
    args = parser.parse_args()
    todo = args.only or ['terminal', 'pipe', 'ls']
    out = Path(args.out)
    record = json.loads(out.read_text()) if out.is_file() else {}
    commit, dirty = git_state(REPO)
    key = f'{args.method}_{args.profile}'
    entry = record.get(key, {})
    entry.update(commit=commit, dirty=dirty, date=time.strftime('%Y-%m-%dT%H:%M:%S%z'),
                 host=platform.node(), cpus=os.cpu_count(), load_average=os.getloadavg(),
                 niceness=os.nice(0))
    with tempfile.TemporaryDirectory(prefix='bench_console_') as scratch:
        for where in ('terminal', 'pipe'):
            if where in todo:
                entry[where] = bench_run(where, args.profile, args.method, Path(scratch))
    record[key] = entry
    if 'ls' in todo:
        record['ls_methods'] = dict(ls_methods(args.ls_repeats), commit=commit, dirty=dirty,
                                    load_average=os.getloadavg(), niceness=os.nice(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()

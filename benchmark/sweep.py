"""Ablation sweeps: one method over the Cartesian product of config values, every point a full
protocol run tied to the sweep.

``bench sweep --method raprivacy --grid style=depth,edges --seeds 0,1 --name styles`` expands
its grid (``--grid`` keys are config keys, or the short forms of ``SHORT_KEYS``), resolves and
validates every point before anything runs, then runs the points in worker processes:

- **Tied to the sweep.** Each point's MLflow parent run carries the tag ``bench.sweep`` (the
  names of the sweeps it belongs to, comma-separated); ``bench report --sweep NAME`` reads them.
  The sweep's manifest ``<work-dir>/sweeps/<NAME>.json`` records its definition and each
  point's last outcome (``finished``, ``failed`` with its one-line error).
- **Resumable.** A point whose run folder is complete is skipped; one that was interrupted is
  resumed by the protocol from its checkpoints (``benchmark/protocol.py``); one that failed is
  run again (resumed likewise). Every point ends with exactly one complete run.
- **Fault-isolated.** Every point runs in a process of its own (``python -m benchmark.sweep``,
  or a job of the engine); whatever it raises or however it dies, the others go on, and its
  error is listed at the end. The exit status is 0 only when every point finished.
- **Parallel.** ``--jobs N`` runs N points at once. On CPU each worker gets
  ``cores // N`` threads (``OMP_NUM_THREADS`` and ``torch.set_num_threads``): N jobs that each
  take every core run several times slower per step. On CUDA each worker sees one GPU.
  Workers share one store; each point's run folder is locked by the run itself, and a point is
  handed to one worker only.
- **Engines.** ``--engine local`` (default) starts the workers itself; ``--engine submitit``
  hands the same points to submitit (its local executor, or Slurm with ``--slurm-partition``),
  where runs should go to an MLflow server (``--tracking-uri http://...``, backed by
  PostgreSQL: README, *Sweeps on a cluster*).
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark.errors import ConfigError, ProtocolError, UnknownNameError, closest, first_line

NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
#: ``--grid`` short forms: the key they stand for.
SHORT_KEYS = {'style': 'anonymizer.style_set.type'}


@dataclasses.dataclass
class Axis:
    """One ``--grid`` entry: the name it was given, the config key it sets, its values."""

    name: str
    key: str
    values: list


@dataclasses.dataclass
class Point:
    """One run of a sweep: its variant name, its seed, its config overrides and resolved config."""

    variant: str
    seed: int
    options: dict
    cfg: object = None

    @property
    def label(self) -> str:
        return f'{self.cfg.method}@{self.variant} seed {self.seed}'


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def style_names() -> dict[str, str]:
    from raprivacy.styles import STYLE_NAMES
    return STYLE_NAMES


def parse_grid(pairs: list[str]) -> list[Axis]:
    """``key=v1,v2`` entries to axes; short forms (``style=depth,edges``) to their config key.

    Raises:
        ConfigError: an entry that is not ``key=values``, a key given twice, a value twice.
        UnknownNameError: a short form's value that does not exist (with the closest ones).
    """
    axes = []
    for pair in pairs:
        name, sep, values = pair.partition('=')
        name = name.strip()
        raw = [v.strip() for v in values.split(',')]
        if not sep or not name or not all(raw):
            raise ConfigError(f'--grid {pair!r} is not key=value1,value2,... (no empty key or value)')
        key = SHORT_KEYS.get(name, name)
        if key in (a.key for a in axes):
            raise ConfigError(f'--grid {name} sets {key} a second time: list all its values in '
                              f'one --grid')
        if len(set(raw)) < len(raw):
            twice = next(v for v in raw if raw.count(v) > 1)
            raise ConfigError(f'--grid {name}: value {twice!r} is given twice')
        if name in SHORT_KEYS:
            names = style_names()
            for v in raw:
                if v not in names:
                    raise UnknownNameError(f'--grid {name}: ' + closest(v, list(names), 'style'))
            axes.append(Axis(name, key, raw))
        else:
            axes.append(Axis(name, key, [_literal(v) for v in raw]))
    return axes


def _config_value(value, name: str):
    """A grid value as the config takes it: a style short name becomes its style set type."""
    return style_names()[value] if name in SHORT_KEYS else value


def variant_name(names: list[str], combo) -> str:
    """A grid combination's variant: ``style=depth,anonymizer.scale=2`` (the method's suffix)."""
    return ','.join(f'{name}={value}' for name, value in zip(names, combo))


def expand(axes: list[Axis], seeds: list[int]) -> list[Point]:
    """The Cartesian product of the axes, each combination once per seed (seeds innermost)."""
    points = []
    for combo in itertools.product(*(a.values for a in axes)):
        variant = variant_name([a.name for a in axes], combo)
        options = {a.key: _config_value(v, a.name) for a, v in zip(axes, combo)}
        points.extend(Point(variant, seed, options) for seed in seeds)
    return points


def planned_points(definition: dict) -> list[tuple[str, int]]:
    """A manifest's definition (``grid``, ``seeds``) as its (variant, seed) points, in run order.
    Grid values are scalars (``--grid`` splits on commas), so they come back from JSON as they
    were and name the variants as :func:`expand` did."""
    grid = definition.get('grid') or {}
    return [(variant_name(list(grid), combo), seed) for combo in itertools.product(*grid.values())
            for seed in definition.get('seeds', [])]


def _node(tree: dict, dotted: str):
    node = tree
    for part in dotted.split('.'):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _registered(key: str) -> list[str] | None:
    """The names a ``type`` key can take, where one registry holds them all."""
    if key.endswith('style_set.type'):
        from raprivacy.styles import STYLE_SETS
        return list(STYLE_SETS.module_dict)
    if key == 'anonymizer.type':
        from benchmark.registry import ANONYMIZERS, import_all
        import_all()
        return list(ANONYMIZERS.module_dict)
    return None


def check_value(axis: Axis, value, default) -> None:
    """Refuse a grid value the config key cannot take: an unregistered type, or a value of
    another kind than the key's default (text for a number, a number for a name)."""
    if axis.key.endswith('.type') and isinstance(value, str):
        valid = _registered(axis.key)
        if valid is not None and value not in valid:
            raise UnknownNameError(f'--grid {axis.key}: ' + closest(value, valid, 'type'))
    if default is None or value is None:
        return
    number = (int, float)
    if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, number) and not isinstance(value, number)) or (
            isinstance(default, str) and not isinstance(value, str)):
        raise ConfigError(f'--grid {axis.name}={value!r}: {axis.key} takes values like {default!r} '
                          f'({type(default).__name__}), not {type(value).__name__}')


def resolve(method: str, dataset: str, profile: str, train_dataset: str | None, base: dict,
            axes: list[Axis], seeds: list[int]) -> list[Point]:
    """Every point's config, resolved and checked before anything runs (one-line errors)."""
    from benchmark.config import resolve_config
    points = expand(axes, seeds)
    plain = resolve_config(method, dataset, profile, train_dataset=train_dataset, options=base)
    for point in points:
        point.options = {**base, **point.options}
        try:
            point.cfg = resolve_config(method, dataset, profile, train_dataset=train_dataset,
                                       options=point.options, seed=point.seed,
                                       variant=point.variant)
        except (UnknownNameError, ConfigError, ProtocolError) as err:
            raise type(err)(f'--grid {point.variant}: {first_line(err)}') from None
    tree = plain.to_dict()
    for axis in axes:
        default = _node(tree, axis.key)
        for value in axis.values:
            check_value(axis, _config_value(value, axis.name), default)
    check_anonymizers(points)
    return points


def check_anonymizers(points: list[Point]) -> None:
    """Build each distinct anonymizer of the sweep once, so that a value its constructor refuses
    (``anonymizer.factor=0``, a style folder that does not exist) stops the sweep before any run."""
    from benchmark.anonymizer import build_anonymizer
    from benchmark.registry import import_all
    import_all()
    built = set()
    for point in points:
        key = json.dumps(point.cfg.to_dict()['anonymizer'], sort_keys=True, default=str)
        if key in built:
            continue
        try:
            build_anonymizer(point.cfg.anonymizer)
        except (TypeError, ValueError, OSError) as err:
            raise ConfigError(f'--grid {point.variant}: anonymizer {point.cfg.anonymizer["type"]}: '
                              f'{first_line(err)}') from None
        built.add(key)


# ----------------------------------------------------------------------------- the manifest


SWEEP_FIXED = ('method', 'dataset', 'train_dataset', 'profile')


def unite_definitions(old: dict, new: dict) -> dict:
    """Two definitions of one sweep (two parts of it, run at different times or on different
    machines) as one: each grid key's values united, ``old``'s first, and the seeds united.
    ValueError, naming what differs, where they are two sweeps: another method, dataset or
    profile, or other grid keys."""
    for key in SWEEP_FIXED:
        if old.get(key) != new.get(key):
            raise ValueError(f'{key} {old.get(key)}, not {new.get(key)}')
    if 'grid' not in old:
        return dict(new)
    grid_old, grid_new = old.get('grid') or {}, new.get('grid') or {}
    if set(grid_old) != set(grid_new):
        raise ValueError(f'grid keys {", ".join(grid_old) or "none"}, not {", ".join(grid_new) or "none"}')
    grid = {key: list(values) + [v for v in grid_new[key] if v not in values]
            for key, values in grid_old.items()}
    return {**old, 'grid': grid,
            'seeds': sorted(set(old.get('seeds', [])) | set(new.get('seeds', [])))}


class Manifest:
    """``<work-dir>/sweeps/<name>.json``: the sweep's definition and each point's last outcome.

    Updated under a lock file beside it, so that workers finishing together lose nothing.
    """

    def __init__(self, work_root: Path, name: str) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f'--name {name!r}: a sweep name is 1 to 64 letters, digits, '
                              f'"_", "." or "-", starting with a letter or digit')
        self.name = name
        self.path = Path(work_root) / 'sweeps' / f'{name}.json'
        self.lock = self.path.with_suffix('.json.lock')

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def start(self, definition: dict) -> dict:
        """Record the definition, united with the one recorded before under this name (a sweep
        run in parts plans every part's points); refuse one that names another method, dataset,
        profile or grid keys."""
        from benchmark.store import locked
        with locked(self.lock):
            data = self.read()
            old = data.get('definition')
            if old and any(old.get(k) != definition.get(k) for k in SWEEP_FIXED):
                was = ', '.join(f'{k} {old.get(k)}' for k in SWEEP_FIXED if old.get(k))
                raise ProtocolError(f'sweep {self.name!r} in {self.path} is of {was}: give this '
                                    f'one another --name')
            try:
                data['definition'] = unite_definitions(old, definition) if old else definition
            except ValueError as err:
                raise ProtocolError(f'sweep {self.name!r} in {self.path} has {err}: give this one '
                                    f'another --name') from None
            data.setdefault('points', {})
            self._write(data)
        return data

    def record(self, key: str, outcome: dict) -> None:
        from benchmark.store import locked
        with locked(self.lock):
            data = self.read()
            data.setdefault('points', {})[key] = outcome
            self._write(data)

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(data, indent=2))  # unsorted: the grid's key order names the variants
        tmp.replace(self.path)


def point_state(point: Point, work_root: Path, manifest: dict) -> str:
    """``finished``, ``interrupted`` (a run folder left incomplete), ``failed`` (its last
    attempt in this sweep failed) or ``new``."""
    from benchmark.protocol import RESULT_FILE, STATE_FILE, run_folder, run_key
    folder = run_folder(work_root, point.cfg)
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        state = None
    if state and state.get('complete') and (folder / RESULT_FILE).is_file():
        return 'finished'
    if manifest.get('points', {}).get(run_key(point.cfg), {}).get('outcome') == 'failed':
        return 'failed'
    return 'interrupted' if folder.exists() else 'new'


def finished_result(point: Point, work_root: Path) -> dict:
    """The result file of a finished point's run folder (its run id, its metrics)."""
    from benchmark.protocol import RESULT_FILE, run_folder
    return json.loads((run_folder(work_root, point.cfg) / RESULT_FILE).read_text())


def tie_finished(uri: str, run_ids: list[str], sweep: str) -> None:
    """Tag runs finished before (by `bench run` or another sweep) as points of ``sweep``."""
    if not run_ids:
        return
    from benchmark import tracking
    c = tracking.client(uri)
    for run_id in run_ids:
        tracking.add_sweep(c, run_id, sweep)


# ----------------------------------------------------------------------------- workers


def threads_per_job(jobs: int) -> int:
    """CPU threads for each of ``jobs`` workers, so that together they do not oversubscribe."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()
    return max(1, (cores or 1) // max(jobs, 1))


def worker_env(jobs: int, slot: int, device: str) -> dict[str, str]:
    """The environment variables of worker ``slot`` of ``jobs``: its threads, its GPU."""
    threads = str(threads_per_job(jobs))
    env = {'OMP_NUM_THREADS': threads, 'MKL_NUM_THREADS': threads, 'BENCH_THREADS': threads}
    if device == 'cuda':
        visible = os.environ.get('CUDA_VISIBLE_DEVICES')
        gpus = visible.split(',') if visible else [str(i) for i in range(_gpu_count())]
        if gpus:
            env['CUDA_VISIBLE_DEVICES'] = gpus[slot % len(gpus)]
    return env


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count()


def point_spec(point: Point, sweep: str, work_root: Path, uri: str, device: str, amp: bool) -> dict:
    """What a worker needs to run a point: plain data, picklable and JSON-able."""
    from benchmark.protocol import run_key
    cfg = point.cfg
    resolution = dict(method=cfg.method, dataset=cfg.dataset.name, profile=cfg.profile,
                      train_dataset=cfg.fit_dataset['name'] if cfg.fit_dataset else None,
                      options=point.options, seed=point.seed, variant=point.variant)
    return dict(sweep=sweep, resolution=resolution, work_root=str(Path(work_root).resolve()),
                tracking_uri=uri, device=device, amp=amp, run_key=run_key(cfg))


def run_point(spec: dict) -> dict:
    """Run one point (in a worker process or an engine's job) and say how it ended.

    Returns ``{'outcome': 'finished', 'metrics': ..., 'run_id': ...}`` or
    ``{'outcome': 'failed', 'error': <one line>}``; never raises for the point's own failure.
    """
    threads = os.environ.get('BENCH_THREADS')
    try:
        import torch
        if threads:
            torch.set_num_threads(int(threads))
        from benchmark import console, tracking
        from benchmark.config import resolve_config
        from benchmark.protocol import Protocol
        cfg = resolve_config(**spec['resolution'])  # the config the sweep checked, rebuilt here
        with console.use(console.Console('verbose')):
            protocol = Protocol(cfg, Path(spec['work_root']), spec['tracking_uri'],
                                device=spec['device'], amp=spec['amp'], sweep=spec['sweep'])
            result = protocol.run()
        # a run finished before (by `bench run`, or another sweep) joins this sweep too
        tracking.add_sweep(tracking.client(spec['tracking_uri']), result['run_id'], spec['sweep'])
        return dict(outcome='finished', run_id=result['run_id'], metrics=result['metrics'])
    except Exception as err:  # noqa: BLE001 (a point's failure, whatever it is, is its outcome)
        import traceback
        traceback.print_exc()
        return dict(outcome='failed', error=f'{type(err).__name__}: {first_line(err)}')


def _die_with_parent() -> None:
    """In a worker: be killed when the sweep's process dies (a ``kill -9`` included), so no
    orphan keeps a point's run folder locked."""
    import ctypes
    import signal
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6', use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class LocalEngine:
    """Runs each point in a process of its own (``python -m benchmark.sweep``), ``jobs`` at once."""

    def __init__(self, jobs: int, device: str, logs: Path) -> None:
        self.jobs, self.device, self.logs = jobs, device, logs
        self.slots = list(range(jobs))

    def map(self, specs: list[dict], done) -> None:
        """Run every spec, calling ``done(spec, outcome)`` as each ends, one call at a time."""
        import threading
        lock = threading.Lock()  # the manifest's file lock is the process's, not a thread's

        def one(spec):
            with lock:
                slot = self.slots.pop()
            try:
                outcome = self._run(spec, slot)
            finally:
                with lock:
                    self.slots.append(slot)
            with lock:
                done(spec, outcome)

        with ThreadPoolExecutor(self.jobs) as pool:
            for future in [pool.submit(one, s) for s in specs]:
                future.result()

    def _run(self, spec: dict, slot: int) -> dict:
        self.logs.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r'[^A-Za-z0-9_.=,@-]', '_', spec['run_key'].replace('|', '_'))
        spec_file, result_file = self.logs / f'{stem}.spec.json', self.logs / f'{stem}.result.json'
        log_file = self.logs / f'{stem}.log'
        spec_file.write_text(json.dumps(spec))
        result_file.unlink(missing_ok=True)
        env = {**os.environ, **worker_env(self.jobs, slot, self.device)}
        with open(log_file, 'a') as log:
            code = subprocess.call([sys.executable, '-m', 'benchmark.sweep', str(spec_file),
                                    str(result_file)], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, preexec_fn=_die_with_parent)
        try:
            return json.loads(result_file.read_text())
        except (OSError, ValueError):
            return dict(outcome='failed', error=f'worker exited with status {code} before it '
                                                f'reported (log: {log_file})')


class SubmititEngine:
    """Hands the points to submitit: its local executor, or Slurm with a partition.

    Args:
        jobs (int): Points running at once (the executor's array parallelism).
        device (str): ``'cpu'`` or ``'cuda'`` (one GPU per job).
        logs (Path): submitit's folder (its pickles and job logs).
        partition (str, optional): A Slurm partition; None runs on this machine. Defaults to None.
    """

    def __init__(self, jobs: int, device: str, logs: Path, partition: str | None = None) -> None:
        try:
            import submitit
        except ImportError:
            raise ProtocolError('--engine submitit needs submitit: pip install submitit') from None
        self.jobs, self.device = jobs, device
        if partition:
            self.executor = submitit.AutoExecutor(folder=str(logs), cluster='slurm')
            self.executor.update_parameters(slurm_partition=partition, slurm_array_parallelism=jobs,
                                            gpus_per_node=1 if device == 'cuda' else 0,
                                            cpus_per_task=threads_per_job(1), timeout_min=24 * 60)
        else:
            self.executor = submitit.LocalExecutor(folder=str(logs))
            self.executor.update_parameters(timeout_min=24 * 60)

    def map(self, specs: list[dict], done) -> None:
        for start in range(0, len(specs), self.jobs):  # the local executor has no parallelism cap
            batch = specs[start:start + self.jobs]
            jobs = []
            for slot, spec in enumerate(batch):
                with _environment(worker_env(self.jobs, slot, self.device)):
                    jobs.append(self.executor.submit(run_point, spec))
            for spec, job in zip(batch, jobs):
                try:
                    outcome = job.result()
                except Exception as err:  # noqa: BLE001 (the job died: its outcome)
                    outcome = dict(outcome='failed', error=f'submitit job {job.job_id}: {first_line(err)}')
                done(spec, outcome)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the block (the local executor's jobs inherit them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


ENGINES = ('local', 'submitit')


def build_engine(name: str, jobs: int, device: str, logs: Path, partition: str | None = None):
    if name == 'local':
        return LocalEngine(jobs, device, logs)
    if name == 'submitit':
        return SubmititEngine(jobs, device, logs, partition)
    raise UnknownNameError(closest(name, list(ENGINES), 'engine'))


def main(argv: list[str]) -> int:
    """A worker: ``python -m benchmark.sweep SPEC.json RESULT.json``."""
    spec_file, result_file = Path(argv[0]), Path(argv[1])
    outcome = run_point(json.loads(spec_file.read_text()))
    tmp = result_file.with_suffix('.tmp')
    tmp.write_text(json.dumps(outcome, default=float))
    tmp.replace(result_file)
    return 0 if outcome['outcome'] == 'finished' else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))

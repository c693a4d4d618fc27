"""MLflow tracking: the client a run records through, its provenance, its curves hook.

Where runs go (the default SQLite store and its artifact root) is ``benchmark/store.py``; what
a run writes is fixed in ``benchmark/tracking_schema.md``.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from mmengine.hooks import Hook

from benchmark.errors import TrackingError
from benchmark.registry import HOOKS
from benchmark.store import (check_reachable, default_artifact_root,  # noqa: F401 (re-exported)
                             resolve_tracking_uri, sqlite_file, store_lock)

TAG = 'bench.'
PACKAGES = ('raprivacy-bench', 'torch', 'mmaction2', 'mmengine', 'mmcv-lite', 'mlflow', 'numpy',
            'scikit-learn', 'opencv-python')


def client(uri: str):
    """An MlflowClient on ``uri``, checked to answer; one-line TrackingError otherwise."""
    from mlflow.tracking import MlflowClient
    check_reachable(uri)  # in seconds, before any training, rather than after MLflow's retries
    database = sqlite_file(uri)
    if database is not None:  # the default store is created with the first run
        database.parent.mkdir(parents=True, exist_ok=True)
    # No mlflow.set_tracking_uri: it exports MLFLOW_TRACKING_URI, which would send every later
    # store lookup in this process (another work dir, a test) to this store.
    try:
        with store_lock(uri):  # the first client of a fresh SQLite file creates its tables
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)
    except Exception as err:  # any failure here means no run can be recorded
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrackingError(f'tracking store {uri} cannot be reached ({first[:200]}): start the '
                            f'server or pass another --tracking-uri') from None
    return c


def experiment_id(c, name: str, uri: str) -> str:
    """The experiment ``name``, created if missing (by this process or a parallel one)."""
    from mlflow.exceptions import MlflowException
    exp = c.get_experiment_by_name(name)
    if exp is None:
        root = default_artifact_root(uri)
        try:
            return c.create_experiment(name, artifact_location=f'{root}/{name}' if root else None)
        except MlflowException as err:
            if err.error_code != 'RESOURCE_ALREADY_EXISTS':
                raise
            exp = c.get_experiment_by_name(name)  # a run started at the same time created it
    if exp.lifecycle_stage == 'deleted':
        c.restore_experiment(exp.experiment_id)
    return exp.experiment_id


def add_sweep(c, run_id: str, sweep: str) -> None:
    """Add ``sweep`` to a parent run's ``bench.sweep`` tag: the names of the sweeps it belongs to,
    comma-separated (a run finished once counts in every sweep that asks for its point)."""
    names = c.get_run(run_id).data.tags.get(TAG + 'sweep', '')
    if sweep not in names.split(','):
        c.set_tag(run_id, TAG + 'sweep', ','.join(n for n in (names, sweep) if n))


def git_state(repo: Path | None = None) -> tuple[str, bool]:
    """Commit of the suite's checkout and whether it has uncommitted changes."""
    repo = repo or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                                    cwd=repo, capture_output=True, text=True,
                                    timeout=10).stdout.strip())
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return 'unknown', False


def device_name(device: str) -> str:
    import torch
    if device.startswith('cuda'):
        return f'{device} {torch.cuda.get_device_name(0)}'
    return f'cpu ({os.cpu_count()} cores)'


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[f'version.{name}'] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out['version.python'] = platform.python_version()
    return out


def numerics() -> dict[str, str]:
    """What changes a run's floating-point results on the same code and data: torch's intra-op
    thread count (reductions split differently), torch's version and its BLAS and CPU kernels,
    and whether this thread flushes denormal floats to zero (benchmark/amp.py), read off a
    product that is denormal unless flushed."""
    import re

    import torch

    from benchmark.amp import denormals_flushed
    config = torch.__config__.show()
    blas = re.search(r'BLAS_INFO=(\w+)', config)
    mkl = re.search(r'Math Kernel Library Version ([\w.\-]+)', config)
    cpu = re.search(r'CPU capability usage: (\w+)', config)
    parts = [blas.group(1) if blas else 'unknown']
    if mkl and parts[0] == 'mkl':
        parts[0] += f' {mkl.group(1)}'
    if cpu:
        parts.append(cpu.group(1))
    return {'threads': str(torch.get_num_threads()), 'torch': torch.__version__,
            'blas': ', '.join(parts), 'denormals': 'flushed' if denormals_flushed() else 'kept'}


def provenance(device: str = 'cpu') -> dict[str, str]:
    """Commit, machine, numerics and command of this process: recorded by every run and
    benchmark."""
    commit, dirty = git_state()
    return {'commit': commit, 'dirty': str(dirty).lower(), 'device': device_name(device),
            'host': platform.node(), 'command': shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            'date': time.strftime('%Y-%m-%dT%H:%M:%S%z'), **numerics()}


@HOOKS.register_module()
class MLflowStageHook(Hook):
    """Streams a stage's training curves (losses, learning rate) to its MLflow child run.

    Args:
        tracking_uri (str): The store.
        run_id (str): The stage's child run.
        interval (int): Log every this many iterations. Defaults to 5.
    """

    priority = 'LOW'

    def __init__(self, tracking_uri: str, run_id: str, interval: int = 5) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.interval = interval
        self._pending: list = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        from mlflow.entities import Metric
        step = runner.iter + 1
        if step % self.interval and step != runner.max_iters:
            return
        now = int(time.time() * 1000)
        for name, value in (outputs or {}).items():
            key = 'train_loss' if name == 'loss' else f'train_{name}'
            value = value.detach() if hasattr(value, 'detach') else value
            self._pending.append(Metric(key, float(value), now, step))
        lrs = runner.optim_wrapper.get_lr()
        for group, values in lrs.items():
            key = 'lr' if group == 'lr' else f'lr_{group.removesuffix(".lr")}'
            self._pending.append(Metric(key, float(values[0]), now, step))
        if len(self._pending) >= 200:
            self.flush()

    def after_train_epoch(self, runner) -> None:
        self.flush()

    def after_train(self, runner) -> None:
        self.flush()

    def flush(self) -> None:
        """Send the curves logged so far (also called when a stage stops early)."""
        if not self._pending:
            return
        from mlflow.tracking import MlflowClient
        MlflowClient(self.tracking_uri).log_batch(self.run_id, metrics=self._pending)
        self._pending = []

"""Where runs go: the tracking URI and the artifact root of the default store.

Default store: a SQLite file ``<work root>/mlflow.db`` with artifacts beside it in
``<work root>/mlartifacts``; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` selects a server
instead. Kept free of mlflow and mmengine imports so that reading commands start fast.

Runs that start together share the store: the first one creates its tables (MLflow's
migrations, which break when two processes run them at once), so opening a SQLite store
happens under a lock file beside it, ``mlflow.db.lock`` (:func:`store_lock`).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path


def resolve_tracking_uri(tracking_uri: str | None, work_root: Path) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the SQLite file in the work root."""
    uri = tracking_uri or os.environ.get('MLFLOW_TRACKING_URI')
    if uri:
        return uri
    work_root.mkdir(parents=True, exist_ok=True)
    return f'sqlite:///{(work_root / "mlflow.db").resolve()}'


def default_artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go in ``mlartifacts`` beside the database file."""
    if uri.startswith('sqlite:///'):
        return (Path(uri[len('sqlite:///'):]).parent / 'mlartifacts').resolve().as_uri()
    return None


@contextlib.contextmanager
def locked(path: Path, wait: bool = True):
    """Hold an exclusive POSIX record lock (``lockf``) on ``path`` (created if missing) for the block.

    The lock belongs to this process: the kernel releases it when the block ends or the process
    dies, ``kill -9`` included, and processes forked meanwhile (data loader workers, decoding
    pools) do not hold it, so a killed run's lingering workers never block the rerun (an
    ``flock`` would stay held through them). The holder writes its pid in the file. With
    ``wait=False`` a lock held by another process raises ``BlockingIOError`` naming that pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'a+') as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            f.seek(0)
            raise BlockingIOError(f'{path} is held by process {f.read().strip() or "?"}') from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)


def store_lock(uri: str):
    """The lock a SQLite store is opened under (a no-op for servers, which migrate on their own)."""
    if uri.startswith('sqlite:///'):
        return locked(Path(uri[len('sqlite:///'):] + '.lock'))
    return contextlib.nullcontext()

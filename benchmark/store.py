"""Where runs go: the tracking URI, the artifact root of the default store, and the checks
every command makes before it hands a store to MLflow.

Default store: a SQLite file ``<work root>/mlflow.db`` with artifacts beside it in
``<work root>/mlartifacts``; ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` selects a server
instead. Kept free of mlflow and mmengine imports so that reading commands start fast and a
store that cannot be used is refused in seconds, before anything heavy is imported:

- ``check_reachable`` (every command): an ``http(s)://`` store must answer one HTTP request
  within 3 s, and MLflow's own requests then give up after 10 s without retries (its defaults,
  120 s and 7 retries with back-off, take minutes to report a dead server);
- ``check_readable`` (commands that only read: ``bench report``, ``ui``, ``anonymize --run``):
  a ``sqlite:///`` store must be an existing SQLite file, so that nothing creates a store where
  none was, or writes MLflow's tables into a file that is not one.

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
from urllib.parse import unquote

from benchmark.errors import TrackingError

PROBE_TIMEOUT_S = 3.0
_SQLITE_HEADER = b'SQLite format 3\x00'


def resolve_tracking_uri(tracking_uri: str | None, work_root: Path) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the SQLite file in the work root.

    Nothing is created here: a run creates its store when it first writes to it.
    """
    uri = tracking_uri or os.environ.get('MLFLOW_TRACKING_URI')
    if uri:
        return uri
    return f'sqlite:///{(work_root / "mlflow.db").resolve()}'


def default_artifact_root(uri: str) -> str | None:
    """Artifacts of a SQLite store go in ``mlartifacts`` beside the database file."""
    if uri.startswith('sqlite:///'):
        return (sqlite_file(uri).parent / 'mlartifacts').resolve().as_uri()
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


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI, None for any other URI."""
    if not uri.startswith('sqlite:///'):
        return None
    return Path(unquote(uri[len('sqlite:///'):]))


def check_reachable(uri: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Refuse an ``http(s)://`` store that does not answer within ``timeout`` seconds.

    Any HTTP answer counts, an error status included (an auth layer or a proxy in front of the
    server answers too); a refused connection, a name that does not resolve or silence does not.

    Raises:
        TrackingError: one line naming the store and the reason.
    """
    if not uri.startswith(('http://', 'https://')):
        return
    import ssl
    import urllib.error
    import urllib.request
    context = None
    if uri.startswith('https://'):  # MLflow's own TLS settings apply to the probe as well
        if os.environ.get('MLFLOW_TRACKING_INSECURE_TLS', '').lower() == 'true':
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(
                cafile=os.environ.get('MLFLOW_TRACKING_SERVER_CERT_PATH') or None)
    try:
        urllib.request.urlopen(uri, timeout=timeout, context=context).close()
    except urllib.error.HTTPError:
        pass  # an answer
    except (OSError, ValueError) as err:  # URLError, refused, reset, timed out, bad URL
        reason = getattr(err, 'reason', None) or err
        if isinstance(reason, TimeoutError) or 'timed out' in str(reason):
            reason = f'no answer within {timeout:g} s'
        raise TrackingError(f'tracking store {uri} cannot be reached ({reason}): start the server '
                            f'or pass another --tracking-uri') from None
    os.environ.setdefault('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '0')
    os.environ.setdefault('MLFLOW_HTTP_REQUEST_TIMEOUT', '10')


def check_readable(uri: str) -> None:
    """Refuse a store a reading command cannot read, without creating or changing anything.

    ``sqlite:///``: the file must exist and be a SQLite database (an empty file is not);
    ``http(s)://``: see ``check_reachable``; other URIs are left to MLflow.

    Raises:
        TrackingError: one line naming the store and what to do.
    """
    check_reachable(uri)
    path = sqlite_file(uri)
    if path is None:
        return
    if not path.is_file():
        raise TrackingError(f'no tracking store at {path}: run `bench run` first, or pass the '
                            f'store with --work-dir or --tracking-uri')
    try:
        with open(path, 'rb') as f:
            header = f.read(len(_SQLITE_HEADER))
    except OSError as err:
        raise TrackingError(f'tracking store {path} cannot be read ({err.strerror})') from None
    if header != _SQLITE_HEADER:
        what = 'an empty file' if not header else 'not a SQLite database'
        raise TrackingError(f'{path} is not an MLflow store ({what}): pass the mlflow.db a '
                            f'`bench run` wrote, with --work-dir or --tracking-uri')

"""Read an MLflow SQLite store directly, for ``bench report``.

The default store of every ``bench run`` is a SQLite file (``benchmark/tracking.py``). Going
through ``MlflowClient`` costs about 3 s on a 500-run store before anything is drawn: importing
mlflow, opening its SQLAlchemy session (schema checks included) and building one entity object
per tag, param and metric. The same rows come out of five ``SELECT`` statements in a fraction
of that, so ``runs.read_store`` reads ``sqlite:///`` URIs here and everything else (an MLflow
server, a file store) through the client.

What is read is what the client would return, and a test compares the two on one store:

- experiments and runs whose ``lifecycle_stage`` is ``active`` (the client's default view);
  experiments of the ``default`` workspace where the schema has workspaces;
- a run's metrics are its ``latest_metrics`` rows (the client's ``run.data.metrics``), its
  histories the ``metrics`` rows; a value logged as NaN is stored as 0 with ``is_nan`` set
  and read back as NaN;
- run names from ``runs.name``, times in ms since the epoch.

The tables and columns read are those of mlflow 3.17.2 (pinned in pyproject.toml). A store
with MLflow's tables but not these columns raises ``SchemaMismatch`` and the caller falls back
to the client. A file that is not a SQLite database, is damaged, or holds none of MLflow's tables
raises a one-line ``TrackingError`` instead: the client would fail with a traceback on it, or
write a new store's tables into it.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

from benchmark.errors import TrackingError
from benchmark.store import sqlite_file

# table -> columns this module reads
_NEEDED = {
    'experiments': {'experiment_id', 'name', 'lifecycle_stage'},
    'runs': {'run_uuid', 'name', 'status', 'start_time', 'end_time', 'lifecycle_stage',
             'artifact_uri', 'experiment_id'},
    'tags': {'key', 'value', 'run_uuid'},
    'params': {'key', 'value', 'run_uuid'},
    'latest_metrics': {'key', 'value', 'is_nan', 'run_uuid'},
    'metrics': {'key', 'value', 'step', 'is_nan', 'run_uuid'},
}
_CHUNK = 500  # ids per IN (...) list, well under SQLite's variable limit


class SchemaMismatch(RuntimeError):
    """The file is not an MLflow store this module can read; use the MLflow client instead."""


def sqlite_path(tracking_uri: str | None) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI, None for any other URI."""
    return sqlite_file(tracking_uri) if tracking_uri else None


def local_artifact_dir(artifact_uri: str) -> Path | None:
    """The folder of a ``file://`` (or plain path) artifact URI; None for remote artifact stores."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme == 'file':
        return Path(unquote(parsed.path))
    if parsed.scheme == '' and artifact_uri:
        return Path(artifact_uri)
    return None


def _value(value: float, is_nan) -> float:
    return float('nan') if is_nan else float(value)


class SqliteStore:
    """Read-only access to one MLflow SQLite file.

    Args:
        path (Path): The ``mlflow.db`` file.

    Raises:
        FileNotFoundError: no such file (a one-line message naming it).
        TrackingError: the file is not a SQLite database, is damaged or holds no MLflow table
            (one line naming it; also raised by a query that meets a damaged page).
        SchemaMismatch: the file lacks a table or column this reader needs.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f'tracking store {path}: no such file; run `bench run` first '
                                    f'or pass the store with --tracking-uri sqlite:///PATH')
        # Read-only and shared: a `bench run` may be writing to the same file.
        self.path = path
        self.db = sqlite3.connect(f'file:{path}?mode=ro', uri=True, timeout=30)
        try:
            columns = {table: {row[1] for row in self._query(f'PRAGMA table_info("{table}")')}
                       for table in _NEEDED}
        except TrackingError:
            self.db.close()
            raise
        if not any(columns.values()):  # the MLflow client would write its tables into it
            self.db.close()
            raise TrackingError(f'{path} holds no MLflow tables: it is not a tracking store; pass '
                                f'the mlflow.db a `bench run` wrote')
        missing = [f'{t}.{c}' for t, need in _NEEDED.items() for c in sorted(need - columns[t])]
        if missing:
            self.db.close()
            raise SchemaMismatch(f'{path}: not an MLflow 3.17 store (no {", ".join(missing)})')
        self._workspaces = 'workspace' in columns['experiments']

    def close(self) -> None:
        self.db.close()

    def _query(self, sql: str, parameters=()) -> list[tuple]:
        """All rows of one statement; a damaged or foreign file is a one-line TrackingError."""
        try:
            return self.db.execute(sql, parameters).fetchall()
        except sqlite3.DatabaseError as err:  # "file is not a database", "disk image is malformed"
            raise TrackingError(f'tracking store {self.path} cannot be read ({err}): it is not an '
                                f'MLflow store or it is damaged') from None

    def __enter__(self) -> 'SqliteStore':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def experiments(self) -> dict[str, str]:
        """Experiment id (as text, like the client's) -> name, active experiments only."""
        where = "lifecycle_stage = 'active'" + (" AND workspace = 'default'" if self._workspaces else '')
        return {str(i): name for i, name in self._query(
            f'SELECT experiment_id, name FROM experiments WHERE {where}')}

    def runs_with_tag(self, experiment_ids, key: str, value: str) -> list[dict]:
        """Active runs of the experiments whose tag ``key`` equals ``value``: their info columns."""
        found = []
        for ids in _chunks([int(i) for i in experiment_ids]):
            marks = ','.join('?' * len(ids))
            found += self._query(
                f'SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, '
                f'r.artifact_uri FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid '
                f"WHERE r.lifecycle_stage = 'active' AND r.experiment_id IN ({marks}) "
                f'AND t.key = ? AND t.value = ?', (*ids, key, value))
        names = ('run_id', 'experiment_id', 'run_name', 'status', 'start_time', 'end_time',
                 'artifact_uri')
        return [dict(zip(names, (r[0], str(r[1]), *r[2:]))) for r in found]

    def tags(self, run_ids) -> dict[str, dict[str, str]]:
        return self._key_values('tags', run_ids)

    def params(self, run_ids) -> dict[str, dict[str, str]]:
        return self._key_values('params', run_ids)

    def latest_metrics(self, run_ids) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {r: {} for r in run_ids}
        for ids in _chunks(list(run_ids)):
            marks = ','.join('?' * len(ids))
            for run, key, value, is_nan in self._query(
                    f'SELECT run_uuid, key, value, is_nan FROM latest_metrics '
                    f'WHERE run_uuid IN ({marks})', ids):
                out[run][key] = _value(value, is_nan)
        return out

    def histories(self, run_ids, keys) -> list[tuple[str, str, int, float]]:
        """(run_id, key, step, value) of every logged point of ``keys`` in ``run_ids``."""
        keys = list(keys)
        if not keys:
            return []
        rows = []
        key_marks = ','.join('?' * len(keys))
        for ids in _chunks(sorted(run_ids)):
            marks = ','.join('?' * len(ids))
            rows += [(run, key, int(step), _value(value, is_nan)) for run, key, step, value, is_nan in
                     self._query(f'SELECT run_uuid, key, step, value, is_nan FROM metrics '
                                     f'WHERE run_uuid IN ({marks}) AND key IN ({key_marks})',
                                     (*ids, *keys))]
        return rows

    def artifact_uris(self, run_ids) -> dict[str, str]:
        out = {}
        for ids in _chunks(list(run_ids)):
            marks = ','.join('?' * len(ids))
            out.update(self._query(
                f'SELECT run_uuid, artifact_uri FROM runs WHERE run_uuid IN ({marks})', ids))
        return out

    def _key_values(self, table: str, run_ids) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {r: {} for r in run_ids}
        for ids in _chunks(list(run_ids)):
            marks = ','.join('?' * len(ids))
            for run, key, value in self._query(
                    f'SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})', ids):
                out[run][key] = value if value is not None else ''
        return out


def _chunks(items: list) -> list[list]:
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]

"""Run records: read the MLflow store, export ``results/runs.csv``, load it back, pick the runs that count.

What a run writes is fixed by ``benchmark/tracking_schema.md`` (protocol version 1); this module
reads exactly that. Results are data first (benchopt's result files, timm's ``results/*.csv``):

- ``runs.csv``: one row per parent run read (complete or not), with its identity (``run_id``,
  ``experiment``, ``start_time``, ...), one column per ``bench.*`` tag (``method``, ``dataset``,
  ``profile``, ``seed``, ``commit``, ``device``, ...), ``param.<name>`` per logged parameter and,
  for every logged metric, ``metric.<name>`` beside ``direction.<name>`` (``higher`` / ``lower``
  from ``benchmark.metrics.METRIC_SPECS``, empty where a metric declares none, e.g. times).
- ``curves.csv``: the step-wise training histories (``train_*``) of the stage child runs
  of the runs that count: ``parent_run_id, run_id, stage, metric, step, value``.
- ``predictions/<run_id>/{action,privacy}.npz``: the per-video test outputs of each counting
  run (video ids, labels, probabilities), for the report's intervals and paired tests.
- ``samples/<method>_<dataset>_<profile>.npz``: the anonymized test frames of one counting run
  (arrays ``frames``, ``video_ids``, ``run_id``) and ``samples/input_<dataset>_<profile>.npz``
  the same clips before anonymization, for the frame comparison grid; a sweep's points have
  theirs in ``samples/sweep_<name>/`` (``bench report --sweep``'s frame grid).

Which runs count (``counting_runs``): for each (method, train_dataset, dataset, profile, seed),
the newest run by start time whose ``bench.complete`` tag is ``true``, among the runs on the
dataset's current data: the ``bench.data_version`` of its newest complete run (a run without
the tag is on the version before the tag existed) judged by the protocol version of that run.
Runs on older data or an older protocol never mix in.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import first_line
from benchmark.metric_specs import METRIC_SPECS
from benchmark.report import sqlite_store

# runs.csv column -> the bench.* tag it holds (tracking_schema.md, parent run).
TAG_COLUMNS = {
    'method': 'bench.method', 'table_name': 'bench.table_name', 'anonymizer': 'bench.anonymizer',
    'privacy_learning': 'bench.privacy_learning', 'readable': 'bench.readable',
    'train_dataset': 'bench.train_dataset', 'dataset': 'bench.dataset',
    'profile': 'bench.profile', 'seed': 'bench.seed', 'run_key': 'bench.run_key',
    'commit': 'bench.commit', 'dirty': 'bench.dirty', 'device': 'bench.device',
    'host': 'bench.host', 'command': 'bench.command',
    'protocol_version': 'bench.protocol_version', 'complete': 'bench.complete',
    'encoder': 'bench.encoder', 'data_version': 'bench.data_version',
    'threads': 'bench.threads', 'torch': 'bench.torch', 'blas': 'bench.blas',
    'sweep': 'bench.sweep', 'failure': 'bench.failure', 'precision': 'bench.precision',
    'denormals': 'bench.denormals',
    'action_init': 'bench.action_init', 'privacy_init': 'bench.privacy_init',
}
ID_COLUMNS = ('run_id', 'experiment', 'run_name', 'status', 'start_time', 'end_time')
KEY = ('method', 'train_dataset', 'dataset', 'profile', 'seed')
CURVE_COLUMNS = ('parent_run_id', 'run_id', 'stage', 'metric', 'step', 'value')

_PAGE = 5000  # runs per search page; SQL stores accept up to 50000


def _iso(ms: int | None) -> str:
    if ms is None:
        return ''
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def _direction(metric: str) -> str:
    spec = METRIC_SPECS.get(metric)
    if spec is None:
        return ''
    return 'higher' if spec.higher_is_better else 'lower'


def normalize(runs: pd.DataFrame) -> pd.DataFrame:
    """Fix the columns, their order and dtypes, so the store and runs.csv give equal frames.

    Tags, identity and params are text ('' when absent), metrics float (NaN when absent),
    each metric followed by its direction; rows ordered by start time, then run id.
    """
    runs = runs.copy()
    for column in (*ID_COLUMNS, *TAG_COLUMNS):
        if column not in runs:
            runs[column] = ''
    metrics = sorted(c[len('metric.'):] for c in runs.columns if c.startswith('metric.'))
    params = sorted(c for c in runs.columns if c.startswith('param.'))
    text = [*ID_COLUMNS, *TAG_COLUMNS, *params]
    runs[text] = runs[text].fillna('').astype(str)
    # runs recorded before bench.precision: bf16 only where their command asked for --amp
    untagged = runs.precision == ''
    runs.loc[untagged, 'precision'] = [
        'bf16' if '--amp' in command.split() else 'fp32' for command in runs.command[untagged]]
    ordered = list(text)
    for metric in metrics:
        runs[f'metric.{metric}'] = pd.to_numeric(runs[f'metric.{metric}'], errors='coerce').astype(float)
        runs[f'direction.{metric}'] = _direction(metric)
        ordered += [f'metric.{metric}', f'direction.{metric}']
    runs = runs[ordered]
    return runs.sort_values(['start_time', 'run_id'], kind='stable').reset_index(drop=True)


def _client(tracking_uri: str | None):
    from mlflow.tracking import MlflowClient  # mlflow takes ~2 s to import: only when reading a store
    return MlflowClient(tracking_uri)


def _experiments(client) -> dict[str, str]:
    """Experiment id -> name, one experiment per evaluation dataset."""
    found: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        found.update({e.experiment_id: e.name for e in page})
        token = page.token
        if not token:
            break
    return found


def _search(client, experiment_ids: list[str], filter_string: str) -> list:
    runs, token = [], None
    while experiment_ids:
        page = client.search_runs(experiment_ids, filter_string=filter_string,
                                  max_results=_PAGE, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    return runs


def read_store(tracking_uri: str | None, datasets: list[str] | None = None,
               profiles: list[str] | None = None) -> pd.DataFrame:
    """Every parent run of the store (one search per page, no per-run calls), normalized.

    A ``sqlite:///`` store is read with ``sqlite3`` (``sqlite_store``), any other through
    ``MlflowClient``; both give the same frame.

    Args:
        tracking_uri (str, optional): MLflow tracking URI. Defaults to MLflow's own default.
        datasets (list of str, optional): Evaluation datasets (= experiment names) to read.
            Defaults to all.
        profiles (list of str, optional): Profiles to read. Defaults to all.
    """
    rows = _sqlite_call(tracking_uri, lambda store: _parent_rows_sqlite(store, datasets))
    if rows is None:
        rows = _parent_rows_client(tracking_uri, datasets)
    runs = normalize(pd.DataFrame(rows))
    if profiles:
        runs = runs[runs.profile.isin(profiles)]
    return runs.reset_index(drop=True)


def _sqlite_call(tracking_uri: str | None, read):
    """``read(SqliteStore)`` for a ``sqlite:///`` URI; None where the client must be used."""
    path = sqlite_store.sqlite_path(tracking_uri)
    if path is None:
        return None
    try:
        with sqlite_store.SqliteStore(path) as store:
            return read(store)
    except sqlite_store.SchemaMismatch:
        return None


def _parent_row(info: dict, experiments: dict, tags: dict, params: dict, metrics: dict) -> dict:
    row = {'run_id': info['run_id'], 'experiment': experiments.get(info['experiment_id'], ''),
           'run_name': info['run_name'] or '', 'status': info['status'],
           'start_time': _iso(info['start_time']), 'end_time': _iso(info['end_time'])}
    row.update({column: tags.get(tag, '') for column, tag in TAG_COLUMNS.items()})
    row.update({f'param.{k}': v for k, v in params.items()})
    row.update({f'metric.{k}': v for k, v in metrics.items()})
    return row


def _parent_rows_sqlite(store, datasets: list[str] | None) -> list[dict]:
    experiments = _only(store.experiments(), datasets)
    found = store.runs_with_tag(list(experiments), 'bench.kind', 'parent')
    ids = [r['run_id'] for r in found]
    tags, params, metrics = store.tags(ids), store.params(ids), store.latest_metrics(ids)
    return [_parent_row(r, experiments, tags[r['run_id']], params[r['run_id']], metrics[r['run_id']])
            for r in found]


def _parent_rows_client(tracking_uri: str | None, datasets: list[str] | None) -> list[dict]:
    client = _client(tracking_uri)
    experiments = _only(_experiments(client), datasets)
    found = _search(client, list(experiments), "tags.`bench.kind` = 'parent'")
    return [_parent_row({'run_id': r.info.run_id, 'experiment_id': r.info.experiment_id,
                         'run_name': r.info.run_name, 'status': r.info.status,
                         'start_time': r.info.start_time, 'end_time': r.info.end_time},
                        experiments, r.data.tags, r.data.params, r.data.metrics) for r in found]


def _only(experiments: dict[str, str], datasets: list[str] | None) -> dict[str, str]:
    if datasets:
        return {i: n for i, n in experiments.items() if n in set(datasets)}
    return experiments


def data_label(dataset: str, version) -> str:
    """``vp_synth generator 2, protocol 2``; runs from before the data tag existed are
    ``(unversioned)``."""
    version = version if isinstance(version, str) else ''
    if not version or version.startswith(','):
        version = '(unversioned)' + version
    return f'{dataset} {version}'


def data_versions(runs: pd.DataFrame) -> pd.Series:
    """What a run's numbers rest on: its data version and the protocol version that judged it.

    Runs on another basis are not comparable: a new vp_synth generator changes the videos, a
    new protocol version the target models or the metrics.
    """
    column = (lambda name: runs[name].fillna('').astype(str) if name in runs
              else pd.Series('', index=runs.index))
    protocol = column('protocol_version')
    return column('data_version') + protocol.where(protocol == '', ', protocol ' + protocol)


def older_data(runs: pd.DataFrame) -> pd.DataFrame:
    """Complete runs left out because their dataset has newer data or a newer protocol version
    (see the module docstring)."""
    complete = runs[runs.complete.str.lower() == 'true']
    version = data_versions(complete)
    newest = complete.assign(_v=version).sort_values(['start_time', 'run_id'], kind='stable')
    current = newest.groupby('dataset', sort=False)._v.last()
    return complete[version.values != complete.dataset.map(current).values]


def counting_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The newest complete run of each (method, train_dataset, dataset, profile, seed), on
    its dataset's current data version."""
    complete = runs[runs.complete.str.lower() == 'true']
    complete = complete.drop(older_data(runs).index)
    newest = complete.sort_values(['start_time', 'run_id'], kind='stable').groupby(
        list(KEY), sort=False).tail(1)
    return newest.sort_values(['start_time', 'run_id'], kind='stable').reset_index(drop=True)


def stopped_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that stopped for a stated reason (MLflow status FAILED with ``bench.failure``, a fit
    its collapse guard stopped) and that no later complete run of the same key replaced: the
    seeds a table is missing for a reason, which its notes name."""
    failed = runs[(runs.status == 'FAILED') & (runs.failure.fillna('') != '')]
    if failed.empty:
        return failed
    complete = runs[runs.complete.str.lower() == 'true']
    latest = complete.groupby(list(KEY), sort=False).start_time.max()
    later = [latest.get(tuple(r[k] for k in KEY), '') > r['start_time'] for r in failed.to_dict('records')]
    failed = failed[[not x for x in later]]
    return failed.sort_values(['start_time', 'run_id'], kind='stable').groupby(list(KEY), sort=False).tail(1)


def slim(runs: pd.DataFrame) -> pd.DataFrame:
    """Identity, tags and metrics only: tables and plots never read params or directions,
    and every pandas filter copies every column."""
    keep = [c for c in runs.columns if not c.startswith(('param.', 'direction.'))
            and c not in ('command', 'host', 'run_key', 'anonymizer', 'encoder', 'end_time')]
    return runs[keep]


def read_curves(tracking_uri: str | None, parents: pd.DataFrame,
                cached: pd.DataFrame | None = None) -> pd.DataFrame:
    """Training histories (``train_*``) of the stage child runs of ``parents``, long format.

    A SQLite store answers in one query per 500 runs; any other store (an MLflow server) is
    asked run by run. Histories of a complete run never change, so the parents already in
    ``cached`` (a previous ``curves.csv``) are taken from it and not asked again.
    """
    if cached is not None:
        cached = cached[cached.parent_run_id.isin(set(parents.run_id))]
        parents = parents[~parents.run_id.isin(set(cached.parent_run_id))]
        if parents.empty:
            return normalize_curves(cached)
    wanted, names = set(parents.run_id), set(parents.experiment)
    found = _sqlite_call(tracking_uri, lambda store: _histories_sqlite(store, wanted, names))
    if found is None:
        found = _histories_client(tracking_uri, wanted, names)
    meta, rows = found
    curves = pd.DataFrame(rows, columns=['run_id', 'metric', 'step', 'value'])
    curves.insert(0, 'parent_run_id', curves.run_id.map({r: m[0] for r, m in meta.items()}))
    curves.insert(2, 'stage', curves.run_id.map({r: m[1] for r, m in meta.items()}))
    if cached is not None and len(cached):
        curves = pd.concat([cached, curves], ignore_index=True)
    return normalize_curves(curves)


def _stage_children(children, wanted: set[str]):
    """(child -> (parent, stage), train_* key -> children) of the children of ``wanted``.

    ``children`` yields (run_id, tags, metric keys) of stage runs.
    """
    meta: dict[str, tuple[str, str]] = {}
    keys: dict[str, list[str]] = {}
    for run_id, tags, metric_keys in children:
        parent = tags.get('mlflow.parentRunId', '')
        if parent not in wanted:
            continue
        meta[run_id] = (parent, tags.get('bench.stage', ''))
        for key in metric_keys:
            if key.startswith('train_'):
                keys.setdefault(key, []).append(run_id)
    return meta, keys


def _histories_sqlite(store, wanted: set[str], experiment_names: set[str]):
    experiments = {i: n for i, n in store.experiments().items() if n in experiment_names}
    ids = [r['run_id'] for r in store.runs_with_tag(list(experiments), 'bench.kind', 'stage')]
    tags, metrics = store.tags(ids), store.latest_metrics(ids)
    meta, keys = _stage_children(((r, tags[r], metrics[r]) for r in ids), wanted)
    return meta, store.histories(meta, sorted(keys))


def _histories_client(tracking_uri: str | None, wanted: set[str], experiment_names: set[str]):
    client = _client(tracking_uri)
    experiments = {i: n for i, n in _experiments(client).items() if n in experiment_names}
    children = _search(client, list(experiments), "tags.`bench.kind` = 'stage'")
    meta, keys = _stage_children(((c.info.run_id, c.data.tags, c.data.metrics) for c in children),
                                 wanted)
    rows = [(run_id, key, m.step, m.value) for key, run_ids in keys.items()
            for run_id in run_ids for m in client.get_metric_history(run_id, key)]
    return meta, rows


def normalize_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Column order, dtypes and row order of a curves frame, whatever its source."""
    curves = curves[list(CURVE_COLUMNS)].copy()
    curves[['parent_run_id', 'run_id', 'stage', 'metric']] = curves[
        ['parent_run_id', 'run_id', 'stage', 'metric']].astype(str)
    curves['step'] = curves['step'].astype(np.int64)
    curves['value'] = curves['value'].astype(float)
    return curves.sort_values(['parent_run_id', 'stage', 'metric', 'step'], kind='stable'
                              ).reset_index(drop=True)


def sample_path(samples_dir: Path, method: str, dataset: str, profile: str) -> Path:
    """Where the exported test frames of one (method, dataset, profile) live."""
    return samples_dir / f'{method}_{dataset}_{profile}.npz'


def input_path(samples_dir: Path, dataset: str, profile: str) -> Path:
    """Where the exported raw (pre-anonymization) test frames of a dataset live."""
    return samples_dir / f'input_{dataset}_{profile}.npz'


def sweep_samples_dir(samples_dir: Path, name: str) -> Path:
    """Where the exported test frames of sweep ``name``'s points live: a folder of their own
    under ``samples/`` (``bench report``'s Table 1 samples and input frames beside it are
    another report's, which neither report may replace or remove)."""
    return samples_dir / f'sweep_{name}'


def _exported_run(path: Path) -> str:
    try:
        with np.load(path) as data:
            return str(data['run_id']) if 'run_id' in data else ''
    except (OSError, ValueError):
        return ''


def _export_sample(source: Path, target: Path, run_id: str) -> None:
    """Copy a logged ``.npz`` sample and add the ``run_id`` it came from.

    The archive is copied as is (no recompression) and ``run_id.npy`` appended to it.
    """
    with np.load(source) as data:
        if 'frames' not in data or 'video_ids' not in data:
            raise ValueError(f'{source}: a sample needs the arrays frames and video_ids')
        rewrite = 'run_id' in data
    partial = target.with_name(target.name + '.partial')
    if rewrite:
        with np.load(source) as data:
            np.savez_compressed(partial, frames=data['frames'], video_ids=data['video_ids'],
                                run_id=np.array(run_id))
    else:
        shutil.copyfile(source, partial)
        with zipfile.ZipFile(partial, 'a') as archive, archive.open('run_id.npy', 'w') as member:
            np.lib.format.write_array(member, np.array(run_id))
    os.replace(partial, target)


class Artifacts:
    """Logged files of runs: read in place from a local artifact folder, else downloaded."""

    def __init__(self, tracking_uri: str | None, run_ids: list[str], tmp: str) -> None:
        self.tracking_uri, self.tmp = tracking_uri, tmp
        self.local = _sqlite_call(tracking_uri, lambda store: store.artifact_uris(run_ids)) or {}

    def get(self, run_id: str, path: str) -> Path | None:
        """The local path of ``path`` logged by ``run_id``; None when the run has no such file."""
        folder = sqlite_store.local_artifact_dir(self.local.get(run_id, ''))
        if folder is not None:
            return folder / path if (folder / path).is_file() else None
        from mlflow.artifacts import download_artifacts
        from mlflow.exceptions import MlflowException
        try:
            return Path(download_artifacts(run_id=run_id, artifact_path=path, dst_path=self.tmp,
                                           tracking_uri=self.tracking_uri))
        except (MlflowException, OSError):
            return None


def fetch_samples(tracking_uri: str | None, table_runs: pd.DataFrame, samples_dir: Path) -> list[Path]:
    """Export the logged test frames of one counting run per (method, dataset, profile).

    The run with the lowest seed is used; an exported file that already holds that run is kept
    (artifacts of a complete run never change), so a repeated report reads nothing.

    Args:
        tracking_uri (str, optional): MLflow tracking URI.
        table_runs (pd.DataFrame): Counting runs of Table 1 (not transfer runs).
        samples_dir (Path): Folder for the ``.npz`` files.

    Returns:
        list of Path: the files present for this selection.
    """
    samples_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    have_input: set[tuple[str, str]] = set()
    ordered = table_runs.assign(_seed=pd.to_numeric(table_runs.seed, errors='coerce')).sort_values(
        ['dataset', 'profile', 'method', '_seed', 'start_time'], kind='stable')
    # Prefer raw's run for the input frames: its frames are the input, whatever else fails.
    ordered = pd.concat([ordered[ordered.method == 'raw'], ordered[ordered.method != 'raw']])
    todo = []
    for (method, dataset, profile), group in ordered.groupby(['method', 'dataset', 'profile'], sort=False):
        run_id = group.run_id.iloc[0]
        target = sample_path(samples_dir, method, dataset, profile)
        need_input = (dataset, profile) not in have_input
        raw_target = input_path(samples_dir, dataset, profile)
        if _exported_run(target) == run_id and (not need_input or raw_target.exists()):
            written.append(target)
            if need_input:
                have_input.add((dataset, profile))
                written.append(raw_target)
            continue
        todo.append((run_id, dataset, profile, target, raw_target))
    if not todo:
        return written
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(tracking_uri, [t[0] for t in todo], tmp)
        for run_id, dataset, profile, target, raw_target in todo:
            local = artifacts.get(run_id, 'samples/test_frames.npz')
            if local is None:
                continue  # a run without logged samples gets no row in the grid
            _export_sample(local, target, run_id)
            written.append(target)
            if (dataset, profile) not in have_input:
                local = artifacts.get(run_id, 'samples/raw_frames.npz')
                if local is None:
                    continue
                _export_sample(local, raw_target, run_id)
                have_input.add((dataset, profile))
                written.append(raw_target)
    return written


PREDICTION_STAGES = ('action', 'privacy')


def prediction_path(predictions_dir: Path, run_id: str, stage: str) -> Path:
    """Where the exported per-video test outputs of one run's stage live."""
    return predictions_dir / run_id / f'{stage}.npz'


def fetch_predictions(tracking_uri: str | None, counting: pd.DataFrame,
                      predictions_dir: Path) -> list[Path]:
    """Export the logged per-video test outputs (``predictions/<stage>.npz``) of the counting
    runs to ``predictions_dir/<run_id>/``, and remove those of runs that no longer count.

    Files already exported are kept (a complete run's artifacts never change). Runs logged
    before protocol version 2 have none; the report then shows no intervals for them.
    """
    wanted = set(counting.run_id)
    if predictions_dir.is_dir():
        for folder in predictions_dir.iterdir():
            if folder.is_dir() and folder.name not in wanted:
                shutil.rmtree(folder)
    todo = [(run_id, stage) for run_id in counting.run_id for stage in PREDICTION_STAGES
            if not prediction_path(predictions_dir, run_id, stage).is_file()]
    written = [prediction_path(predictions_dir, r, s) for r in counting.run_id
               for s in PREDICTION_STAGES if (r, s) not in set(todo)]
    if not todo:
        return written
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(tracking_uri, sorted({r for r, _ in todo}), tmp)
        for run_id, stage in todo:
            local = artifacts.get(run_id, f'predictions/{stage}.npz')
            if local is None:
                continue
            target = prediction_path(predictions_dir, run_id, stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + '.partial')
            shutil.copyfile(local, partial)
            os.replace(partial, target)
            written.append(target)
    return written


class PredictionStore:
    """Reads exported per-video test outputs: ``get(run_id, stage)`` gives
    ``benchmark.stats.Predictions`` or None when the run has none."""

    def __init__(self, predictions_dir: Path | None) -> None:
        self.folder = predictions_dir
        self._cache: dict[tuple[str, str], object] = {}

    def get(self, run_id: str, stage: str):
        from benchmark.stats import Predictions
        key = (run_id, stage)
        if key not in self._cache:
            path = prediction_path(self.folder, run_id, stage) if self.folder else None
            value = None
            if path is not None and path.is_file():
                try:
                    with np.load(path, allow_pickle=False) as data:
                        value = Predictions(data['video_ids'], data['labels'], data['scores'])
                except (OSError, ValueError, KeyError) as err:
                    raise ValueError(f'{path}: not a predictions export ({err}); delete it and '
                                     f'run `bench report` again') from None
            self._cache[key] = value
        return self._cache[key]


def export_runs(runs: pd.DataFrame, curves: pd.DataFrame | None, results_dir: Path) -> list[Path]:
    """Write ``runs.csv`` (and ``curves.csv`` when given) under ``results_dir``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    written = [results_dir / 'runs.csv']
    runs.to_csv(written[0], index=False)
    if curves is not None:
        written.append(results_dir / 'curves.csv')
        curves.to_csv(written[1], index=False)
    return written


def merge_exports(sources: list[Path], dest: Path) -> Path:
    """Merge several ``bench report`` exports (runs of several stores or machines) into one.

    Every source's ``runs.csv`` is read (and checked) before anything is written, so ``dest``
    may be one of the sources' folders. A run found in two exports (same run id) counts once,
    as its ended row where one export caught it still running.
    ``curves.csv``, ``predictions/<run_id>/`` and ``samples/`` (with its sweeps' folders) are
    merged beside it; where two exports hold frames of the same (method, dataset, profile),
    those of a run the tables count
    (``counting_runs``: a rerun replaces an older run of its key) are kept, and among those the
    run with the lower seed, as the store export keeps them.

    Args:
        sources (list of Path): The exported ``runs.csv`` files.
        dest (Path): The folder of the merged export (created).

    Returns:
        Path: the merged ``runs.csv``.
    """
    frames = [load_runs(Path(path)) for path in sources]
    stacked = pd.concat(frames, ignore_index=True)
    # a run exported while it ran and again once it ended: the ended row wins, wherever it comes
    live = stacked.get('status', pd.Series('', index=stacked.index)).isin(('RUNNING', 'SCHEDULED'))
    ranked = stacked.assign(_live=live).sort_values('_live', kind='stable')
    runs = normalize(stacked.loc[sorted(ranked.index[~ranked.duplicated('run_id')])])
    found = [load_curves(Path(path).parent / 'curves.csv', quiet=True) for path in sources]
    found = [c for c in found if c is not None]
    curves = (normalize_curves(pd.concat(found, ignore_index=True).drop_duplicates())
              if found else None)
    seeds = dict(zip(runs.run_id, pd.to_numeric(runs.get('seed', pd.Series(dtype=str)),
                                                errors='coerce').fillna(float('inf'))))
    counting = set(counting_runs(runs).run_id)
    dest = Path(dest)
    chosen: dict[str, tuple[tuple, Path]] = {}  # sample's path under samples/ -> (rank, file)
    copies: list[tuple[Path, Path]] = []
    for path in sources:
        folder = Path(path).parent
        # Table 1's samples, and each sweep's in its folder (sweep_samples_dir)
        for sample in sorted([*(folder / 'samples').glob('*.npz'),
                              *(folder / 'samples').glob('sweep_*/*.npz')]):
            run_id = _exported_run(sample)
            rank = (run_id not in counting, seeds.get(run_id, float('inf')))
            name = sample.relative_to(folder / 'samples').as_posix()
            if name not in chosen or rank < chosen[name][0]:
                chosen[name] = (rank, sample)
        for run_dir in sorted((folder / 'predictions').glob('*/')):
            if run_dir.name in seeds:
                copies += [(f, dest / 'predictions' / run_dir.name / f.name)
                           for f in sorted(run_dir.glob('*.npz'))]
    copies += [(sample, dest / 'samples' / name) for name, (_, sample) in chosen.items()]
    manifests = _merged_manifests([Path(path).parent for path in sources])
    for source, target in copies:
        if source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    for name, definition in manifests.items():
        target = dest / 'sweeps' / f'{name}.json'
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({'definition': definition}, indent=2) + '\n')
    return export_runs(runs, curves, dest)[0]


def _merged_manifests(folders: list[Path]) -> dict[str, dict]:
    """The sweep manifests of several exports (``sweeps/<name>.json``, copied there by
    ``bench report --sweep``), one definition per sweep name: a sweep split over machines, each
    running part of its grid, plans the union of the parts' grid values and seeds
    (``benchmark.sweep.unite_definitions``); two different sweeps under one name are refused."""
    from benchmark.sweep import unite_definitions
    merged: dict[str, dict] = {}
    where: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((folder / 'sweeps').glob('*.json')):
            try:
                definition = json.loads(path.read_text())['definition']
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise ValueError(f'{path}: not a sweep manifest ({first_line(err)})') from None
            name = path.stem
            if name not in merged:
                merged[name], where[name] = definition, path
                continue
            try:
                merged[name] = unite_definitions(merged[name], definition)
            except ValueError as err:
                raise ValueError(f'sweep {name}: {where[name]} and {path} are two sweeps under one '
                                 f'name ({err})') from None
    return merged


def load_runs(path: Path) -> pd.DataFrame:
    """Read a ``runs.csv`` written by ``export_runs`` back into the store's frame."""
    if not path.is_file():
        raise FileNotFoundError(f'--from {path}: no such file; write it with `bench report` '
                                f'(it exports results/runs.csv from the tracking store)')
    runs = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in (*ID_COLUMNS, *KEY, 'complete') if c not in runs]
    if missing:
        raise ValueError(f'--from {path}: not a runs.csv export (no column {", ".join(missing)}); '
                         f'regenerate it with `bench report`')
    directions = [c for c in runs if c.startswith('direction.')]
    return normalize(runs.drop(columns=directions))


def load_curves(path: Path, quiet: bool = False) -> pd.DataFrame | None:
    """Read ``curves.csv`` beside a runs.csv; None (with a warning unless quiet) when absent."""
    if not path.is_file():
        if quiet:
            return None
        warnings.warn(f'{path} not found: training curves are left out of this report '
                      f'(`bench report` exports it beside runs.csv)', stacklevel=2)
        return None
    return normalize_curves(pd.read_csv(path, dtype={'parent_run_id': str, 'run_id': str,
                                                     'stage': str, 'metric': str}))

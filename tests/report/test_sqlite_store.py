"""The direct SQLite reader of `bench report` returns what MlflowClient returns, on the shared
store and on the cases the client filters or converts: deleted runs and experiments, NaN
metrics, repeated steps; samples are copied with their run id; a missing store is named."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.report import runs as runs_io, sqlite_store


def _client_frame(uri: str, datasets=None) -> pd.DataFrame:
    return runs_io.normalize(pd.DataFrame(runs_io._parent_rows_client(uri, datasets)))


def _sqlite_frame(uri: str, datasets=None) -> pd.DataFrame:
    with sqlite_store.SqliteStore(sqlite_store.sqlite_path(uri)) as store:
        return runs_io.normalize(pd.DataFrame(runs_io._parent_rows_sqlite(store, datasets)))


@pytest.fixture(scope='module')
def odd_store(tmp_path_factory) -> tuple[str, dict]:
    """A store with what a plain search hides or converts."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp('odd')
    uri = f'sqlite:///{root / "mlflow.db"}'
    client = MlflowClient(uri)
    kept = client.create_experiment('vp_synth', artifact_location=(root / 'a' / 'kept').as_uri())
    gone = client.create_experiment('vp_gone', artifact_location=(root / 'a' / 'gone').as_uri())
    ids = {}
    for name, experiment in (('nan', kept), ('deleted', kept), ('in_deleted', gone), ('plain', kept)):
        run = client.create_run(experiment, start_time=1_000 + len(ids), tags={
            'bench.kind': 'parent', 'bench.method': name, 'bench.complete': 'true',
            'mlflow.runName': name})
        ids[name] = run.info.run_id
        client.log_batch(run.info.run_id, metrics=[
            Metric('action_top1', float('nan') if name == 'nan' else 0.5, 1, 0),
            Metric('privacy_cmap', 0.9, 1, 0), Metric('privacy_cmap', 0.7, 2, 1)],  # latest: step 1
            params=[Param('seed', '3')])
        client.set_terminated(run.info.run_id)
    child = client.create_run(kept, tags={'bench.kind': 'stage', 'bench.stage': 'fit',
                                          'mlflow.parentRunId': ids['plain']})
    client.log_batch(child.info.run_id, metrics=[
        Metric('train_loss', v, t, s) for t, (s, v) in enumerate(
            [(0, 2.0), (1, float('nan')), (1, 1.5), (2, 1.0)])] + [Metric('lr', 0.1, 0, 0)])
    client.delete_run(ids['deleted'])
    client.delete_experiment(gone)
    return uri, ids


def test_the_direct_reader_matches_the_client_on_the_shared_store(store):
    assert sqlite_store.sqlite_path(store) is not None
    fast = _sqlite_frame(store)
    assert len(fast) > 10
    pd.testing.assert_frame_equal(fast, _client_frame(store))
    pd.testing.assert_frame_equal(_sqlite_frame(store, ['vp_synth']), _client_frame(store, ['vp_synth']))
    pd.testing.assert_frame_equal(runs_io.read_store(store), fast)


def test_deleted_runs_and_experiments_nan_and_latest_values_as_the_client(odd_store):
    uri, ids = odd_store
    fast = _sqlite_frame(uri)
    pd.testing.assert_frame_equal(fast, _client_frame(uri))
    assert set(fast.run_id) == {ids['nan'], ids['plain']}  # deleted run and experiment left out
    by_method = fast.set_index('method')
    assert math.isnan(by_method.loc['nan', 'metric.action_top1'])
    assert by_method.loc['plain', 'metric.privacy_cmap'] == pytest.approx(0.7)
    assert by_method.loc['plain', 'param.seed'] == '3'


def test_histories_as_the_client(odd_store):
    uri, ids = odd_store
    wanted, names = {ids['plain']}, {'vp_synth'}
    with sqlite_store.SqliteStore(sqlite_store.sqlite_path(uri)) as store:
        meta, rows = runs_io._histories_sqlite(store, wanted, names)
    meta_c, rows_c = runs_io._histories_client(uri, wanted, names)
    assert meta == meta_c and len(meta) == 1
    as_text = lambda found: sorted((r, k, int(s), repr(float(v))) for r, k, s, v in found)  # noqa: E731
    assert as_text(rows) == as_text(rows_c)  # repr: NaN == NaN
    assert [r[2] for r in as_text(rows)] == [0, 1, 1, 2]  # every point, lr left out
    assert 'nan' in {r[3] for r in as_text(rows)}
    assert all(r[1] == 'train_loss' for r in rows)


def test_samples_are_copied_with_their_run_id(store, tmp_path):
    counting = runs_io.counting_runs(runs_io.read_store(store))
    written = runs_io.fetch_samples(store, counting, tmp_path)
    target = tmp_path / 'raprivacy_vp_hmdb51_smoke.npz'
    assert target in written
    with np.load(target) as data:
        run_id = str(data['run_id'])
        assert data['frames'].shape == (3, 4, 16, 16, 3)
        frames = data['frames']
    source = counting[(counting.method == 'raprivacy') & (counting.dataset == 'vp_hmdb51')
                      & (counting.seed == '0')].run_id.iloc[0]
    assert run_id == source
    with sqlite_store.SqliteStore(sqlite_store.sqlite_path(store)) as db:
        folder = sqlite_store.local_artifact_dir(db.artifact_uris([source])[source])
    with np.load(folder / 'samples' / 'test_frames.npz') as logged:
        np.testing.assert_array_equal(frames, logged['frames'])
    assert not list(tmp_path.glob('*.partial'))


def test_a_missing_store_file_is_named(tmp_path):
    missing = tmp_path / 'nowhere' / 'mlflow.db'
    with pytest.raises(FileNotFoundError, match='nowhere') as info:
        runs_io.read_store(f'sqlite:///{missing}')
    assert '\n' not in str(info.value)
    assert not missing.exists()  # reading never creates a store


def test_a_file_that_is_not_a_store_falls_back_to_the_client_check(tmp_path):
    db = tmp_path / 'other.db'
    import sqlite3
    sqlite3.connect(db).execute('CREATE TABLE runs (x INTEGER)').connection.commit()
    with pytest.raises(sqlite_store.SchemaMismatch, match='runs.run_uuid'):
        sqlite_store.SqliteStore(db)

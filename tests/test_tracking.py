"""The MLflow store: default location, a round trip through the search API, bad servers."""
import time

import pytest

from benchmark import tracking


def test_default_store_is_a_sqlite_file_in_the_work_dir(tmp_path, monkeypatch):
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    uri = tracking.resolve_tracking_uri(None, tmp_path / 'work')
    assert uri == f'sqlite:///{(tmp_path / "work" / "mlflow.db").resolve()}'
    assert tracking.default_artifact_root(uri).endswith('/work/mlartifacts')
    monkeypatch.setenv('MLFLOW_TRACKING_URI', 'http://127.0.0.1:5000')
    assert tracking.resolve_tracking_uri(None, tmp_path) == 'http://127.0.0.1:5000'
    assert tracking.resolve_tracking_uri('sqlite:///x.db', tmp_path) == 'sqlite:///x.db'


def test_round_trip_through_the_search_api(tmp_path):
    uri = tracking.resolve_tracking_uri(None, tmp_path)
    c = tracking.client(uri)
    exp = tracking.experiment_id(c, 'vp_synth', uri)
    assert tracking.experiment_id(c, 'vp_synth', uri) == exp
    run = c.create_run(exp, tags={'bench.method': 'raw', 'bench.complete': 'true'})
    c.log_metric(run.info.run_id, 'action_top1', 0.75)
    hook = tracking.MLflowStageHook(uri, run.info.run_id, interval=1)
    for step in range(3):
        hook._pending.append(__import__('mlflow').entities.Metric('train_loss', 1.0 / (step + 1),
                                                                   int(time.time() * 1000), step))
    hook.flush()
    c.set_terminated(run.info.run_id)
    found = c.search_runs([exp], "tags.`bench.method` = 'raw' and tags.`bench.complete` = 'true'")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert found[0].data.metrics['action_top1'] == 0.75
    history = c.get_metric_history(run.info.run_id, 'train_loss')
    assert [m.step for m in history] == [0, 1, 2]
    artifact_root = c.get_experiment(exp).artifact_location
    assert artifact_root.startswith((tmp_path / 'mlartifacts').resolve().as_uri())


def test_unreachable_server_is_one_line_before_training(monkeypatch):
    monkeypatch.setenv('MLFLOW_HTTP_REQUEST_TIMEOUT', '3')
    start = time.time()
    with pytest.raises(tracking.TrackingError) as err:
        tracking.client('http://127.0.0.1:9')  # nothing listens on the discard port
    assert time.time() - start < 30
    message = str(err.value)
    assert 'http://127.0.0.1:9' in message and 'cannot be reached' in message
    assert '\n' not in message


def test_provenance_names_commit_machine_and_command():
    prov = tracking.provenance('cpu')
    assert len(prov['commit']) == 40 or prov['commit'] == 'unknown'
    assert prov['device'].startswith('cpu (') and prov['host']
    assert prov['dirty'] in ('true', 'false')


def test_opening_a_store_does_not_redirect_later_lookups(tmp_path, monkeypatch):
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    first = tracking.resolve_tracking_uri(None, tmp_path / 'a')
    tracking.client(first)
    assert tracking.resolve_tracking_uri(None, tmp_path / 'b') != first


def _open_store(args):
    uri, barrier = args
    barrier.wait()  # all at once, as parallel first runs do
    c = tracking.client(uri)
    exp = tracking.experiment_id(c, 'vp_synth', uri)
    return c.create_run(exp).info.run_id


def test_parallel_first_opens_of_a_fresh_store_all_succeed(tmp_path):
    """The first client creates the tables (MLflow's migrations) under the store's lock file;
    the others wait for it, and the experiment is created once."""
    import multiprocessing
    uri = tracking.resolve_tracking_uri(None, tmp_path)
    ctx = multiprocessing.get_context('fork')
    barrier = ctx.Manager().Barrier(4)
    with ctx.Pool(4) as pool:
        run_ids = pool.map(_open_store, [(uri, barrier)] * 4)
    assert len(set(run_ids)) == 4
    c = tracking.client(uri)
    exps = [e for e in c.search_experiments() if e.name == 'vp_synth']
    assert len(exps) == 1 and len(c.search_runs([exps[0].experiment_id])) == 4
    assert (tmp_path / 'mlflow.db.lock').is_file()


HOLDER = '''
import os, sys, time
from pathlib import Path
from benchmark.store import locked
with locked(Path(sys.argv[1])):
    child = os.fork()  # a data loader worker, say, that outlives a killed run for a while
    if child == 0:
        time.sleep(60)
        os._exit(0)
    print(child, flush=True)
    time.sleep(60)
'''


def test_a_lock_is_freed_when_its_process_dies_even_with_forked_children_alive(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from benchmark.store import locked
    lock = tmp_path / 'run' / '.seed0.lock'
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(BlockingIOError, match=f'held by process {holder.pid}'):
            with locked(lock, wait=False):
                pass
        holder.send_signal(signal.SIGKILL)  # kill -9 the run; its forked child lives on
        holder.wait()
        os.kill(child, 0)  # still alive
        with locked(lock, wait=False):
            assert lock.read_text() == str(os.getpid())
    finally:
        os.kill(child, signal.SIGKILL)

"""A sweep recorded through an MLflow tracking server backed by PostgreSQL, the cluster setup
(README, *Sweeps on a cluster*): the test starts PostgreSQL and `mlflow server` on 127.0.0.1,
runs a two-point smoke sweep with two workers against it, and reports the sweep from it.

Needs Debian's ``postgresql`` (``initdb``, ``pg_ctl``; `.ci/run` installs it) and psycopg2
(the test extras); skipped, saying which is missing, without them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_BIN = next((p for p in sorted(Path('/usr/lib/postgresql').glob('*/bin'), reverse=True)
               if (p / 'initdb').exists()), None) if Path('/usr/lib/postgresql').is_dir() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as the ``postgres`` user then."""
    return ['runuser', '-u', 'postgres', '--', *cmd] if os.geteuid() == 0 else cmd


def _wait_http(url: str, seconds: float, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f'mlflow server exited ({server.returncode}):\n{log.read_text()[-3000:]}')
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f'{url} did not answer within {seconds:g} s')


@pytest.fixture
def mlflow_server(tmp_path):
    if PG_BIN is None:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql: apt-get install postgresql)")
    pytest.importorskip('psycopg2', reason='psycopg2 is not installed (pip install ".[test]")')
    if os.geteuid() == 0 and not shutil.which('runuser'):
        pytest.skip('running as root without runuser: PostgreSQL cannot be started')
    # pytest's tmp_path lies in a folder only its owner may enter: PostgreSQL's own folder
    # goes in /tmp, handed to the postgres user when the test runs as root
    data = Path(tempfile.mkdtemp(prefix='bench-pg-'))
    if os.geteuid() == 0:
        shutil.chown(data, 'postgres')
    port = _free_port()
    subprocess.run(_as_postgres([str(PG_BIN / 'initdb'), '-D', str(data), '-U', 'bench',
                                 '--auth=trust']), check=True, capture_output=True)
    subprocess.run(_as_postgres([str(PG_BIN / 'pg_ctl'), '-D', str(data), '-w', '-l',
                                 str(data / 'log'), '-o', f'-p {port} -k {data} -h 127.0.0.1',
                                 'start']), check=True, capture_output=True)
    server = None
    try:
        subprocess.run(_as_postgres([str(PG_BIN / 'createdb'), '-h', '127.0.0.1', '-p', str(port),
                                     '-U', 'bench', 'mlflow']), check=True, capture_output=True)
        web = _free_port()
        artifacts = tmp_path / 'artifacts'
        server = subprocess.Popen(
            [sys.executable, '-m', 'mlflow', 'server', '--backend-store-uri',
             f'postgresql+psycopg2://bench@127.0.0.1:{port}/mlflow', '--artifacts-destination',
             str(artifacts), '--host', '127.0.0.1', '--port', str(web), '--workers', '1'],
            stdout=open(tmp_path / 'mlflow.log', 'w'), stderr=subprocess.STDOUT,
            start_new_session=True)
        _wait_http(f'http://127.0.0.1:{web}/health', 900, server, tmp_path / 'mlflow.log')
        yield f'http://127.0.0.1:{web}'
    finally:
        if server is not None:
            os.killpg(server.pid, 9)
            server.wait()
        subprocess.run(_as_postgres([str(PG_BIN / 'pg_ctl'), '-D', str(data), '-m', 'immediate',
                                     'stop']), capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_sweep_through_a_postgres_backed_server(mlflow_server, tmp_path):
    work = tmp_path / 'work'
    sweep = subprocess.run(
        [sys.executable, '-m', 'benchmark.cli', 'sweep', '--method', 'downsample_2x', '--profile',
         'smoke', '--grid', 'anonymizer.factor=2,4', '--jobs', '2', '--name', 'served',
         '--work-dir', str(work), '--tracking-uri', mlflow_server],
        cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    assert 'sweep served: 2/2 runs finished' in sweep.stdout
    from mlflow.tracking import MlflowClient
    c = MlflowClient(tracking_uri=mlflow_server)
    runs = c.search_runs([e.experiment_id for e in c.search_experiments()],
                         "tags.`bench.sweep` = 'served'")
    assert sorted(r.data.tags['bench.run_key'] for r in runs) == [
        f'downsample_2x@anonymizer.factor={f}|vp_synth|vp_synth|smoke|0' for f in (2, 4)]
    assert {r.data.tags['bench.complete'] for r in runs} == {'true'}
    report = subprocess.run(
        [sys.executable, '-m', 'benchmark.cli', 'report', '--sweep', 'served', '--tracking-uri',
         mlflow_server, '--out', str(tmp_path / 'reports'), '--results', str(tmp_path / 'results')],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert report.returncode == 0, report.stdout + report.stderr
    table = (tmp_path / 'reports' / 'sweep_served.md').read_text()
    assert '| anonymizer.factor | seeds |' in table and '| 4 | 1 |' in table

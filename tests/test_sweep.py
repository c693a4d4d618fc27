"""`bench sweep`: grid expansion and validation, resumption after kill -9, fault isolation,
parallel workers on one store, the submitit engine."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark import sweep
from benchmark.errors import ConfigError, UnknownNameError

REPO = Path(__file__).resolve().parents[1]


def _resolve(grid: list[str], method: str = 'strong_blur', seeds=(0,)):
    return sweep.resolve(method, 'vp_synth', 'smoke', None, {}, sweep.parse_grid(grid), list(seeds))


def test_grid_is_the_cartesian_product_with_seeds_innermost():
    points = _resolve(['anonymizer.sigma=4.0,8.0', 'anonymizer.dilate=0.0,2.0,4.0'], seeds=(0, 1))
    assert len(points) == 2 * 3 * 2
    assert points[0].variant == 'anonymizer.sigma=4.0,anonymizer.dilate=0.0'
    assert [p.seed for p in points[:4]] == [0, 1, 0, 1]
    assert points[-1].cfg.anonymizer.sigma == 8.0 and points[-1].cfg.anonymizer.dilate == 4.0
    assert points[-1].cfg.variant == 'anonymizer.sigma=8.0,anonymizer.dilate=4.0'
    assert len({p.label for p in points}) == len(points)


def test_style_short_form_names_the_style_set():
    points = _resolve(['style=' + ','.join(sweep.style_names())], method='raprivacy')
    assert [p.variant for p in points] == [f'style={n}' for n in sweep.style_names()]
    assert points[0].cfg.anonymizer.style_set.type == 'VPSynthDepthStyles'
    assert points[0].cfg.anonymizer.style_set.num == 8  # the profile's other style arguments stay


@pytest.mark.parametrize('grid, message', [
    (['style=dpth'], "unknown style 'dpth': did you mean 'depth'?"),
    (['anonymizer.sigmaa=1.0'], "unknown config key 'anonymizer.sigmaa': did you mean 'sigma'?"),
    (['anonymizer.sigma=a,b'], 'anonymizer.sigma takes values like 6.0 (float), not str'),
    (['anonymizer.sigma=1.0,1.0'], "value '1.0' is given twice"),
    (['anonymizer.sigma'], 'is not key=value1,value2'),
    (['anonymizer.sigma=1.0', 'anonymizer.sigma=2.0'], 'sets anonymizer.sigma a second time'),
    (['anonymizer.sigma=-1.0'], '--grid anonymizer.sigma=-1.0: anonymizer RegionBlur:'),
    (['target_schedule.max_epochs=1,0'], 'target_schedule.max_epochs=0'),
])
def test_bad_grid_is_one_line_naming_the_closest(grid, message):
    with pytest.raises((ConfigError, UnknownNameError)) as err:
        _resolve(grid)
    text = str(err.value)
    assert message in text and '\n' not in text, text


def test_unknown_style_set_type_names_the_registered_ones():
    with pytest.raises(UnknownNameError, match="'VPSynthDepthStyle'.*did you mean 'VPSynthDepthStyles'"):
        _resolve(['anonymizer.style_set.type=VPSynthDepthStyle'], method='raprivacy')


def test_threads_are_divided_among_jobs(monkeypatch):
    monkeypatch.setattr(os, 'sched_getaffinity', lambda _pid: set(range(8)), raising=False)
    assert sweep.threads_per_job(1) == 8 and sweep.threads_per_job(2) == 4
    assert sweep.threads_per_job(3) == 2 and sweep.threads_per_job(16) == 1
    env = sweep.worker_env(2, 1, 'cpu')
    assert env['OMP_NUM_THREADS'] == env['BENCH_THREADS'] == '4'
    monkeypatch.setenv('CUDA_VISIBLE_DEVICES', '3,5')
    assert [sweep.worker_env(2, s, 'cuda')['CUDA_VISIBLE_DEVICES'] for s in (0, 1)] == ['3', '5']


def test_manifest_refuses_another_method_under_the_same_name(tmp_path):
    manifest = sweep.Manifest(tmp_path, 'abl')
    manifest.start(dict(method='raw', dataset='vp_synth', profile='smoke', train_dataset=None))
    manifest.record('k', dict(outcome='failed', error='x'))
    with pytest.raises(Exception, match="sweep 'abl' .* is of method raw"):
        manifest.start(dict(method='depth', dataset='vp_synth', profile='smoke', train_dataset=None))
    assert manifest.read()['points']['k']['outcome'] == 'failed'
    with pytest.raises(ConfigError, match='a sweep name is'):
        sweep.Manifest(tmp_path, '../x')


def test_a_sweep_run_in_parts_under_one_name_plans_every_part(tmp_path):
    """Running part of the grid later (or on another machine) under the same --name adds to
    the plan the report counts; other grid keys are another sweep, refused by name."""
    manifest = sweep.Manifest(tmp_path, 'styles')
    fixed = dict(method='raprivacy', dataset='vp_synth', profile='cpu', train_dataset=None)
    manifest.start(dict(fixed, grid={'style': ['depth', 'edges']}, seeds=[0, 1]))
    data = manifest.start(dict(fixed, grid={'style': ['edges', 'rgb']}, seeds=[2]))
    assert data['definition']['grid'] == {'style': ['depth', 'edges', 'rgb']}
    assert data['definition']['seeds'] == [0, 1, 2]
    assert len(sweep.planned_points(data['definition'])) == 9
    with pytest.raises(Exception, match=r"sweep 'styles' .* has grid keys style, not anonymizer.factor: "
                                        r'give this one another --name'):
        manifest.start(dict(fixed, grid={'anonymizer.factor': [2]}, seeds=[0]))
    assert manifest.read()['definition']['grid'] == {'style': ['depth', 'edges', 'rgb']}


# ----------------------------------------------------------------------------- end to end


def _sweep_cmd(work: Path, grid: list[str], *extra: str) -> list[str]:
    cmd = [sys.executable, '-m', 'benchmark.cli', 'sweep', '--method', 'downsample_2x',
           '--profile', 'smoke', '--work-dir', str(work), '--name', 'abl']
    for g in grid:
        cmd += ['--grid', g]
    return cmd + list(extra)


def _bench(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=3600)


def _parents(work: Path) -> list:
    from mlflow.tracking import MlflowClient
    c = MlflowClient(tracking_uri=f'sqlite:///{work / "mlflow.db"}')
    exps = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(exps, "tags.`bench.kind` = 'parent'")


def _complete_by_key(work: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in _parents(work):
        if run.data.tags.get('bench.complete') == 'true':
            key = run.data.tags['bench.run_key']
            counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.mark.slow
def test_kill_9_mid_sweep_then_the_same_command_finishes_each_point_once(tmp_path):
    grid = ['anonymizer.factor=2,3,4']
    cmd = _sweep_cmd(tmp_path, grid)
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    manifest = tmp_path / 'sweeps' / 'abl.json'
    deadline = time.monotonic() + 3600  # a smoke point takes a minute; far more on a loaded machine
    while True:  # one point finished and the next one's run folder started
        points = json.loads(manifest.read_text()).get('points', {}) if manifest.exists() else {}
        started = list((tmp_path / 'vp_synth').glob('downsample_2x@*/smoke/seed0/state.json'))
        if len(points) >= 1 and len(started) >= 2:
            break
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, 'the first point did not finish within an hour'
        time.sleep(0.5)
    os.kill(first.pid, signal.SIGKILL)  # the sweep's process only: its workers die with it
    first.wait()
    again = _bench(cmd)
    assert again.returncode == 0, again.stdout + again.stderr
    import re
    counts = re.search(r'(\d) finished before \(skipped\), (\d) interrupted \(resumed\), 0 failed '
                       r'before \(run again\), (\d) new', again.stdout)
    assert counts and int(counts[1]) >= 1 and int(counts[2]) >= 1, again.stdout
    assert sum(int(n) for n in counts.groups()) == 3
    assert 'sweep abl: 3/3 runs finished' in again.stdout
    complete = _complete_by_key(tmp_path)
    assert sorted(complete) == [f'downsample_2x@anonymizer.factor={f}|vp_synth|vp_synth|smoke|0'
                                for f in (2, 3, 4)]
    assert set(complete.values()) == {1}, complete
    assert all(r.data.tags.get('bench.sweep') == 'abl' for r in _parents(tmp_path))
    third = _bench(cmd)  # all done: nothing runs
    assert '3 finished before (skipped)' in third.stdout and third.returncode == 0


@pytest.mark.slow
def test_two_workers_share_the_store_and_a_failing_point_is_listed(tmp_path):
    cmd = _sweep_cmd(tmp_path, ['anonymizer.factor=2,3,4'], '--jobs', '2')
    from benchmark.config import resolve_config
    from benchmark.protocol import STATE_FILE, run_folder
    broken = run_folder(tmp_path, resolve_config('downsample_2x', 'vp_synth', 'smoke', options={
        'anonymizer.factor': 3}, variant='anonymizer.factor=3'))
    broken.mkdir(parents=True)  # a folder of another config: the protocol refuses it at run time
    (broken / STATE_FILE).write_text(json.dumps({'config_hash': 'other', 'runs': {}}))
    run = _bench(cmd)
    assert run.returncode == 2, run.stdout + run.stderr
    per_job = sweep.threads_per_job(2)
    assert f'2 jobs, {per_job} thread{"s" if per_job > 1 else ""} each' in run.stdout
    assert 'sweep abl: 2/3 runs finished' in run.stdout, run.stdout
    failed = run.stdout.split('1 failed (run the same command again to retry them):\n')[1]
    assert failed.startswith('  downsample_2x@anonymizer.factor=3 seed 0: ProtocolError: ')
    assert 'holds a run of a different config' in failed and len(failed.strip().splitlines()) == 1
    counts = _complete_by_key(tmp_path)
    assert counts == {f'downsample_2x@anonymizer.factor={f}|vp_synth|vp_synth|smoke|0': 1
                      for f in (2, 4)}
    report = _bench([sys.executable, '-m', 'benchmark.cli', 'report', '--work-dir', str(tmp_path),
                     '--sweep', 'abl', '--out', str(tmp_path / 'reports'),
                     '--results', str(tmp_path / 'results')])
    assert report.returncode == 0, report.stdout + report.stderr
    assert ('bench report: sweep abl: 2 of 3 planned have a complete run; not yet: '
            'anonymizer.factor=3 (seed 0). The table is partial until they do.') in report.stderr
    again = _bench(cmd)  # the failed point runs again (and fails again); the others are skipped
    assert '2 finished before (skipped), 0 interrupted (resumed), 1 failed before (run again)' \
        in again.stdout, again.stdout


@pytest.mark.slow
def test_submitit_local_executor_runs_the_points(tmp_path):
    pytest.importorskip('submitit', reason='submitit is not installed (pip install ".[test]")')
    run = _bench(_sweep_cmd(tmp_path, ['anonymizer.factor=2,4'], '--engine', 'submitit'))
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'sweep abl: 2/2 runs finished' in run.stdout
    assert set(_complete_by_key(tmp_path).values()) == {1}
    assert list((tmp_path / 'sweeps' / 'abl').glob('*_result.pkl'))  # submitit's own files

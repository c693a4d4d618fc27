"""Every ordinary mistake is one line `bench: ...` with a non-zero status, and creates nothing.

One parametrized test per class of mistake: option values (config values out of range or of the
wrong type, anonymizer parameters, unknown keys and arguments, seeds, a data root the dataset
does not take), names given to `bench report`, stores that cannot be read, and `bench ui`.
"""
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from benchmark.cli import main
from tests.silent_server import closed_port_url

RUN = ['run', '--method', 'raw', '--profile', 'smoke']
BLUR = ['run', '--method', 'strong_blur', '--profile', 'smoke']


def refused(capsys, argv, says) -> str:
    """Run ``bench argv``; check its status and its one line; return the line."""
    try:
        code = main(argv)
        err = capsys.readouterr().err.strip()
    except SystemExit as stop:  # argument errors the CLI refuses before it starts work
        code, err = 1, str(stop.code)
    assert code != 0
    assert err.startswith('bench: ') and '\n' not in err, err
    assert says in err, err
    return err


@pytest.mark.parametrize('argv, says', [
    (RUN + ['--cfg-options', 'target_schedule.max_epochs=0'],
     'target_schedule.max_epochs=0: it must be an integer >= 1'),
    (RUN + ['--cfg-options', 'target_schedule.max_epochs=abc'],
     "target_schedule.max_epochs='abc' is a str: it must be an integer >= 1"),
    (RUN + ['--cfg-options', 'target_schedule.lr=0'], 'target_schedule.lr=0: it must be a number > 0'),
    (RUN + ['--cfg-options', 'target_schedule.warmup_epochs=-1'], 'an integer >= 0'),
    (RUN + ['--cfg-options', 'clip.crop_size=2.5'], 'clip.crop_size=2.5: it must be an integer >= 1'),
    (RUN + ['--cfg-options', 'target_schedule.batch_size=True'], 'is a bool'),
    (BLUR + ['--cfg-options', 'anonymizer.sigma=-3'], 'anonymizer RegionBlur: sigma=-3: it must be a number > 0'),
    (BLUR + ['--cfg-options', 'anonymizer.dilate=-1'], 'dilate=-1: it must be a number >= 0'),
    (['run', '--method', 'downsample_2x', '--profile', 'smoke', '--cfg-options', 'anonymizer.factor=0'],
     'factor=0: it must be an integer >= 1'),
    (BLUR + ['--cfg-options', 'anonymizer.sigmaa=4'],
     "unknown config key 'anonymizer.sigmaa': did you mean 'sigma'? (RegionBlur takes sigma, dilate, name)"),
    (RUN + ['--cfg-options', 'target_schedule.max_epoch=2'],
     '(`bench config --method raw --dataset vp_synth --profile smoke` prints every key)'),
    (RUN + ['--data-root', '/nonexistent'], '--data-root: vp_synth takes no data root'),
    (RUN + ['--seeds', '-1'], 'seed -1 is out of range'),
    (RUN + ['--seeds', ','], "--seeds ',' must be integers >= 0"),
    (RUN + ['--seeds', '0,x'], "--seeds '0,x' must be integers >= 0"),
])
def test_bad_options_are_one_line_and_create_nothing(argv, says, tmp_path, capsys):
    work = tmp_path / 'work'
    refused(capsys, argv + ['--work-dir', str(work)], says)
    assert not work.exists()


def test_a_closed_server_is_refused_before_a_run_loads_anything(tmp_path, capsys):
    url = closed_port_url()
    start = time.monotonic()
    for argv in (RUN + ['--work-dir', str(tmp_path / 'w')], ['report'],
                 ['anonymize', '--run', 'abc', 'in.mp4', 'out.mp4']):
        refused(capsys, argv + ['--tracking-uri', url], f'tracking store {url} cannot be reached')
    assert time.monotonic() - start < 15
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('argv, says', [
    (['report', '--profile', 'smok'], "unknown profile 'smok': did you mean 'smoke'?"),
    (['report', '--dataset', 'vp_synthh'], "unknown dataset 'vp_synthh': did you mean 'vp_synth'"),
    (['report'], 'no tracking store at'),
    (['ui'], 'no tracking store at'),
    (['anonymize', '--run', 'abc', 'in.mp4', 'out.mp4'], 'no tracking store at'),
])
def test_names_and_missing_stores_are_one_line_and_create_nothing(argv, says, tmp_path, capsys):
    work = tmp_path / 'nonexistent'
    refused(capsys, argv + ['--work-dir', str(work)], says)
    assert not work.exists()


@pytest.mark.parametrize('content', [b'', b'\x00\x01 not a database ' * 100])
def test_report_on_a_file_that_is_not_a_store_leaves_it_as_it_was(content, tmp_path, capsys):
    (tmp_path / 'mlflow.db').write_bytes(content)
    refused(capsys, ['report', '--work-dir', str(tmp_path), '--out', str(tmp_path / 'r')],
            str(tmp_path / 'mlflow.db'))
    assert (tmp_path / 'mlflow.db').read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ['mlflow.db']


def test_a_stopped_ui_stops_its_whole_process_group(tmp_path):
    """SIGTERM to `bench ui` stops the server and the workers it started (as MLflow's does)."""
    pids = tmp_path / 'pids'
    server = textwrap.dedent(f'''
        import subprocess, sys, time
        worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
        open({str(pids)!r}, 'w').write(f'{{worker.pid}}')
        time.sleep(120)
    ''')
    bench = subprocess.Popen([sys.executable, '-c', 'import sys; from benchmark.cli import serve; '
                              f'sys.exit(serve([sys.executable, "-c", {server!r}]))'],
                             env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    deadline = time.monotonic() + 60
    while not pids.exists() or not pids.read_text():
        assert time.monotonic() < deadline, 'the server never started'
        time.sleep(0.1)
    worker = int(pids.read_text())
    bench.terminate()
    assert bench.wait(timeout=20) == 0
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(') ', 1)[-1][0] != 'Z'
    except OSError:
        return False

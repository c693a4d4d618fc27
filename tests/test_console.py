"""What `bench` prints: progress lines off a terminal, the result block last, `--verbose`,
sweeps a line per run, `bench ls methods` read without building anything."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark import console
from benchmark.console import Console

REPO = Path(__file__).resolve().parents[1]
RESULT_BLOCK = ('== ', '  action top-1', '  privacy cMAP', '  privacy F1 macro', '  AP per attribute',
                '  time', '  MLflow run')


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(console.time, 'monotonic', c)
    return c


def test_lines_mode_prints_a_stage_once_when_it_ends(clock, capsys):
    out = Console('lines')
    with out.progress('action', total=100, unit='it') as bar:
        for _ in range(100):
            clock.now += 0.1  # 10 s in all: no line while it runs
            bar.update(loss=0.5, note='epoch 2/2')
    lines = capsys.readouterr().out.splitlines()
    assert lines == ['action: 100/100 it, in 0:10, 10.0 it/s, epoch 2/2 loss 0.5']


def test_lines_mode_shows_a_long_stage_at_growing_gaps(clock, capsys):
    out = Console('lines')
    with out.progress('privacy', total=3600, unit='it') as bar:
        for _ in range(3600):  # one iteration a second: an hour
            clock.now += 1
            bar.update()
    lines = capsys.readouterr().out.splitlines()
    # after 30 s, then gaps x1.5 (45, 67.5, ...) capped at 10 min, and the final line
    assert lines[0] == 'privacy: 30/3600 it, 1 %, 1.0 it/s, ETA 59:30'
    assert lines[1].startswith('privacy: 75/3600 it, 2 %')
    assert lines[-1] == 'privacy: 3600/3600 it, in 1:00:00, 1.0 it/s'
    assert 8 <= len(lines) <= 14, lines  # readable in a CI log, alive every 10 min at most


def test_a_stage_that_stops_leaves_where_it_stopped(clock, capsys):
    out = Console('lines', keep_bars=False)
    with pytest.raises(KeyboardInterrupt):
        with out.progress('fit', total=10) as bar:
            clock.now += 2
            bar.update(3, loss={'act': 1.25, 'pri': 0.5})
            raise KeyboardInterrupt
    assert capsys.readouterr().out.splitlines() == [
        'fit: 3/10 it, in 0:02, 1.5 it/s, act 1.25 pri 0.5 (stopped)']


def test_a_resumed_stage_counts_its_rate_from_where_it_resumed(clock, capsys):
    out = Console('lines')
    with out.progress('action', total=100, done=60) as bar:
        clock.now += 40
        bar.update(done=100)
    assert capsys.readouterr().out.strip() == 'action: 100/100 it, in 0:40, 1.0 it/s'


def test_quiet_console_makes_warnings_one_line_once(capsys):
    import warnings
    with console.use(Console('lines')):
        for _ in range(3):
            warnings.warn('first line\nsecond line', UserWarning)
    assert capsys.readouterr().err == 'warning: UserWarning: first line\n'


def test_ls_methods_reads_what_building_gives():
    """The listing read from source (no torch) matches the anonymizers as built."""
    from benchmark.anonymizer import build_anonymizer
    from benchmark.catalog import methods, unused_anonymizers
    from benchmark.config import resolve_config
    from benchmark.registry import ANONYMIZERS, import_all
    import_all()
    listed = methods()
    assert [m.name for m in listed] == sorted(m.name for m in listed) and len(listed) >= 8
    for m in listed:
        cfg = resolve_config(m.name, 'vp_synth', 'smoke').anonymizer.to_dict()
        cls = ANONYMIZERS.get(cfg['type'])
        assert (m.anonymizer, m.learns, m.needs) == (cfg['type'], cls.learns, tuple(cls.needs))
        if not cls.learns:  # a learning one may need weights to build; its name is the class's
            assert m.table_name == build_anonymizer(cfg).table_name, m
        else:
            assert m.table_name == cls.table_name
    assert unused_anonymizers() == sorted(set(ANONYMIZERS.module_dict) - {m.anonymizer for m in listed})


def test_ls_methods_answers_without_torch():
    code = ('import sys; from benchmark.cli import main; main(["ls", "methods"]); '
            'print("torch" in sys.modules, "mmengine" in sys.modules)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == 'False False'
    assert 'strong_blur      RegionBlur             StrongBlur     no      mask' in lines


def _bench(args: list[str], work: Path) -> subprocess.CompletedProcess:
    """`bench` as a user runs it with its output going to a pipe (not a terminal)."""
    return subprocess.run([sys.executable, '-m', 'benchmark.cli', *args, '--work-dir', str(work)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_smoke_run_to_a_pipe_is_short_with_the_result_block_last(tmp_path):
    run = _bench(['run', '--method', 'raw', '--profile', 'smoke'], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert len(lines) + len(run.stderr.splitlines()) <= 20, run.stdout + run.stderr
    assert lines[0] == 'bench run: raw on vp_synth, smoke profile, seed 0, cpu'
    assert [line[:len(p)] for line, p in zip(lines[-len(RESULT_BLOCK):], RESULT_BLOCK)] == list(RESULT_BLOCK)
    # one plain line per stage step, no bar drawing, no MMEngine log
    assert any(re.fullmatch(r'action: 5/5 it, in \d+:\d\d, .*epoch 1/1 loss [\d.]+', x) for x in lines), lines
    assert any(x.startswith('privacy test: ') for x in lines)
    assert '\r' not in run.stdout and '\x1b' not in run.stdout
    assert 'mmengine' not in run.stdout + run.stderr and 'INFO' not in run.stderr
    # MMEngine's full log is in the run folder and in the MLflow run
    folder = tmp_path / 'vp_synth' / 'raw' / 'smoke' / 'seed0'
    logs = list((folder / 'action').glob('*/*.log'))
    assert len(logs) == 1 and 'System environment' in logs[0].read_text()
    from mlflow.tracking import MlflowClient
    run_id = re.search(r'MLflow run\s+(\w+)', lines[-1]).group(1)
    client = MlflowClient(f'sqlite:///{tmp_path / "mlflow.db"}')
    assert [a.path for a in client.list_artifacts(run_id, 'logs/action')] == [f'logs/action/{logs[0].name}']


@pytest.mark.slow
def test_verbose_restores_mmengine_log_on_the_console(tmp_path):
    run = _bench(['run', '--method', 'raw', '--profile', 'smoke', '-v'], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'System environment' in run.stdout and 'Epoch(train) [1][5/5]' in run.stdout
    assert '[action] raw on vp_synth (smoke profile, seed 0)' in run.stdout
    assert 'action: 5/5 it' not in run.stdout  # MMEngine's iteration log instead of the bar
    assert run.stdout.rstrip().splitlines()[-1].startswith('runs are in sqlite:///')
    assert len(run.stdout.splitlines()) > 100


@pytest.mark.slow
def test_sweep_shows_one_line_per_run(tmp_path):
    run = _bench(['sweep', '--method', 'downsample_2x', '--profile', 'smoke',
                  '--grid', 'anonymizer.factor=2,4'], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    points = [x for x in run.stdout.splitlines() if re.match(r'\[\d/2\] ', x)]
    assert len(points) == 2, run.stdout
    assert re.fullmatch(r'\[1/2\] downsample_2x@anonymizer\.factor=2 seed 0  done    top-1 [\d.]+ %  '
                        r'cMAP [\d.]+ %  F1 [\d.]+  \(\d+ s\)', points[0]), points[0]
    assert points[1].startswith('[2/2] downsample_2x@anonymizer.factor=4 seed 0  done ')
    assert run.stdout.splitlines()[-1].startswith(
        'sweep downsample_2x_anonymizer.factor: 2/2 runs finished, in ')
    assert 'action top-1' not in run.stdout  # no result block per run


@pytest.mark.slow
def test_smoke_run_on_a_terminal_leaves_one_line_per_bar(tmp_path):
    from tests.terminal import run_on_terminal, screen_lines
    code, output = run_on_terminal([sys.executable, '-m', 'benchmark.cli', 'run', '--method', 'raw',
                                    '--profile', 'smoke', '--work-dir', str(tmp_path)], REPO)
    assert code == 0, output[-3000:]
    assert '\x1b[2K' in output  # drawn live, in place
    lines = screen_lines(output)
    assert len(lines) <= 20, lines
    bars = [x for x in lines if re.match(r'(action|privacy)( test)?\s+━+ 5/5 (it|batch)', x)]
    assert len(bars) == 4, lines
    assert [line[:len(p)] for line, p in zip(lines[-len(RESULT_BLOCK):], RESULT_BLOCK)] == list(RESULT_BLOCK)

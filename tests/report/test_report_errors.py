"""`bench report`'s inputs and outputs: stores and exports it cannot read are one line naming
them and are left as they were; folders it cannot write are refused before anything is read;
a report replaces the previous one, so tables, figures and samples come from the same runs."""
from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from benchmark.errors import InputError, TrackingError
from benchmark.report import build_report, grid, sqlite_store


def one_line(err) -> str:
    assert '\n' not in str(err.value)
    return str(err.value)


def test_a_damaged_store_is_one_line_and_left_as_it_was(store, tmp_path):
    data = sqlite_store.sqlite_path(store).read_bytes()
    truncated = tmp_path / 'mlflow.db'
    truncated.write_bytes(data[:len(data) // 3])
    with pytest.raises(TrackingError) as err:
        build_report(f'sqlite:///{truncated}', tmp_path / 'r', tmp_path / 'res')
    assert str(truncated) in one_line(err)
    assert truncated.read_bytes() == data[:len(data) // 3]
    assert not (tmp_path / 'r').exists() and not (tmp_path / 'res').exists()


def test_a_sqlite_file_without_mlflow_tables_is_never_written_to(tmp_path):
    other = tmp_path / 'other.db'
    with sqlite3.connect(other) as db:
        db.execute('CREATE TABLE notes (x TEXT)')
    before = other.read_bytes()
    with pytest.raises(TrackingError) as err:
        build_report(f'sqlite:///{other}', tmp_path / 'r', tmp_path / 'res')
    assert 'holds no MLflow tables' in one_line(err)
    assert other.read_bytes() == before


@pytest.mark.parametrize('content', ['these are my notes\n' * 3, 'run_id,method\n"unclosed\n'])
def test_from_a_file_that_is_not_an_export_names_it(content, tmp_path):
    path = tmp_path / 'notes.txt'
    path.write_text(content)
    with pytest.raises(InputError) as err:
        build_report(None, tmp_path / 'r', tmp_path / 'res', from_csv=path)
    assert str(path) in one_line(err)
    assert not (tmp_path / 'r').exists()


def test_from_a_binary_file_names_it(tmp_path):
    path = tmp_path / 'runs.csv'
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(InputError) as err:
        build_report(None, tmp_path / 'r', tmp_path / 'res', from_csv=path)
    assert str(path) in one_line(err)


def test_nothing_to_report_creates_no_folder(store, tmp_path):
    with pytest.raises(InputError, match='no complete bench run'):
        build_report(store, tmp_path / 'r', tmp_path / 'res', profiles=['paper'])
    assert not list(tmp_path.iterdir())


def test_output_folders_it_cannot_write_are_refused_before_reading(store, tmp_path, monkeypatch):
    (tmp_path / 'a_file').write_text('')
    with pytest.raises(InputError) as err:
        build_report(store, tmp_path / 'a_file' / 'reports', tmp_path / 'res')
    assert 'is a file, not a folder' in one_line(err) and '--out' in one_line(err)
    import benchmark.report
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    monkeypatch.setattr(benchmark.report.os, 'access', lambda path, mode: path != read_only)
    with pytest.raises(InputError) as err:
        build_report(store, tmp_path / 'r', read_only / 'results')
    assert f'{read_only} is not writable' in one_line(err) and '--results' in one_line(err)
    assert not (tmp_path / 'r').exists()


def test_a_report_replaces_the_previous_one(store, built, tmp_path):
    """Stale tables, figures and samples go; what a report does not write stays."""
    out, results = tmp_path / 'reports', tmp_path / 'results'
    shutil.copytree(built['root'] / 'reports', out)
    shutil.copytree(built['root'] / 'results', results)
    (out / 'vp_synth_preview.png').write_bytes(b'a preview: not a report file')
    (out / 'notes.md').write_text('mine')
    (out / 'archive').mkdir()
    (out / 'archive' / 'table1_smoke.md').write_text('an archived table: never removed')
    build_report(store, out, results, datasets=['vp_synth'], profiles=['cpu'])
    names = sorted(p.name for p in out.glob('*'))
    assert {'notes.md', 'vp_synth_preview.png', 'archive', 'plots', 'table1_cpu.md'} <= set(names)
    assert not [n for n in names if '_smoke.' in n]
    assert (out / 'archive' / 'table1_smoke.md').is_file()
    figures = sorted(p.name for p in (out / 'plots').glob('*') if p.name != '.inputs.json')
    assert all('_cpu' in name for name in figures) and 'plane_cpu.png' in figures
    assert not list((results / 'samples').glob('*_smoke.npz'))  # vp_synth cpu logged none


def test_the_frame_grid_draws_only_samples_of_the_tables_runs(tmp_path, monkeypatch):
    frames = np.zeros((2, 4, 8, 8, 3), np.uint8)
    for name, run_id in (('input', 'r1'), ('raw', 'r1'), ('blackening', 'r2'), ('depth', 'old')):
        np.savez(tmp_path / f'{name}_vp_synth_cpu.npz', frames=frames, run_id=np.array(run_id),
                 video_ids=np.array(['a', 'b']))
    drawn = []
    monkeypatch.setattr(grid, '_mosaic', lambda rows: drawn.append(len(rows)) or (
        np.zeros((8, 8, 3), np.uint8), (8, 8)))
    methods = [('raw', 'Raw Data'), ('blackening', 'Blackening'), ('depth', 'Depth Image')]
    grid.frame_grid(tmp_path, 'vp_synth', 'cpu', methods, tmp_path / 'g', run_ids={'r1', 'r2'})
    assert drawn == [2]  # raw (the input) and blackening; depth's sample is another run's
    with pytest.warns(UserWarning, match='no exported test frames of these runs'):
        assert grid.frame_grid(tmp_path, 'vp_synth', 'cpu', methods, tmp_path / 'g',
                               run_ids={'r2'}) == []

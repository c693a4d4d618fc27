"""``bench report --from A --from B``: exports of several stores (machines) merged into one
report, the same as the report of one store holding every run."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.report import build_report
from benchmark.report import runs as runs_io


def _split(results: Path, root: Path, method: str) -> tuple[Path, Path]:
    """The store's export cut in two: every run but ``method``'s, and ``method``'s runs plus one
    run of the first part again (a run exported from two stores)."""
    runs = pd.read_csv(results / 'runs.csv', dtype=str, keep_default_na=False)
    curves = pd.read_csv(results / 'curves.csv', dtype=str, keep_default_na=False)
    mine = runs.method == method
    parts = {'a': runs[~mine], 'b': pd.concat([runs[mine], runs[~mine].head(1)])}
    for name, part in parts.items():
        folder = root / name
        (folder / 'samples').mkdir(parents=True)
        part.to_csv(folder / 'runs.csv', index=False)
        curves[curves.parent_run_id.isin(part.run_id)].to_csv(folder / 'curves.csv', index=False)
        for run_id in part.run_id:
            if (results / 'predictions' / run_id).is_dir():
                shutil.copytree(results / 'predictions' / run_id, folder / 'predictions' / run_id)
    for sample in (results / 'samples').glob('*.npz'):
        shutil.copy(sample, root / ('b' if sample.name.startswith(f'{method}_') else 'a') / 'samples')
    return root / 'a' / 'runs.csv', root / 'b' / 'runs.csv'


def test_merged_exports_give_the_one_store_report(built, tmp_path):
    results = built['root'] / 'results'
    a, b = _split(results, tmp_path, 'raprivacy')
    merged = runs_io.merge_exports([a, b], tmp_path / 'merged')
    pd.testing.assert_frame_equal(runs_io.load_runs(merged), runs_io.load_runs(results / 'runs.csv'))
    written = build_report(None, tmp_path / 'reports', tmp_path / 'unused', from_csv=merged,
                           extra_methods=['newthing'])
    tables = [p for p in written if p.suffix in ('.md', '.tex', '.csv')]
    assert any(p.name == 'paired_smoke.md' for p in tables)  # the intervals' predictions came along
    for path in tables:
        assert path.read_text() == (built['root'] / 'reports' / path.name).read_text(), path.name
    assert (tmp_path / 'merged' / 'samples' / 'raprivacy_vp_hmdb51_smoke.npz').is_file()


def test_the_lower_seed_s_frames_are_kept_whichever_export_comes_first(built, tmp_path):
    runs = runs_io.load_runs(built['root'] / 'results' / 'runs.csv')
    raw = runs[(runs.method == 'raw') & (runs.dataset == 'vp_hmdb51') & (runs.profile == 'smoke')]
    by_seed = dict(zip(raw.seed, raw.run_id))
    sources = []
    for name, seed in (('one', '1'), ('zero', '0')):
        folder = tmp_path / name
        (folder / 'samples').mkdir(parents=True)
        raw[raw.seed == seed].to_csv(folder / 'runs.csv', index=False)
        np.savez(folder / 'samples' / 'raw_vp_hmdb51_smoke.npz', frames=np.zeros((1, 1, 2, 2, 3)),
                 video_ids=np.array(['v']), run_id=np.array(by_seed[seed]))
        sources.append(folder / 'runs.csv')
    for order in (sources, sources[::-1]):
        out = tmp_path / f'merged_{order[0].parent.name}'
        runs_io.merge_exports(order, out)
        with np.load(out / 'samples' / 'raw_vp_hmdb51_smoke.npz') as data:
            assert str(data['run_id']) == by_seed['0']


def test_a_rerun_s_frames_replace_those_of_the_run_it_replaces(built, tmp_path):
    runs = runs_io.load_runs(built['root'] / 'results' / 'runs.csv')
    old = runs[(runs.method == 'raw') & (runs.dataset == 'vp_hmdb51') & (runs.profile == 'smoke')
               & (runs.seed == '0')]
    new = old.assign(run_id='f' * 32, start_time='2099-01-01T00:00:00')  # the same key, run again
    sources = []
    for name, part in (('old', old), ('new', new)):
        folder = tmp_path / name
        (folder / 'samples').mkdir(parents=True)
        part.to_csv(folder / 'runs.csv', index=False)
        np.savez(folder / 'samples' / 'raw_vp_hmdb51_smoke.npz', frames=np.zeros((1, 1, 2, 2, 3)),
                 video_ids=np.array(['v']), run_id=np.array(part.run_id.iloc[0]))
        sources.append(folder / 'runs.csv')
    for order in (sources, sources[::-1]):
        out = tmp_path / f'merged_{order[0].parent.name}'
        merged = runs_io.merge_exports(order, out)
        assert set(runs_io.counting_runs(runs_io.load_runs(merged)).run_id) == {'f' * 32}
        with np.load(out / 'samples' / 'raw_vp_hmdb51_smoke.npz') as data:
            assert str(data['run_id']) == 'f' * 32


def test_cli_merges_into_results_and_names_a_missing_export(built, tmp_path):
    a, b = _split(built['root'] / 'results', tmp_path, 'spact')
    cli = [sys.executable, '-m', 'benchmark.cli', 'report', '--from', str(a), '--from', str(b),
           '--results', str(tmp_path / 'res'), '--out', str(tmp_path / 'rep'), '--profile', 'smoke']
    done = subprocess.run(cli, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f'merged 2 exports into {tmp_path / "res" / "runs.csv"}' in done.stdout
    def measured(path):  # the CLI lists every registered method; the fixture's report others
        return [line for line in path.read_text().splitlines() if 'not run' not in line]
    assert measured(tmp_path / 'rep' / 'table1_smoke.md') == \
        measured(built['root'] / 'reports' / 'table1_smoke.md')
    missing = tmp_path / 'elsewhere' / 'runs.csv'
    done = subprocess.run(cli[:5] + [str(missing)] + cli[6:], capture_output=True, text=True)
    assert done.returncode != 0
    assert str(missing) in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize('column', ['run_id', 'complete'])
def test_an_export_without_a_key_column_is_refused_before_anything_is_written(built, tmp_path, column):
    bad = tmp_path / 'bad' / 'runs.csv'
    bad.parent.mkdir()
    pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str).drop(columns=[column]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=str(bad)):
        runs_io.merge_exports([built['root'] / 'results' / 'runs.csv', bad], tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_a_run_exported_while_running_and_again_ended_counts_as_ended(built, tmp_path):
    runs = runs_io.load_runs(built['root'] / 'results' / 'runs.csv')
    ended = runs[runs.status == 'FINISHED'].head(1)
    stale = ended.assign(status='RUNNING')
    sources = []
    for name, part in (('stale', stale), ('ended', ended)):
        (tmp_path / name / 'samples').mkdir(parents=True)
        part.to_csv(tmp_path / name / 'runs.csv', index=False)
        sources.append(tmp_path / name / 'runs.csv')
    for order in (sources, sources[::-1]):  # whichever export is listed first
        merged = runs_io.load_runs(runs_io.merge_exports(order, tmp_path / 'merged'))
        assert list(merged.run_id) == list(ended.run_id) and list(merged.status) == ['FINISHED']

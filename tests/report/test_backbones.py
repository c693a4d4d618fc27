"""A table names the pretrained target backbones its runs started from (bench.action_init,
bench.privacy_init, benchmark.target_pretrain), and flags a table whose runs started from
different ones: a backbone is trained once per machine and cache, two machines' backbones
differ, and raw's cMAP moved more between them than between its seeds."""
from __future__ import annotations

import shutil

import pandas as pd

from benchmark.report import build_report
from tests.report.conftest import ACTION_INIT, PRIVACY_INIT


def _header_line(path, name):
    return next(x for x in path.read_text().splitlines() if x.startswith(f'- {name}:'))


def _rebuild(built, tmp_path, edit):
    """The report rebuilt from the shared export after ``edit(runs)``."""
    runs = pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str, keep_default_na=False)
    runs = edit(runs)
    folder = tmp_path / 'results'
    folder.mkdir()
    runs.to_csv(folder / 'runs.csv', index=False)
    shutil.copy(built['root'] / 'results' / 'curves.csv', folder / 'curves.csv')
    for name in ('predictions', 'samples'):
        shutil.copytree(built['root'] / 'results' / name, folder / name)
    build_report(None, tmp_path / 'reports', tmp_path / 'unused', from_csv=folder / 'runs.csv')
    return tmp_path / 'reports'


def test_the_header_names_the_backbones_from_the_store_and_from_its_export(built):
    want = f'- target backbones: action {ACTION_INIT}; privacy {PRIVACY_INIT}'
    for folder in ('reports', 'reports_csv'):  # the export carries the tags
        assert _header_line(built['root'] / folder / 'table1_smoke.md', 'target backbones') == want
    assert f'% target backbones: action {ACTION_INIT}' in \
        (built['root'] / 'reports' / 'table1_smoke.tex').read_text()
    runs = pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str)
    assert set(runs.action_init) == {ACTION_INIT} and set(runs.privacy_init) == {PRIVACY_INIT}


def test_a_table_that_mixes_backbones_counts_them_and_warns(built, tmp_path, capsys):
    other = 'ffffeeeeddddcccc'

    def edit(runs):
        runs.loc[(runs.method == 'raw') & (runs.profile == 'smoke'), 'action_init'] = other
        return runs

    reports = _rebuild(built, tmp_path, edit)
    line = _header_line(reports / 'table1_smoke.md', 'target backbones')
    assert line.startswith(f'- target backbones: action {ACTION_INIT} (') and f', {other} (' in line
    assert f'; privacy {PRIVACY_INIT} (MIXED action backbones: figures from runs on different ' \
        'backbones are not comparable' in line
    err = capsys.readouterr().err
    assert "the smoke profile's runs started their target models from different action backbones" in err
    assert 'table1_smoke.md' in err
    # the cpu profile's one run is not mixed, whatever the smoke profile's are
    assert _header_line(reports / 'table1_cpu.md', 'target backbones') == \
        f'- target backbones: action {ACTION_INIT}; privacy {PRIVACY_INIT}'
    assert "the cpu profile's" not in err


def test_an_export_from_before_the_tags_reads_not_recorded_and_does_not_warn(built, tmp_path, capsys):
    reports = _rebuild(built, tmp_path, lambda runs: runs.drop(columns=['action_init', 'privacy_init']))
    assert _header_line(reports / 'table1_smoke.md', 'target backbones') == \
        '- target backbones: action not recorded; privacy not recorded'
    assert 'backbones' not in capsys.readouterr().err


def test_runs_without_the_tag_beside_tagged_ones_are_counted_not_called_a_mix(built, tmp_path, capsys):
    def edit(runs):
        runs.loc[runs.method == 'raw', 'privacy_init'] = ''
        return runs

    reports = _rebuild(built, tmp_path, edit)
    line = _header_line(reports / 'table1_smoke.md', 'target backbones')
    assert line.startswith(f'- target backbones: action {ACTION_INIT}; privacy {PRIVACY_INIT} (')
    assert ', not recorded (' in line and 'MIXED' not in line
    assert 'backbones' not in capsys.readouterr().err

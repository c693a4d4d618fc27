"""bench report over a store logged per tracking_schema.md: Table 1 values, order, not-run rows,
newest-complete selection, seed aggregation, floors, normalized leakage, marks, the transfer
table, the --from rebuild and the figures."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from benchmark.report import paper, runs as runs_io
from tests.report.conftest import N_VIDEOS

PAPER_ORDER = ['raw', 'depth', 'downsample_2x', 'downsample_4x', 'blackening', 'strong_blur',
               'weak_blur', 'collective', 'vita', 'spact', 'stprivacy', 'raprivacy']


@pytest.fixture(scope='module')
def table1(built) -> pd.DataFrame:
    return pd.read_csv(built['root'] / 'reports' / 'table1_smoke.csv', keep_default_na=False,
                       na_values=[''])


def row(table1, dataset, method):
    hit = table1[(table1.dataset == dataset) & (table1.method == method) & (table1.row_kind == 'method')]
    assert len(hit) == 1, f'{method} on {dataset}: {len(hit)} rows'
    return hit.iloc[0]


def test_seed_mean_std_and_count(table1):
    raw = row(table1, 'vp_hmdb51', 'raw')
    assert raw.n_seeds == 3 and raw.seeds == '0 1 2'
    assert raw.action_top1_mean == pytest.approx(0.52)
    assert raw.action_top1_std == pytest.approx(0.02)  # sample std of 0.50, 0.52, 0.54
    assert raw.privacy_cmap_mean == pytest.approx(0.76)
    assert raw.privacy_f1_macro_mean == pytest.approx(0.67)
    single = row(table1, 'vp_hmdb51', 'mymethod')
    assert single.n_seeds == 1 and math.isnan(single.action_top1_std)


def test_only_newest_complete_run_counts(table1):
    spact = row(table1, 'vp_hmdb51', 'spact')
    # seed 0: the complete 0.30, not the newer incomplete 0.99; seed 1: the newer complete 0.35
    assert spact.n_seeds == 2
    assert spact.action_top1_mean == pytest.approx((0.30 + 0.35) / 2)
    assert spact.privacy_cmap_mean == pytest.approx(0.74)


def test_paper_order_not_run_rows_and_extra_methods(table1):
    hmdb = table1[table1.dataset == 'vp_hmdb51']
    assert list(hmdb.method.fillna('')) == PAPER_ORDER + ['mymethod', 'newthing', '']
    assert list(hmdb.row_kind)[-1] == 'floor'
    statuses = dict(zip(hmdb.method, hmdb.status))
    assert statuses['depth'] == 'not run' and statuses['newthing'] == 'not run'
    assert statuses['raw'] == 'ok'
    assert row(table1, 'vp_hmdb51', 'depth').table_name == 'Depth Image'
    # datasets side by side in the paper's order first; vp_synth_b holds transfer runs only...
    assert list(dict.fromkeys(table1.dataset)) == ['vp_hmdb51', 'vp_synth', 'vp_synth_b']


def test_profiles_are_not_mixed(built, table1):
    assert row(table1, 'vp_synth', 'raw').action_top1_mean == pytest.approx(0.91)
    cpu = pd.read_csv(built['root'] / 'reports' / 'table1_cpu.csv')
    raw = cpu[(cpu.method == 'raw') & (cpu.dataset == 'vp_synth')].iloc[0]
    assert raw.n_seeds == 1 and raw.action_top1_mean == pytest.approx(0.60)
    md = (built['root'] / 'reports' / 'table1_cpu.md').read_text()
    assert 'profile: cpu' in md and 'fffffff' in md and 'aaaaaaa' not in md


def test_paper_numbers_and_difference(table1):
    raw = row(table1, 'vp_hmdb51', 'raw')
    assert raw.paper_action_top1 == pytest.approx(0.5144)
    assert raw.diff_action_top1 == pytest.approx(0.52 - 0.5144)
    assert raw.paper_privacy_f1_macro == pytest.approx(0.673)
    assert math.isnan(row(table1, 'vp_synth', 'raw').paper_action_top1)


def test_floor_row_and_its_spread(built, table1):
    floor = table1[(table1.dataset == 'vp_hmdb51') & (table1.row_kind == 'floor')].iloc[0]
    assert floor.privacy_cmap_mean == pytest.approx(0.584)
    assert floor.privacy_f1_macro_mean == pytest.approx(0.688)
    assert floor.action_top1_mean == pytest.approx(0.10)
    synth = table1[(table1.dataset == 'vp_synth') & (table1.row_kind == 'floor')].iloc[0]
    assert (synth.privacy_cmap_min, synth.privacy_cmap_max) == pytest.approx((0.50, 0.52))
    assert any('floor_cmap differs' in w for w in built['warnings'])
    md = (built['root'] / 'reports' / 'table1_smoke.md').read_text()
    assert '50.00–52.00' in md and 'Chance floor' in md


def test_normalized_leakage(table1):
    expected = (0.71 - 0.584) / (0.76 - 0.584)
    assert row(table1, 'vp_hmdb51', 'blackening').normalized_leakage == pytest.approx(expected)
    assert row(table1, 'vp_hmdb51', 'raw').normalized_leakage == pytest.approx(1.0)
    # vp_synth_b has no raw run: no normalization
    assert math.isnan(row(table1, 'vp_synth_b', 'raprivacy').normalized_leakage)


def test_best_and_second_among_learning_methods(built, table1):
    marks = {m: row(table1, 'vp_hmdb51', m) for m in ('raw', 'raprivacy', 'mymethod', 'blackening')}
    # top-1, higher is better: raw (0.52) is not learning-based; raprivacy 0.49, mymethod 0.45
    assert marks['raw'].action_top1_mean_mark == '' or pd.isna(marks['raw'].action_top1_mean_mark)
    assert marks['raprivacy'].action_top1_mean_mark == 'best'
    assert marks['mymethod'].action_top1_mean_mark == 'second'
    # cMAP, lower is better: raprivacy 0.67, mymethod 0.69
    assert marks['raprivacy'].privacy_cmap_mean_mark == 'best'
    assert marks['mymethod'].privacy_cmap_mean_mark == 'second'
    # each mark stands on a significant paired test against the next method
    assert marks['raprivacy'].action_top1_mean_p < 0.05
    assert marks['mymethod'].action_top1_mean_p < 0.05
    # F1: every method predicts every attribute positive, so no difference is significant
    for method in ('raprivacy', 'mymethod', 'blackening'):
        assert pd.isna(marks[method].privacy_f1_macro_mean_mark) or marks[method].privacy_f1_macro_mean_mark == ''
    assert marks['raprivacy'].privacy_f1_macro_mean_p > 0.05
    md = (built['root'] / 'reports' / 'table1_smoke.md').read_text()
    assert re.search(r'\*\*49\.00 ± 1\.41 \[\d+\.\d\d, \d+\.\d\d\]\*\*', md)
    assert re.search(r'<ins>45\.00 \[\d+\.\d\d, \d+\.\d\d\]</ins>', md)
    tex = (built['root'] / 'reports' / 'table1_smoke.tex').read_text()
    assert r'\textbf{49.00 $\pm$ 1.41 [' in tex and r'\underline{45.00 [' in tex


def test_no_mark_without_per_video_outputs_or_for_a_sole_learning_method(table1):
    # vp_synth: raprivacy is the only learning method (and its runs logged no predictions)
    rap = row(table1, 'vp_synth', 'raprivacy')
    assert all(pd.isna(rap[c]) or rap[c] == '' for c in
               ('action_top1_mean_mark', 'privacy_cmap_mean_mark', 'normalized_leakage_mark'))
    assert math.isnan(rap.action_top1_ci_low)


def test_bootstrap_interval_of_each_row_holds_its_mean(table1):
    for method in ('raw', 'blackening', 'raprivacy', 'spact', 'mymethod'):
        r = row(table1, 'vp_hmdb51', method)
        for metric in ('action_top1', 'privacy_cmap', 'privacy_f1_macro'):
            assert r[f'{metric}_ci_low'] <= r[f'{metric}_ci_high']
    # one seed of 400 videos at top-1 0.45: about 0.45 +- 1.96 * sqrt(0.45 * 0.55 / 400)
    mine = row(table1, 'vp_hmdb51', 'mymethod')
    assert mine.action_top1_ci_low == pytest.approx(0.45 - 0.049, abs=0.012)
    assert mine.action_top1_ci_high == pytest.approx(0.45 + 0.049, abs=0.012)


def test_paired_table_against_raw(built):
    paired = pd.read_csv(built['root'] / 'reports' / 'paired_smoke.csv')
    assert set(paired.dataset) == {'vp_hmdb51'} and 'raw' not in set(paired.method)
    top1 = paired[(paired.metric == 'action_top1')].set_index('method')
    # raprivacy vs raw on seeds 0 and 1: 0.49 - 0.51
    assert top1.loc['raprivacy', 'difference'] == pytest.approx(-0.02)
    assert top1.loc['raprivacy', 'seeds'] == 2 and top1.loc['raprivacy', 'videos'] == N_VIDEOS
    assert bool(top1.loc['spact', 'significant'])
    f1 = paired[paired.metric == 'privacy_f1_macro']
    assert not f1.significant.any() and (f1.difference == 0).all()
    md = (built['root'] / 'reports' / 'paired_smoke.md').read_text()
    assert 'Paired comparisons' in md and 'inside the noise' in md


def test_markdown_header_names_profile_commits_devices(built):
    md = (built['root'] / 'reports' / 'table1_smoke.md').read_text()
    assert 'profile: smoke' in md
    assert 'commits: aaaaaaa..bbbbbbb (2 commits)' in md
    assert 'devices: cpu (2 cores)' in md
    assert 'VP-Synth, VP-Synth-B: no paper numbers' in md


def test_latex_is_booktabs_and_balanced(built):
    tex = (built['root'] / 'reports' / 'table1_smoke.tex').read_text()
    assert r'\toprule' in tex and r'\bottomrule' in tex and r'\multicolumn' in tex
    body = tex[tex.index(r'\midrule'):tex.index(r'\bottomrule')]
    lines = [l for l in body.splitlines() if l.endswith(r'\\')]
    header = tex.splitlines()[[i for i, l in enumerate(tex.splitlines()) if l.startswith('Method')][0]]
    assert all(l.count(' & ') == header.count(' & ') for l in lines)
    assert '_' not in tex.replace(r'\_', '').split(r'\begin{table*}')[1]


def test_transfer_table(built):
    transfer = pd.read_csv(built['root'] / 'reports' / 'transfer_smoke.csv')
    rows = transfer[transfer.row_kind == 'method']
    assert list(zip(rows.train_dataset, rows.dataset, rows.method)) == [('vp_synth', 'vp_synth_b', 'raprivacy')]
    r = rows.iloc[0]
    assert r.n_seeds == 2 and r.action_top1_mean == pytest.approx(0.71)
    assert r.in_domain_action_top1_mean == pytest.approx(0.80) and r.in_domain_n_seeds == 1
    # the cost is paired by seed: seed 0 only (0.80 in-domain, 0.70 transferred); no per-video
    # outputs were logged for these runs, so it has no interval
    assert r.cost_action_top1 == pytest.approx(0.10) and r.cost_action_top1_basis == 'seeds'
    assert math.isnan(r.cost_action_top1_ci_low)
    # transfer runs never enter Table 1
    t1 = pd.read_csv(built['root'] / 'reports' / 'table1_smoke.csv')
    b = t1[(t1.dataset == 'vp_synth_b') & (t1.method == 'raprivacy')].iloc[0]
    assert b.n_seeds == 1 and b.action_top1_mean == pytest.approx(0.80)
    md = (built['root'] / 'reports' / 'transfer_smoke.md').read_text()
    assert 'VP-Synth → VP-Synth-B' in md


def test_runs_csv_one_row_per_run_with_directions(built, store):
    exported = pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str, keep_default_na=False)
    from tests.report.conftest import RUNS
    assert len(exported) == len(RUNS)
    assert set(exported['direction.action_top1']) == {'higher'}
    assert set(exported['direction.privacy_cmap']) == {'lower'}
    assert set(exported['direction.time_total_s']) == {''}
    for column in ('method', 'dataset', 'profile', 'seed', 'commit', 'device', 'param.optim.lr'):
        assert column in exported
    assert set(exported['param.optim.lr']) == {'1e-3'}
    reread = runs_io.load_runs(built['root'] / 'results' / 'runs.csv')
    pd.testing.assert_frame_equal(reread, runs_io.read_store(store))


def test_from_csv_rebuilds_the_same_tables(built):
    names = sorted(p.relative_to(built['root'] / 'reports').as_posix() for p in built['from_store']
                   if (built['root'] / 'reports') in p.parents)
    again = sorted(p.relative_to(built['root'] / 'reports_csv').as_posix() for p in built['from_csv'])
    assert names == again
    for name in names:
        if name.endswith(('.md', '.tex', '.csv')):
            assert (built['root'] / 'reports' / name).read_text() == \
                (built['root'] / 'reports_csv' / name).read_text(), name


def test_figures_exist_as_png_and_pdf(built):
    plots = built['root'] / 'reports' / 'plots'
    for stem in ('plane_smoke', 'ap_smoke', 'curves_smoke', 'frames_vp_hmdb51_smoke', 'plane_cpu'):
        png, pdf = plots / f'{stem}.png', plots / f'{stem}.pdf'
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 5000, stem
        assert pdf.read_bytes()[:5] == b'%PDF-', stem
    # vp_synth runs logged no samples: no grid for it
    assert not (plots / 'frames_vp_synth_smoke.png').exists()


def test_curves_and_samples_exported(built):
    curves = pd.read_csv(built['root'] / 'results' / 'curves.csv')
    assert set(curves.stage) == {'fit', 'action', 'privacy'}
    fit = curves[(curves.stage == 'fit') & (curves.metric == 'train_loss')]
    assert len(fit) == 12 and fit.step.max() == 5  # 2 seeds x 6 steps
    assert set(curves.metric) == {'train_loss', 'train_style'}
    samples = built['root'] / 'results' / 'samples'
    with np.load(samples / 'raprivacy_vp_hmdb51_smoke.npz') as data:
        assert data['frames'].shape == (3, 4, 16, 16, 3)
    assert (samples / 'input_vp_hmdb51_smoke.npz').is_file()


def test_unknown_dataset_is_a_one_line_error(store, tmp_path):
    from benchmark.report import build_report
    with pytest.raises(ValueError, match='vp_nope') as info:
        build_report(store, tmp_path / 'r', tmp_path / 'res', datasets=['vp_nope'])
    assert '\n' not in str(info.value) and 'vp_hmdb51' in str(info.value)


def test_from_a_missing_file_names_it(tmp_path):
    from benchmark.report import build_report
    with pytest.raises(FileNotFoundError, match='runs.csv'):
        build_report(None, tmp_path / 'r', tmp_path / 'res', from_csv=tmp_path / 'runs.csv')


def test_paper_table_matches_reference():
    table = paper.load_paper_table()
    assert [m for m, _ in paper.paper_methods()] == PAPER_ORDER
    assert len(table) == 24
    rap = table[(table.method == 'raprivacy') & (table.dataset == 'vp_ucf101')].iloc[0]
    assert (rap.action_top1, rap.privacy_f1_macro, rap.privacy_cmap) == pytest.approx((0.787, 0.626, 0.705))
    assert 'Table 1' in paper.citation()


def test_dataset_and_profile_options_narrow_the_report(store, tmp_path):
    from benchmark.report import build_report
    written = build_report(store, tmp_path / 'r', tmp_path / 'res', datasets=['vp_synth'],
                           profiles=['cpu'])
    assert sorted(p.name for p in written if p.suffix in ('.md', '.csv')) == [
        'curves.csv', 'runs.csv', 'table1_cpu.csv', 'table1_cpu.md']
    table = pd.read_csv(tmp_path / 'r' / 'table1_cpu.csv')
    assert set(table.dataset) == {'vp_synth'} and set(table.profile) == {'cpu'}
    exported = pd.read_csv(tmp_path / 'res' / 'runs.csv')
    assert set(exported.dataset) == {'vp_synth'} and set(exported.profile) == {'cpu'}


def test_figures_are_redrawn_only_when_their_inputs_change(tmp_path):
    from benchmark.report import plots
    calls = []

    def draw(stem):
        calls.append(stem.name)
        stem.with_suffix('.png').write_bytes(b'png')
        return [stem.with_suffix('.png')]

    frame = pd.DataFrame({'a': [1.0, 2.0]})
    job = lambda f: plots.FigureJob(tmp_path / 'fig', ['x', f], lambda: draw(tmp_path / 'fig'))  # noqa: E731
    assert plots.render([job(frame)], workers=1) == [tmp_path / 'fig.png']
    assert plots.render([job(frame)], workers=1) == [tmp_path / 'fig.png']
    assert calls == ['fig']
    plots.render([job(frame.assign(a=[1.0, 2.5]))], workers=1)
    assert calls == ['fig', 'fig']
    (tmp_path / 'fig.png').unlink()
    plots.render([job(frame.assign(a=[1.0, 2.5]))], workers=1)
    assert calls == ['fig', 'fig', 'fig']


def test_runs_on_older_data_never_count():
    """A dataset whose generator changed counts only runs on its newest run's data; the runs
    from before the tag existed read as unversioned, and other datasets keep theirs."""
    rows = [  # (run, start, dataset, method, seed, data_version)
        ('a', '2026-01-01', 'vp_synth', 'raw', '0', None),
        ('b', '2026-01-02', 'vp_synth', 'downsample_2x', '1', None),
        ('c', '2026-01-03', 'vp_hmdb51', 'raw', '0', None),
        ('d', '2026-02-01', 'vp_synth', 'raw', '0', 'generator 2'),
        ('e', '2026-02-02', 'vp_synth', 'raw', '1', 'generator 2'),
    ]
    runs = pd.DataFrame([dict(run_id=r, start_time=t, dataset=d, train_dataset=d, method=m,
                              profile='cpu', seed=s, complete='true', data_version=v)
                         for r, t, d, m, s, v in rows])
    assert sorted(runs_io.counting_runs(runs).run_id) == ['c', 'd', 'e']
    older = runs_io.older_data(runs)
    assert sorted(older.run_id) == ['a', 'b']
    assert {runs_io.data_label(d, v) for d, v in zip(older.dataset, older.data_version)} == {
        'vp_synth (unversioned)'}
    # an export from before the column existed: one version, the newest run per seed counts
    assert sorted(runs_io.counting_runs(runs.drop(columns='data_version')).run_id) == [
        'b', 'c', 'd', 'e']


def test_plane_labels_never_overlap_each_other_markers_or_the_legend():
    """Crowded points (the committed cpu plane had Depth Image on Blackening) get labels placed
    apart, inside the axes, clear of the legend."""
    from matplotlib.figure import Figure
    from benchmark.report.plots import place_labels
    fig = Figure(figsize=(4.4, 3.5))
    ax = fig.subplots()
    x = np.array([74.3, 75.3, 75.0, 77.6, 77.4, 77.0, 72.0, 84.5, 67.8])
    y = np.array([100.0, 99.7, 99.0, 66.3, 17.8, 58.4, 21.3, 89.4, 50.6])
    names = ['Depth Image', 'Blackening', 'Another Method', 'Downsample-2x', 'Downsample-4x',
             'WeakBlur', 'StrongBlur', 'Raw Data', 'RAPrivacy']
    ax.scatter(x, y)
    ax.axhline(10, label='chance floor')
    legend = ax.legend(loc='lower right')
    texts = place_labels(ax, names, x, y, avoid=[legend])
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    frame = ax.get_window_extent(renderer)
    legend_box = legend.get_window_extent(renderer)
    for i, box in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
        assert not box.overlaps(legend_box), names[i]
        for j in range(i):
            assert not box.overlaps(boxes[j]), (names[i], names[j])

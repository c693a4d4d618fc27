"""`bench report --sweep NAME`: the ablation table (mean ± std over seeds, best marked only where
significant) and its figures, from a store logged as tracking_schema.md says."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import InputError
from benchmark.metrics import PRIVACY_ATTRIBUTES

T0 = 1_760_000_000_000
N_VIDEOS = 400
# (sigma, dilate) -> top-1 of seed 0 (seed 1 adds 0.01): (2.0, 0.0) leads clearly
TOP1 = {(2.0, 0.0): 0.80, (2.0, 2.0): 0.50, (4.0, 0.0): 0.48, (4.0, 2.0): 0.30}


def _predictions(top1: float, seed: int) -> dict:
    ids = np.array([f'video_{i:03d}' for i in range(N_VIDEOS)])
    actions = np.arange(N_VIDEOS) % 10
    probs = np.full((N_VIDEOS, 10), 0.05)
    right = round(top1 * N_VIDEOS)  # nested sets of right videos: a higher top-1 is significant
    probs[np.arange(N_VIDEOS), np.where(np.arange(N_VIDEOS) < right, actions, (actions + 1) % 10)] = 0.55
    labels = np.random.default_rng(7).integers(0, 2, size=(N_VIDEOS, len(PRIVACY_ATTRIBUTES)))
    scores = np.random.default_rng(seed).uniform(0.55, 0.95, size=labels.shape)
    return {'action': dict(video_ids=ids, labels=actions, scores=probs),
            'privacy': dict(video_ids=ids, labels=labels, scores=scores)}


def _run(client, exp, method, seed, at, metrics, sweep, folder):
    from mlflow.entities import Metric
    tags = {'bench.kind': 'parent', 'bench.method': method, 'bench.table_name': method,
            'bench.privacy_learning': 'false', 'bench.readable': 'false',
            'bench.dataset': 'vp_synth', 'bench.train_dataset': 'vp_synth', 'bench.profile': 'smoke',
            'bench.seed': str(seed), 'bench.run_key': f'{method}|vp_synth|vp_synth|smoke|{seed}',
            'bench.commit': 'a' * 40, 'bench.dirty': 'false', 'bench.device': 'cpu (2 cores)',
            'bench.protocol_version': '3', 'bench.complete': 'true'}
    if sweep:
        tags['bench.sweep'] = sweep
    run_id = client.create_run(exp, start_time=T0 + at * 1000, tags=tags).info.run_id
    client.log_batch(run_id, metrics=[Metric(k, v, T0, 0) for k, v in metrics.items()])
    if 'action_top1' in metrics and sweep:
        out = folder / run_id
        out.mkdir(parents=True)
        for stage, arrays in _predictions(metrics['action_top1'], seed).items():
            np.savez(out / f'{stage}.npz', **arrays)
        client.log_artifacts(run_id, str(out), artifact_path='predictions')
    if 'action_top1' in metrics:  # test frames as runs log them: one colour per point and seed
        out = folder / f'{run_id}_samples'
        out.mkdir(parents=True)
        ids = np.array(['vp_synth_test_0000', 'vp_synth_test_0001'])
        np.savez(out / 'test_frames.npz', frames=np.broadcast_to(np.array(
            _colour(method, seed), np.uint8), (2, 3, 8, 8, 3)).copy(), video_ids=ids)
        np.savez(out / 'raw_frames.npz', frames=np.full((2, 3, 8, 8, 3), INPUT_COLOUR, np.uint8),
                 video_ids=ids)
        client.log_artifacts(run_id, str(out), artifact_path='samples')
    client.set_terminated(run_id, 'FINISHED')


INPUT_COLOUR = (0, 0, 250)


def _colour(method: str, seed: int) -> tuple[int, int, int]:
    """strong_blur@anonymizer.sigma=S,anonymizer.dilate=D -> (40 S, 40 + 50 D, 100 seed)."""
    from benchmark.report.sweep import variant_values
    values = variant_values(method.partition('@')[2])
    return (int(40 * float(values.get('anonymizer.sigma', 0))),
            int(40 + 50 * float(values.get('anonymizer.dilate', 0))), 100 * seed)


@pytest.fixture(scope='module')
def store(tmp_path_factory) -> str:
    from mlflow.tracking import MlflowClient
    root = tmp_path_factory.mktemp('sweep_store')
    uri = f'sqlite:///{root / "mlflow.db"}'
    client = MlflowClient(uri)
    exp = client.create_experiment('vp_synth', artifact_location=(root / 'artifacts').as_uri())
    at = 0
    for (sigma, dilate), top1 in TOP1.items():
        for seed in (0, 1):
            at += 1
            metrics = {'action_top1': top1 + 0.01 * seed, 'privacy_cmap': 0.6 + sigma / 100,
                       'privacy_f1_macro': 0.6, 'floor_action_top1': 0.1, 'floor_cmap': 0.57,
                       'floor_f1_macro': 0.68, 'readability_outline': 0.5 + dilate / 10}
            sweep = 'abl' if (sigma, dilate) != (4.0, 2.0) or seed == 0 else 'abl,other'
            _run(client, exp, f'strong_blur@anonymizer.sigma={sigma},anonymizer.dilate={dilate}',
                 seed, at, metrics, sweep, root / 'upload')
    _run(client, exp, 'raw', 0, 99, {'action_top1': 0.9, 'privacy_cmap': 0.8}, '', root / 'upload')
    return uri


def test_sweep_table_and_figures(store, tmp_path):
    from benchmark.report.sweep import build_sweep_report
    written = build_sweep_report(store, 'abl', tmp_path / 'reports', tmp_path / 'results')
    names = {p.name for p in written}
    assert {'sweep_abl.md', 'sweep_abl.csv', 'sweep_abl_plane.png', 'sweep_abl_plane.pdf',
            'sweep_abl_heatmap.png', 'sweep_abl_heatmap.pdf'} <= names
    table = (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert '| anonymizer.sigma | anonymizer.dilate | seeds | Top-1 ↑ | F1 ↓ | cMAP ↓ | outline |' in table
    lines = [x for x in table.splitlines() if x.startswith('| 2.0 | 0.0 |')]
    # mean ± std of the logged metric, then the interval of the seed mean from the per-video outputs
    assert lines == ['| 2.0 | 0.0 | 2 | **80.50 ± 0.71 [76.50, 84.38]** | 0.600 ± 0.000 [0.650, 0.689] | '
                     '62.00 ± 0.00 [48.70, 54.34] | 0.500 |'], table
    assert '- threads per run: ' in table and '- libraries: ' in table  # Table 1's header
    assert '| 4.0 | 2.0 | 2 |' in table  # a run of two sweeps counts in both
    assert 'raw' not in table
    import pandas as pd
    frame = pd.read_csv(tmp_path / 'reports' / 'sweep_abl.csv')
    assert len(frame) == 4 and frame.action_top1_mean_mark.fillna('').tolist().count('best') == 1
    assert frame.n_seeds.tolist() == [2, 2, 2, 2]


def test_one_seed_per_point_marks_nothing_and_one_point_has_no_heatmap(store, tmp_path):
    from benchmark.report.sweep import build_sweep_report
    written = build_sweep_report(store, 'other', tmp_path / 'reports', tmp_path / 'results')
    assert not any('heatmap' in p.name for p in written)
    rows = [x for x in (tmp_path / 'reports' / 'sweep_other.md').read_text().splitlines()
            if x.startswith('| 4.0 |')]
    assert len(rows) == 1 and '**' not in rows[0] and '<u>' not in rows[0]


def test_unknown_sweep_names_the_closest(store, tmp_path):
    from benchmark.report.sweep import build_sweep_report
    with pytest.raises(InputError, match=r"no complete run of sweep 'abll'.*did you mean 'abl'"):
        build_sweep_report(store, 'abll', tmp_path / 'reports', tmp_path / 'results')


def test_table1_leaves_sweep_points_to_their_report_and_keeps_its_files(store, tmp_path, capsys):
    from benchmark.report import build_report
    from benchmark.report.sweep import build_sweep_report
    reports = tmp_path / 'reports'
    build_sweep_report(store, 'other', reports, tmp_path / 'results')
    (reports / 'sweep_other.md').rename(reports / 'sweep_other_smoke.md')  # a name like a profile's
    build_report(store, reports, tmp_path / 'results')
    assert 'bench report: 8 runs of sweeps are left to their own reports' in capsys.readouterr().out
    table = (reports / 'table1_smoke.md').read_text()
    assert 'strong_blur@' not in table and '- runs: 1 (' in table  # the raw run alone
    assert (reports / 'sweep_other_smoke.md').exists()


def _colours_in(png) -> set[tuple[int, int, int]]:
    from matplotlib.image import imread
    pixels = (imread(png)[..., :3] * 255).round().astype(int).reshape(-1, 3)
    return set(map(tuple, np.unique(pixels, axis=0).tolist()))


def test_the_sweep_draws_each_points_frames_and_keeps_them_apart_from_table1s(store, tmp_path):
    """The frame grid shows the same test clips through every point (its lowest seed's run),
    from samples exported to samples/sweep_<name>/, which Table 1's report in the same results
    folder neither replaces nor removes, and which a report --from the export draws again."""
    from benchmark.report import build_report
    from benchmark.report.sweep import build_sweep_report
    reports, results = tmp_path / 'reports', tmp_path / 'results'
    written = build_sweep_report(store, 'abl', reports, results)
    folder = results / 'samples' / 'sweep_abl'
    points = [f'strong_blur@anonymizer.sigma={s},anonymizer.dilate={d}' for s, d in TOP1]
    assert {p.name for p in folder.glob('*.npz')} == {
        'input_vp_synth_smoke.npz', *(f'{m}_vp_synth_smoke.npz' for m in points)}
    assert reports / 'plots' / 'sweep_abl_frames.png' in written
    colours = _colours_in(reports / 'plots' / 'sweep_abl_frames.png')
    assert INPUT_COLOUR in colours
    assert {_colour(m, 0) for m in points} <= colours  # every point, by its seed-0 run
    assert not {_colour(m, 1) for m in points} & colours
    build_report(store, reports, results)  # Table 1 (the raw run) into the same folders
    assert (results / 'samples' / 'raw_vp_synth_smoke.npz').exists()
    assert len(list(folder.glob('*.npz'))) == 5
    assert (reports / 'plots' / 'sweep_abl_frames.png').exists()
    again = build_sweep_report(None, 'abl', tmp_path / 'from_csv', tmp_path / 'unused',
                               from_csv=results / 'runs.csv')
    assert tmp_path / 'from_csv' / 'plots' / 'sweep_abl_frames.png' in again
    assert _colours_in(tmp_path / 'from_csv' / 'plots' / 'sweep_abl_frames.png') == colours


def _manifest(work, seeds):
    import json
    grid = {'anonymizer.sigma': [2.0, 4.0], 'anonymizer.dilate': [0.0, 2.0]}
    definition = dict(method='strong_blur', dataset='vp_synth', profile='smoke',
                      train_dataset=None, grid=grid, seeds=seeds)
    (work / 'sweeps').mkdir(parents=True)
    (work / 'sweeps' / 'abl.json').write_text(json.dumps({'definition': definition, 'points': {}}))


def test_a_partial_sweep_names_its_missing_points_in_the_table_and_on_stderr(store, tmp_path, capsys):
    from benchmark.report.sweep import build_sweep_report
    _manifest(tmp_path / 'work', [0, 1, 2])  # a third seed planned, none of it run yet
    written = build_sweep_report(store, 'abl', tmp_path / 'reports', tmp_path / 'results',
                                 work_dir=tmp_path / 'work')
    said = ('8 of 12 planned have a complete run; not yet: anonymizer.sigma=2.0,anonymizer.dilate=0.0 '
            '(seed 2); anonymizer.sigma=2.0,anonymizer.dilate=2.0 (seed 2); '
            'anonymizer.sigma=4.0,anonymizer.dilate=0.0 (seed 2); '
            'anonymizer.sigma=4.0,anonymizer.dilate=2.0 (seed 2). The table is partial until they do.')
    assert f'Points: {said}' in (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert f'bench report: sweep abl: {said}' in capsys.readouterr().err
    copy = tmp_path / 'results' / 'sweeps' / 'abl.json'
    assert copy in written  # beside the per-video outputs, for a report --from the export


def test_a_complete_sweep_says_so_and_a_missing_manifest_is_not_taken_as_complete(store, tmp_path, capsys):
    from benchmark.report.sweep import build_sweep_report
    _manifest(tmp_path / 'work', [0, 1])
    build_sweep_report(store, 'abl', tmp_path / 'reports', tmp_path / 'results',
                       work_dir=tmp_path / 'work')
    table = (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert 'Points: all 8 planned (4 variants x 2 seeds) have a complete run.' in table
    assert capsys.readouterr().err == ''
    build_sweep_report(store, 'abl', tmp_path / 'elsewhere', tmp_path / 'results2',
                       work_dir=tmp_path / 'nowhere')
    assert "the sweep's manifest (sweeps/<name>.json in the work dir it ran in) was not found, so " \
        'whether every planned point is here is not checked.' in \
        (tmp_path / 'elsewhere' / 'sweep_abl.md').read_text()


def test_a_sweep_whose_points_started_from_different_backbones_says_so(store, tmp_path, capsys):
    """Points run on two machines (each pretrains its own target backbones) are not comparable:
    the table names the backbones with their counts and stderr warns."""
    from benchmark.report import runs as runs_io
    from benchmark.report.sweep import build_sweep_report
    runs = runs_io.read_store(store)
    runs['action_init'], runs['privacy_init'] = 'aaaa000011112222', 'bbbb000011112222'
    build_sweep_report(None, 'abl', tmp_path / 'same', tmp_path / 'unused', from_csv=_export(runs, tmp_path / 'a'))
    assert '- target backbones: action aaaa000011112222; privacy bbbb000011112222\n' in \
        (tmp_path / 'same' / 'sweep_abl.md').read_text()
    assert 'backbones' not in capsys.readouterr().err
    runs.loc[runs.seed == '1', 'action_init'] = 'cccc000011112222'  # seed 1 ran elsewhere
    build_sweep_report(None, 'abl', tmp_path / 'mixed', tmp_path / 'unused', from_csv=_export(runs, tmp_path / 'b'))
    table = (tmp_path / 'mixed' / 'sweep_abl.md').read_text()
    assert '- target backbones: action aaaa000011112222 (4 runs), cccc000011112222 (4 runs); privacy ' \
        'bbbb000011112222 (MIXED action backbones' in table
    assert 'bench report: sweep abl: its points started their target models from different action ' \
        'backbones' in capsys.readouterr().err


def _export(runs, folder):
    folder.mkdir()
    runs.to_csv(folder / 'runs.csv', index=False)
    return folder / 'runs.csv'


def _manifest_at(work, grid, seeds, **fixed):
    import json
    definition = dict(method='strong_blur', dataset='vp_synth', profile='smoke', train_dataset=None,
                      grid=grid, seeds=seeds, **fixed)
    (work / 'sweeps').mkdir(parents=True, exist_ok=True)
    (work / 'sweeps' / 'abl.json').write_text(json.dumps({'definition': definition, 'points': {}}))


def test_a_sweep_split_over_two_machines_is_reported_whole_from_their_merged_exports(store, tmp_path, capsys):
    """Each machine ran half the grid in a store of its own: `bench report --sweep` exports each
    store with its manifest, and `--from A --from B` reports the sweep as one."""
    import pandas as pd

    from benchmark.cli import main
    from benchmark.report.sweep import build_sweep_report
    exports = {}
    for part, sigma in (('a', 2.0), ('b', 4.0)):
        _manifest_at(tmp_path / f'work_{part}', {'anonymizer.sigma': [sigma], 'anonymizer.dilate': [0.0, 2.0]}, [0, 1])
        written = build_sweep_report(store, 'abl', tmp_path / f'reports_{part}', tmp_path / f'results_{part}',
                                     work_dir=tmp_path / f'work_{part}')
        runs_csv = tmp_path / f'results_{part}' / 'runs.csv'
        assert runs_csv in written and (tmp_path / f'results_{part}' / 'curves.csv') in written
        runs = pd.read_csv(runs_csv, dtype=str, keep_default_na=False)
        runs[runs.method.str.contains(f'sigma={sigma},')].to_csv(runs_csv, index=False)  # its half
        exports[part] = runs_csv
    capsys.readouterr()
    assert main(['report', '--sweep', 'abl', '--from', str(exports['a']), '--from', str(exports['b']),
                 '--results', str(tmp_path / 'merged'), '--out', str(tmp_path / 'reports')]) == 0
    table = (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert 'Points: all 8 planned (4 variants x 2 seeds) have a complete run.' in table
    main_table = table.partition('## Each point against')[0]
    assert sum(line.startswith(('| 2.0 |', '| 4.0 |')) for line in main_table.splitlines()) == 4
    assert '**80.50 ± 0.71 [' in table  # the per-video outputs came along: the lead is tested
    merged = tmp_path / 'merged' / 'samples' / 'sweep_abl'  # and the test frames
    assert len(list(merged.glob('strong_blur@*.npz'))) == 4 and (merged / 'input_vp_synth_smoke.npz').exists()
    assert (tmp_path / 'reports' / 'plots' / 'sweep_abl_frames.png').exists()
    assert 'not yet' not in capsys.readouterr().err


def test_merged_exports_of_two_different_sweeps_under_one_name_are_refused(store, tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.report.sweep import build_sweep_report
    for part, grid in (('a', {'anonymizer.sigma': [2.0, 4.0]}), ('b', {'anonymizer.dilate': [0.0]})):
        _manifest_at(tmp_path / f'work_{part}', grid, [0])
        build_sweep_report(store, 'abl', tmp_path / f'reports_{part}', tmp_path / f'results_{part}',
                           work_dir=tmp_path / f'work_{part}')
    capsys.readouterr()
    code = main(['report', '--sweep', 'abl', '--from', str(tmp_path / 'results_a' / 'runs.csv'),
                 '--from', str(tmp_path / 'results_b' / 'runs.csv'), '--results', str(tmp_path / 'merged'),
                 '--out', str(tmp_path / 'reports')])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1, err
    assert 'sweep abl:' in err[0] and 'are two sweeps under one name (grid keys anonymizer.sigma, ' \
        'not anonymizer.dilate)' in err[0]
    assert not (tmp_path / 'reports' / 'sweep_abl.md').exists()


def test_a_two_key_sweep_is_covered_whatever_order_its_manifest_keeps_the_keys_in(store, tmp_path):
    """`bench sweep` names a point by the grid's keys in the order given (sigma, then dilate);
    the manifest it writes keeps that order, and one written before it did (keys sorted) is
    still matched to the runs."""
    import json

    from benchmark.report.sweep import build_sweep_report
    from benchmark.sweep import Manifest
    grid = {'anonymizer.sigma': [2.0, 4.0], 'anonymizer.dilate': [0.0, 2.0]}
    definition = dict(method='strong_blur', dataset='vp_synth', profile='smoke', train_dataset=None,
                      grid=grid, seeds=[0, 1])
    Manifest(tmp_path / 'work', 'abl').start(definition)
    assert list(json.loads((tmp_path / 'work' / 'sweeps' / 'abl.json').read_text())['definition']['grid']) == \
        ['anonymizer.sigma', 'anonymizer.dilate']
    old = tmp_path / 'old' / 'sweeps' / 'abl.json'
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({'definition': definition, 'points': {}}, sort_keys=True))
    for work in ('work', 'old'):
        build_sweep_report(store, 'abl', tmp_path / f'reports_{work}', tmp_path / f'results_{work}',
                           work_dir=tmp_path / work)
        assert 'Points: all 8 planned (4 variants x 2 seeds) have a complete run.' in \
            (tmp_path / f'reports_{work}' / 'sweep_abl.md').read_text()


def test_the_sweeps_export_keeps_the_curves_of_the_stores_other_runs(store, tmp_path):
    """`bench report` and `bench report --sweep` write one export folder: the sweep's must not
    drop the training curves of the store's other runs that a report --from it draws."""
    import pandas as pd
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    from benchmark.report import runs as runs_io
    from benchmark.report.sweep import build_sweep_report
    client = MlflowClient(store)
    runs = runs_io.read_store(store)
    raw = runs[runs.method == 'raw'].iloc[0]
    child = client.create_run(client.get_run(raw.run_id).info.experiment_id, tags={
        'mlflow.parentRunId': raw.run_id, 'bench.kind': 'stage', 'bench.stage': 'action'})
    client.log_batch(child.info.run_id, metrics=[Metric('train_loss', 1.0 / (s + 1), T0 + s, s)
                                                 for s in range(3)])
    client.set_terminated(child.info.run_id)
    build_sweep_report(store, 'abl', tmp_path / 'reports', tmp_path / 'results')
    curves = pd.read_csv(tmp_path / 'results' / 'curves.csv', dtype=str)
    assert raw.run_id in set(curves.parent_run_id)


def test_every_point_is_compared_with_the_first_planned_point_paired_over_seeds_and_videos(store, tmp_path):
    """Below the table, each point against the sweep's first planned point (the first value given
    on each axis): the paired difference with its interval and p, a star only where significant."""
    import pandas as pd

    from benchmark.report.sweep import build_sweep_report
    _manifest_at(tmp_path / 'work', {'anonymizer.sigma': [2.0, 4.0], 'anonymizer.dilate': [0.0, 2.0]}, [0, 1])
    written = build_sweep_report(store, 'abl', tmp_path / 'reports', tmp_path / 'results',
                                 work_dir=tmp_path / 'work')
    table = (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert '## Each point against anonymizer.sigma=2.0,anonymizer.dilate=0.0' in table
    rows = {line.split(' | ')[0] + ' | ' + line.split(' | ')[1]: line for line in table.splitlines()
            if line.startswith(('| 2.0 | 2.0 | -', '| 4.0 |')) and ' | 2 | 400 |' in line}
    assert len(rows) == 3  # every point but the reference
    # top-1 30 points below on nested sets of right videos: significant; cMAP the same: not
    assert rows['| 2.0 | 2.0'].startswith('| 2.0 | 2.0 | -30.00 [') and '* | <0.001 |' in rows['| 2.0 | 2.0']
    assert '| +0.00 [+0.00, +0.00] | 1.000 | 2 | 400 |' in rows['| 4.0 | 2.0']
    paired = pd.read_csv(tmp_path / 'reports' / 'sweep_abl_paired.csv')
    assert tmp_path / 'reports' / 'sweep_abl_paired.csv' in written
    assert len(paired) == 9 and set(paired.reference) == {'anonymizer.sigma=2.0,anonymizer.dilate=0.0'}
    top1 = paired[paired.metric == 'action_top1'].set_index('variant')
    assert top1.loc['anonymizer.sigma=4.0,anonymizer.dilate=2.0', 'difference'] == pytest.approx(-0.50)
    assert top1.significant.all() and not paired[paired.metric == 'privacy_cmap'].significant.any()
    # the first value given, not the smallest: a grid listed the other way round
    _manifest_at(tmp_path / 'work2', {'anonymizer.sigma': [4.0, 2.0], 'anonymizer.dilate': [2.0, 0.0]}, [0, 1])
    build_sweep_report(store, 'abl', tmp_path / 'reports2', tmp_path / 'results2', work_dir=tmp_path / 'work2')
    assert '## Each point against anonymizer.sigma=4.0,anonymizer.dilate=2.0' in \
        (tmp_path / 'reports2' / 'sweep_abl.md').read_text()


def test_reference_picks_the_point_to_compare_with_and_an_unknown_one_names_the_closest(store, tmp_path, capsys):
    from benchmark.cli import main
    out = ['--tracking-uri', store, '--results', str(tmp_path / 'results'), '--out', str(tmp_path / 'reports')]
    # the keys in any order; the report names the point as the table does
    assert main(['report', '--sweep', 'abl', '--reference', 'anonymizer.dilate=2.0,anonymizer.sigma=4.0', *out]) == 0
    table = (tmp_path / 'reports' / 'sweep_abl.md').read_text()
    assert '## Each point against anonymizer.sigma=4.0,anonymizer.dilate=2.0' in table
    assert any(line.startswith('| 2.0 | 0.0 | +50.00 [') for line in table.splitlines())
    capsys.readouterr()
    assert main(['report', '--sweep', 'abl', '--reference', 'anonymizer.sigma=3.0,anonymizer.dilate=0.0', *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--reference 'anonymizer.sigma=3.0,anonymizer.dilate=0.0': no such point in " \
        "this sweep: did you mean 'anonymizer.sigma=" in err[0], err
    assert "'anonymizer.sigma=2.0,anonymizer.dilate=0.0'" in err[0]  # one of the nearest
    assert main(['report', '--reference', 'style=rgb', *out]) == 2
    assert 'give --sweep NAME too' in capsys.readouterr().err

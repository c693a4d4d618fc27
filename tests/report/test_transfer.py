"""The transfer table and figure, built by ``bench report --from`` from a runs.csv that holds
in-domain and transfer runs of two learning methods, with per-video test outputs whose figures
can be checked by hand.

VP-Synth-B's test split here is 20 videos. Action: a run gets the first k videos right (nested
sets, so a run that gets fewer right is worse on every resample). Privacy: attribute j is
positive on the 5 videos with (i + j) % 4 == 0 (rate 0.25); a constant score gives AP 0.25 (the
mean positive rate), scores that rank every positive first give AP 1.0; every score is at least
0.5, so every run predicts all positive and has the same F1 (cost exactly 0).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.metrics import PRIVACY_ATTRIBUTES
from benchmark.report import paper, runs as runs_io, tables

N = 20
ACTIONS = np.arange(N) % 10
PRIVACY = np.array([[(i + j) % 4 == 0 for j in range(len(PRIVACY_ATTRIBUTES))] for i in range(N)],
                   dtype=np.uint8)
ALL_POSITIVE_F1 = 2 * 0.25 / 1.25  # precision 0.25, recall 1

# (method, train_dataset, dataset, seed, videos right, privacy ranking perfect?)
RUNS = [
    ('raprivacy', 'vp_synth_b', 'vp_synth_b', 0, 18, False),
    ('raprivacy', 'vp_synth_b', 'vp_synth_b', 1, 16, False),
    ('raprivacy', 'vp_synth', 'vp_synth_b', 0, 14, True),
    ('raprivacy', 'vp_synth', 'vp_synth_b', 1, 12, True),
    ('spact', 'vp_synth_b', 'vp_synth_b', 0, 16, False),
    ('spact', 'vp_synth_b', 'vp_synth_b', 1, 16, False),
    ('spact', 'vp_synth', 'vp_synth_b', 0, 16, False),
    ('spact', 'vp_synth', 'vp_synth_b', 1, 14, False),
    # fitted and evaluated on domain A: in neither side of the B table
    ('raprivacy', 'vp_synth', 'vp_synth', 0, 20, False),
]


def _outputs(right: int, perfect: bool) -> dict[str, dict]:
    ids = np.array([f'b_{i:02d}' for i in range(N)])
    action = np.full((N, 10), 0.05)
    guess = np.where(np.arange(N) < right, ACTIONS, (ACTIONS + 1) % 10)
    action[np.arange(N), guess] = 0.55
    privacy = 0.6 + 0.3 * PRIVACY if perfect else np.full(PRIVACY.shape, 0.7)
    return {'action': dict(video_ids=ids, labels=ACTIONS, scores=action),
            'privacy': dict(video_ids=ids, labels=PRIVACY, scores=privacy)}


def _write_export(folder) -> None:
    rows = []
    for n, (method, train, dataset, seed, right, perfect) in enumerate(RUNS):
        run_id = f'run{n:02d}'
        outputs = _outputs(right, perfect)
        for stage, arrays in outputs.items():
            target = runs_io.prediction_path(folder / 'predictions', run_id, stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez(target, **arrays)
        rows.append({
            'run_id': run_id, 'experiment': dataset, 'run_name': f'{method}-smoke-s{seed}',
            'status': 'FINISHED', 'start_time': f'2026-12-01T10:{n:02d}:00.000Z',
            'end_time': f'2026-12-01T10:{n:02d}:30.000Z', 'method': method,
            'table_name': {'raprivacy': 'RAPrivacy', 'spact': 'SPAct'}[method],
            'privacy_learning': 'true', 'readable': str(method == 'raprivacy').lower(),
            'train_dataset': train, 'dataset': dataset, 'profile': 'smoke', 'seed': str(seed),
            'commit': 'c' * 40, 'dirty': 'false', 'device': 'cpu (2 cores)',
            'protocol_version': '5', 'complete': 'true', 'data_version': 'generator 2',
            'metric.action_top1': right / N, 'metric.privacy_f1_macro': ALL_POSITIVE_F1,
            'metric.privacy_cmap': 1.0 if perfect else 0.25,
            'metric.floor_action_top1': 0.1, 'metric.floor_cmap': 0.25,
            'metric.floor_f1_macro': ALL_POSITIVE_F1})
    pd.DataFrame(rows).to_csv(folder / 'runs.csv', index=False)


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    from benchmark.report import build_report
    root = tmp_path_factory.mktemp('transfer')
    _write_export(root / 'results')
    written = build_report(None, root / 'reports', root / 'unused',
                           from_csv=root / 'results' / 'runs.csv')
    frame = pd.read_csv(root / 'reports' / 'transfer_smoke.csv', keep_default_na=False,
                        na_values=[''])
    return {'root': root, 'written': written, 'frame': frame}


def _method_row(frame, method):
    hit = frame[(frame.method == method) & (frame.row_kind == 'method')]
    assert len(hit) == 1
    return hit.iloc[0]


def test_transfer_table_in_domain_transfer_and_cost(report):
    frame = report['frame']
    assert list(frame.method.fillna('')) == ['spact', 'raprivacy', '']  # the paper's order, floor
    assert set(zip(frame.train_dataset, frame.dataset)) == {('vp_synth', 'vp_synth_b')}
    rap = _method_row(frame, 'raprivacy')
    assert (rap.n_seeds, rap.in_domain_n_seeds) == (2, 2)
    # top-1: in-domain 18/20 and 16/20, transfer 14/20 and 12/20; the vp_synth run stays out
    assert rap.in_domain_action_top1_mean == pytest.approx(0.85)
    assert rap.in_domain_action_top1_std == pytest.approx(math.sqrt(0.005))
    assert rap.action_top1_mean == pytest.approx(0.65)
    assert rap.cost_action_top1 == pytest.approx(0.20)
    # paired over the same videos: the transfer gets a subset right, so no resample is negative
    assert 0.0 <= rap.cost_action_top1_ci_low < 0.20 < rap.cost_action_top1_ci_high <= 0.40
    assert rap.cost_action_top1_p < 0.05 and rap.cost_action_top1_basis == 'videos and seeds'
    # cMAP: in-domain AP = the positive rate 0.25, transfer ranks every positive first (1.0)
    assert rap.in_domain_privacy_cmap_mean == pytest.approx(0.25)
    assert rap.privacy_cmap_mean == pytest.approx(1.0)
    assert rap.cost_privacy_cmap == pytest.approx(-0.75)
    assert rap.cost_privacy_cmap_ci_high < 0 and rap.cost_privacy_cmap_p < 0.05
    # F1: every run predicts all positive
    assert rap.cost_privacy_f1_macro == pytest.approx(0.0)
    assert rap.cost_privacy_f1_macro_p == pytest.approx(1.0)
    spact = _method_row(frame, 'spact')
    assert spact.in_domain_action_top1_mean == pytest.approx(0.80)
    assert spact.action_top1_mean == pytest.approx(0.75)
    assert spact.cost_action_top1 == pytest.approx(0.05)
    assert spact.cost_action_top1_ci_low <= 0.0  # one seed, two videos: inside the noise
    assert spact.cost_privacy_cmap == pytest.approx(0.0)
    # intervals of each side's seed mean
    assert spact.action_top1_ci_low <= 0.75 <= spact.action_top1_ci_high
    floor = frame[frame.row_kind == 'floor'].iloc[0]
    assert floor.privacy_cmap_mean == pytest.approx(0.25)


def test_transfer_markdown_and_latex(report):
    md = (report['root'] / 'reports' / 'transfer_smoke.md').read_text()
    line = next(l for l in md.splitlines() if '| RAPrivacy |' in l)
    cells = [c.strip() for c in line.strip('|').split('|')]
    assert cells[0] == 'VP-Synth → VP-Synth-B'
    assert cells[2].startswith('85.00 ± 7.07 [') and cells[3].startswith('65.00 ± 7.07 [')
    assert cells[4].startswith('+20.00 [') and cells[4].endswith(']*')
    assert cells[-1] == '2 / 2'
    assert 'Cost = in-domain − transfer' in md
    assert '- runs: 8 ' in md  # both sides of the table, not the vp_synth run
    assert 'paper in-domain' not in md  # no paper figures for the embedded data
    tex = (report['root'] / 'reports' / 'transfer_smoke.tex').read_text()
    header = next(l for l in tex.splitlines() if l.startswith('Trained on'))
    body = [l for l in tex[tex.index(r'\midrule'):].splitlines()
            if l.endswith(r'\\') and not l.startswith(r'\multicolumn')]
    assert body and all(l.count(' & ') == header.count(' & ') for l in body)


def test_transfer_figure_is_written(report):
    names = {p.name for p in report['written']}
    assert {'transfer_smoke.png', 'transfer_smoke.pdf'} <= names


def test_transfer_plane_draws_an_arrow_from_in_domain_to_transfer(report):
    from matplotlib.text import Annotation
    from benchmark.report.plots import draw_transfer_plane
    frame = report['frame']
    table = tables.Table('transfer', 'smoke', frame, {})
    fig = draw_transfer_plane(table)
    ax = fig.axes[0]
    arrows = {a.get_gid(): a for a in ax.texts if isinstance(a, Annotation)
              and (a.get_gid() or '').startswith('transfer:')}
    assert set(arrows) == {'transfer:raprivacy', 'transfer:spact'}
    for method in ('raprivacy', 'spact'):
        row = _method_row(frame, method)
        arrow = arrows[f'transfer:{method}']
        assert arrow.arrow_patch is not None
        # tail at the in-domain point, head at the transferred one (cMAP, top-1 in %)
        assert arrow.xyann == pytest.approx((row.in_domain_privacy_cmap_mean * 100,
                                             row.in_domain_action_top1_mean * 100))
        assert arrow.xy == pytest.approx((row.privacy_cmap_mean * 100, row.action_top1_mean * 100))
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if (t.get_gid() or '').startswith('label:')]
    assert sorted(t.get_text() for t in labels) == ['RAPrivacy', 'SPAct']
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not boxes[0].overlaps(boxes[1])
    marker = 4 * fig.dpi / 72
    for box in boxes:  # clear of all four markers
        for x, y in ax.transData.transform(np.column_stack([
                list(frame.privacy_cmap_mean[:2] * 100) + list(frame.in_domain_privacy_cmap_mean[:2] * 100),
                list(frame.action_top1_mean[:2] * 100) + list(frame.in_domain_action_top1_mean[:2] * 100)])):
            assert not (box.x0 < x + marker and x - marker < box.x1
                        and box.y0 < y + marker and y - marker < box.y1)


def _run(method, train, dataset, seed, top1, cmap=0.7, f1=0.6):
    return {'run_id': f'{method}-{train}-{seed}', 'profile': 'paper', 'dataset': dataset,
            'train_dataset': train, 'method': method, 'table_name': method,
            'privacy_learning': 'true', 'seed': str(seed), 'commit': 'c' * 40, 'dirty': 'false',
            'device': 'cuda', 'start_time': f'2026-12-01T10:0{seed}:00Z', 'protocol_version': '5',
            'data_version': '', 'metric.action_top1': top1, 'metric.privacy_cmap': cmap,
            'metric.privacy_f1_macro': f1, 'metric.floor_action_top1': 0.02,
            'metric.floor_cmap': 0.58, 'metric.floor_f1_macro': 0.69}


def test_real_data_rows_show_the_papers_in_domain_figures_and_no_interval_without_outputs():
    counting = pd.DataFrame([_run('raprivacy', 'vp_hmdb51', 'vp_hmdb51', 0, 0.50),
                             _run('raprivacy', 'vp_hmdb51', 'vp_hmdb51', 1, 0.48),
                             _run('raprivacy', 'vp_ucf101', 'vp_hmdb51', 0, 0.45),
                             _run('raprivacy', 'vp_ucf101', 'vp_hmdb51', 2, 0.40)])
    table = tables.transfer_table(counting, 'paper')
    row = table.frame.iloc[0]
    assert row.paper_in_domain_action_top1 == pytest.approx(0.5012)  # Table 1, VP-HMDB51
    # paired by seed: only seed 0 is shared; no per-video outputs, so no interval
    assert row.cost_action_top1 == pytest.approx(0.05)
    assert row.cost_action_top1_seeds == 1 and row.cost_action_top1_basis == 'seeds'
    assert math.isnan(row.cost_action_top1_ci_low)
    md = tables.to_markdown(table)
    assert 'Top-1 paper in-domain' in md and '| 50.12 |' in md
    assert paper.TRANSFER_REPORTED in md

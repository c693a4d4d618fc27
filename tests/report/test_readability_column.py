"""Table 1's Readability column: the human study where it has answers, the automated measure
otherwise; the design tag kept apart as "Designed readable"."""
import math

import pandas as pd
import pytest

from benchmark.report import tables
from benchmark.stats import wilson_interval


def _run(method: str, seed: int, **metrics) -> dict:
    return {'run_id': f'{method}{seed}', 'profile': 'cpu', 'dataset': 'vp_synth',
            'train_dataset': 'vp_synth', 'method': method, 'table_name': method,
            'privacy_learning': 'false', 'readable': str(method == 'depth').lower(),
            'seed': str(seed), 'commit': 'c' * 40, 'dirty': 'false', 'device': 'cpu',
            'start_time': f'2026-11-30T20:0{seed}:00Z', 'protocol_version': '3',
            'data_version': 'generator 2', 'threads': '1', 'torch': '2.13.0', 'blas': 'openblas',
            'metric.action_top1': 0.9, 'metric.privacy_cmap': 0.8, 'metric.privacy_f1_macro': 0.7,
            'metric.floor_action_top1': 0.1, 'metric.floor_cmap': 0.58, 'metric.floor_f1_macro': 0.69,
            **{f'metric.{k}': v for k, v in metrics.items()}}


@pytest.fixture(scope='module')
def table():
    counting = pd.DataFrame([
        _run('raw', 0, readability_outline=0.80, readability_depth=0.10),
        _run('raw', 1, readability_outline=0.84, readability_depth=0.12,
             readability_human_correct=9.0, readability_human_answers=10.0),
        _run('raw', 2, readability_outline=0.82, readability_human_correct=4.0,
             readability_human_answers=4.0),
        _run('depth', 0, readability_outline=0.99, readability_depth=1.0),
        _run('strong_blur', 0),  # a run from before the measures: nothing to show
    ])
    return tables.table1(counting, 'cpu')


def _row(table, method):
    frame = table.frame
    return frame[(frame.method == method) & (frame.row_kind == 'method')].iloc[0]


def test_human_answers_are_pooled_over_seeds_with_a_wilson_interval(table):
    raw = _row(table, 'raw')
    assert raw.readability_human_answers == 14 and raw.readability_human_top1 == pytest.approx(13 / 14)
    assert (raw.readability_human_top1_low, raw.readability_human_top1_high) == pytest.approx(
        wilson_interval(13, 14))
    assert raw.readability_outline_mean == pytest.approx(0.82)
    assert tables._readability_cell(raw) == 'human 92.9 [68.5, 98.7] n=14'


def test_without_answers_the_automated_outline_is_shown_and_nothing_is_invented(table):
    assert tables._readability_cell(_row(table, 'depth')) == 'outline 0.990'
    blur = _row(table, 'strong_blur')
    assert math.isnan(blur.readability_outline_mean) and tables._readability_cell(blur) == 'n/a'


def test_markdown_keeps_the_design_tag_apart_from_the_measure(table):
    md = tables.to_markdown(table)
    header = next(line for line in md.splitlines() if line.startswith('| Method'))
    assert '| Designed readable |' in header and 'VP-Synth Readability (↑)' in header
    depth = next(line for line in md.splitlines() if line.startswith('| depth |'))
    assert depth.startswith('| depth |  | ✓ | outline 0.990 |')
    tex = tables.to_latex(table)
    lines = [l for l in tex.splitlines() if l.endswith(r'\\') and ' & ' in l]
    assert len({l.count(' & ') for l in lines[1:]}) == 1  # every row as wide as the header

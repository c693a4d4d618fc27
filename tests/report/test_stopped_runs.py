"""A seed the guard stopped is named in the notes of the tables it is missing from, so a
smaller n is never left to be guessed; a stopped seed that a later run completed is not."""
from __future__ import annotations

import shutil

import pandas as pd

from benchmark.report import build_report

REASON = 'fit collapsed at iteration 2500: action branch at chance on the anonymized clips'


def _with_stopped_runs(results, folder):
    runs = pd.read_csv(results / 'runs.csv', dtype=str, keep_default_na=False)
    template = runs[(runs.method == 'raprivacy') & (runs.dataset == 'vp_hmdb51')].iloc[0]

    def stopped(run_id, method, dataset, train_dataset, seed, start):
        row = template.copy()
        row[[c for c in runs.columns if c.startswith('metric.')]] = ''
        row.update({'run_id': run_id, 'status': 'FAILED', 'complete': 'false', 'method': method,
                    'table_name': {'raprivacy': 'RAPrivacy', 'blackening': 'Blackening'}[method],
                    'dataset': dataset, 'train_dataset': train_dataset, 'seed': seed,
                    'start_time': start, 'failure': REASON})
        return row

    extra = pd.DataFrame([
        stopped('s1', 'raprivacy', 'vp_hmdb51', 'vp_hmdb51', '2', '2030-01-01T00:00:00Z'),
        # blackening seed 1 completed after this stop: nothing is missing
        stopped('s2', 'blackening', 'vp_hmdb51', 'vp_hmdb51', '1', '2000-01-01T00:00:00Z'),
        stopped('s3', 'raprivacy', 'vp_synth_b', 'vp_synth', '2', '2030-01-01T00:00:00Z'),
    ])
    folder.mkdir()
    pd.concat([runs, extra]).to_csv(folder / 'runs.csv', index=False)
    shutil.copy(results / 'curves.csv', folder / 'curves.csv')
    shutil.copytree(results / 'predictions', folder / 'predictions')
    shutil.copytree(results / 'samples', folder / 'samples')
    return folder / 'runs.csv'


def test_a_stopped_seed_is_named_where_it_is_missing(built, tmp_path):
    runs_csv = _with_stopped_runs(built['root'] / 'results', tmp_path / 'results')
    build_report(None, tmp_path / 'reports', tmp_path / 'unused', from_csv=runs_csv)
    table1 = (tmp_path / 'reports' / 'table1_smoke.md').read_text()
    transfer = (tmp_path / 'reports' / 'transfer_smoke.md').read_text()
    line = next(x for x in table1.splitlines() if x.startswith('- Stopped for a stated reason'))
    assert f'RAPrivacy on VP-HMDB51 (fitted on VP-HMDB51), seed 2: {REASON}' in line
    assert 'Blackening' not in line  # its seed 1 completed later
    assert 'VP-Synth-B' not in line  # a transfer run: the transfer table's
    line = next(x for x in transfer.splitlines() if x.startswith('- Stopped for a stated reason'))
    assert f'RAPrivacy on VP-Synth-B (fitted on VP-Synth), seed 2: {REASON}' in line
    assert 'VP-HMDB51' not in line
    # without stopped runs, no such note
    assert 'Stopped for a stated reason' not in (built['root'] / 'reports' / 'table1_smoke.md').read_text()

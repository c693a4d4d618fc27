"""A table says at what precision its runs ran (bench.precision, benchmark/amp.py), and counts
each precision when bf16 (--amp) runs are mixed with float32 ones; runs recorded before the tag
read as bf16 only where their command asked for --amp."""
from __future__ import annotations

import re
import shutil

import pandas as pd

from benchmark.report import build_report
from benchmark.report.runs import load_runs


def _header_line(path, name):
    return next(x for x in path.read_text().splitlines() if x.startswith(f'- {name}:'))


def test_untagged_runs_read_their_precision_off_the_command(built, tmp_path):
    runs = pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str, keep_default_na=False)
    runs['precision'] = ''
    runs.loc[0, 'command'] = 'bench run --method raw --device cuda --amp'
    runs.loc[1, 'command'] = 'bench run --method raw --cfg-options note=--ampere'
    runs.to_csv(tmp_path / 'runs.csv', index=False)
    read = load_runs(tmp_path / 'runs.csv')
    by_id = dict(zip(read.run_id, read.precision))
    assert by_id[runs.run_id[0]] == 'bf16' and by_id[runs.run_id[1]] == 'fp32'
    assert set(read.precision) == {'bf16', 'fp32'}


def test_the_header_names_the_precision_and_counts_a_mix(built, tmp_path):
    assert _header_line(built['root'] / 'reports' / 'table1_smoke.md', 'precision') == '- precision: float32'
    runs = pd.read_csv(built['root'] / 'results' / 'runs.csv', dtype=str, keep_default_na=False)
    counted = runs[(runs.complete == 'true') & (runs.dataset == runs.train_dataset)
                   & (runs.method == 'raw')].index
    runs.loc[counted, 'precision'] = 'bf16'
    folder = tmp_path / 'results'
    folder.mkdir()
    runs.to_csv(folder / 'runs.csv', index=False)
    for name in ('curves.csv',):
        shutil.copy(built['root'] / 'results' / name, folder / name)
    for name in ('predictions', 'samples'):
        shutil.copytree(built['root'] / 'results' / name, folder / name)
    build_report(None, tmp_path / 'reports', tmp_path / 'unused', from_csv=folder / 'runs.csv')
    line = _header_line(tmp_path / 'reports' / 'table1_smoke.md', 'precision')
    # raw's counted runs (the newest complete one per dataset and seed) are bf16, the rest float32
    assert re.fullmatch(r'- precision: float32 \(\d+ runs\), bf16 autocast \(--amp\) \(\d+ runs\)', line), line
    assert '% precision: ' in (tmp_path / 'reports' / 'table1_smoke.tex').read_text()

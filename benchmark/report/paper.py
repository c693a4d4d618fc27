"""The numbers the RAPrivacy paper reports in its Table 1, kept as data beside ours.

Source: the RAPrivacy paper, Table 1 "Comparison of known actions" (VP-HMDB51 and VP-UCF101,
Top-1, F1, cMAP), stored in ``paper_table1.csv`` next to this module with its citation and
the caveat about the check-mark columns in the file's ``#`` header. The paper prints Top-1 and
cMAP in percent and F1 as a fraction; ``load_paper_table`` converts everything to fractions,
the unit every metric of the protocol is logged in (``benchmark.metrics``).

The chance floors of the full annotations (REFERENCE.md section 2) are not the paper's numbers;
they are kept here only so a table note can quote them next to the floors our runs measured.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PAPER_CSV = Path(__file__).with_name('paper_table1.csv')

# Table 1 columns as (our metric name, the paper's CSV column, its scale to a fraction).
_PAPER_COLUMNS = (('action_top1', 'top1_pct', 100.0),
                  ('privacy_f1_macro', 'f1', 1.0),
                  ('privacy_cmap', 'cmap_pct', 100.0))

# Display names for datasets; the paper's two first, in the paper's order.
DATASET_TITLES = {'vp_hmdb51': 'VP-HMDB51', 'vp_ucf101': 'VP-UCF101',
                  'vp_synth': 'VP-Synth', 'vp_synth_b': 'VP-Synth-B'}
PAPER_DATASETS = ('vp_hmdb51', 'vp_ucf101')

# The paper's transfer evaluation (its section 4.5): the anonymizer trained on VP-UCF101, the
# target models trained and tested on VP-HMDB51. Its main text prints no figures for it (only
# the claim below; the figures are in its supplementary material, which we do not have), so a
# transfer table shows the paper's Table 1 figures on VP-HMDB51 as its in-domain reference.
PAPER_TRANSFERS = (('vp_ucf101', 'vp_hmdb51'),)
TRANSFER_REPORTED = ('For VP-UCF101 → VP-HMDB51 the paper prints no figures in its main text; it '
                     'states that RAPrivacy "shows strong cross-dataset generalizability, surpassing '
                     'prior SOTA (STPrivacy) in both recognition accuracy and privacy protection".')

# Mean positive rate (cMAP floor) and all-positive macro F1 over all annotated clips.
ANNOTATION_FLOORS = {'vp_ucf101': {'privacy_cmap': 0.582, 'privacy_f1_macro': 0.690},
                     'vp_hmdb51': {'privacy_cmap': 0.584, 'privacy_f1_macro': 0.688}}


def citation() -> str:
    """The source line of ``paper_table1.csv``."""
    for line in PAPER_CSV.read_text().splitlines():
        if line.startswith('# source:'):
            return line[len('# source:'):].strip()
    raise ValueError(f'{PAPER_CSV} lost its "# source:" line: restore it from git')


@lru_cache(maxsize=1)
def load_paper_table() -> pd.DataFrame:
    """The paper's Table 1, one row per (method, dataset), metrics as fractions.

    Returns:
        pd.DataFrame: columns ``method``, ``table_name``, ``privacy_learning``, ``readable``
        (bool), ``dataset`` and ``action_top1``, ``privacy_f1_macro``, ``privacy_cmap``.
    """
    raw = pd.read_csv(PAPER_CSV, comment='#', dtype={'privacy_learning': str, 'readable': str})
    out = raw[['method', 'table_name', 'dataset']].copy()
    for flag in ('privacy_learning', 'readable'):
        out[flag] = raw[flag].str.lower().eq('true')
    for metric, column, scale in _PAPER_COLUMNS:
        out[metric] = raw[column] / scale
    return out


def paper_methods() -> list[tuple[str, str]]:
    """``(method config name, Table 1 row name)`` in the paper's row order."""
    table = load_paper_table()
    return list(table.drop_duplicates('method')[['method', 'table_name']]
                .itertuples(index=False, name=None))


@lru_cache(maxsize=1)
def _paper_values() -> dict[tuple[str, str, str], float]:
    table = load_paper_table()
    return {(row['method'], row['dataset'], metric): float(row[metric])
            for row in table.to_dict('records') for metric, _, _ in _PAPER_COLUMNS}


def paper_value(method: str, dataset: str, metric: str) -> float | None:
    """The paper's number (a fraction) or None where the paper reports none."""
    return _paper_values().get((method, dataset, metric))


def dataset_title(name: str) -> str:
    """The display name of a dataset (``vp_hmdb51`` -> ``VP-HMDB51``)."""
    return DATASET_TITLES.get(name, name)

"""Table 1 and the transfer table as data, then as Markdown, LaTeX (booktabs) and CSV.

Table 1 follows the RAPrivacy paper's Table 1 "Comparison of known actions": its methods in its
order (``paper.paper_methods``), Top-1 (higher is better), F1 and cMAP (lower is better) per
dataset, best and second-best learning-based method marked bold and underlined. To it we add
what a reader needs to judge the numbers: mean and sample std over seeds with the seed count,
the paper's number and our difference, a chance-floor row (REFERENCE.md section 2) and the
normalized leakage ``(cMAP - floor) / (raw cMAP - floor)`` (1 = as leaky as raw frames,
0 = chance). Tables are pure functions of the counting runs (``runs.counting_runs``).

Units: the CSV keeps the protocol's fractions; Markdown and LaTeX print Top-1 and cMAP in
percent and F1 as a fraction, as the paper does.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.metric_specs import METRIC_SPECS
from benchmark.report import paper
from benchmark.report import runs as runs_io

# (metric, column title, display scale, display decimals), in the paper's column order.
TABLE_METRICS = (('action_top1', 'Top-1', 100.0, 2),
                 ('privacy_f1_macro', 'F1', 1.0, 3),
                 ('privacy_cmap', 'cMAP', 100.0, 2))
FLOOR_METRIC = {'action_top1': 'floor_action_top1', 'privacy_f1_macro': 'floor_f1_macro',
                'privacy_cmap': 'floor_cmap'}
LEAK = 'normalized_leakage'
# Automated readability (benchmark/readability.py): the first a run has is shown in Table 1's
# Readability column where no human study answers exist; all are in the CSV.
READABILITY_SHOWN = (('readability_outline', 'outline'), ('readability_person', 'person'))
READABILITY_METRICS = ('readability_outline', 'readability_depth', 'readability_colour',
                       'readability_person', 'readability_faces')
HUMAN = 'readability_human'
LEAK_DECIMALS = 3
PROFILE_ORDER = ('smoke', 'cpu', 'paper')
_FLOOR_TOLERANCE = 1e-9


@dataclass
class Table:
    """One rendered-to-be table: its rows as a frame plus what the header and note say."""

    kind: str  # 'table1' or 'transfer'
    profile: str
    frame: pd.DataFrame
    header: dict[str, str]
    notes: list[str] = field(default_factory=list)


def order_datasets(names) -> list[str]:
    """The paper's datasets first in its order, then the others alphabetically."""
    names = set(names)
    return [d for d in paper.PAPER_DATASETS if d in names] + sorted(names - set(paper.PAPER_DATASETS))


def order_profiles(names) -> list[str]:
    """smoke, cpu, paper, then any other profile alphabetically."""
    names = set(names)
    return [p for p in PROFILE_ORDER if p in names] + sorted(names - set(PROFILE_ORDER))


def _higher_is_better(metric: str) -> bool:
    return METRIC_SPECS[metric].higher_is_better if metric in METRIC_SPECS else False


Record = dict  # one counting run: a row of runs.slim(...) as a dict


def _stats(values) -> dict[str, float]:
    values = np.array([v for v in values if v == v], dtype=float)  # v != v: NaN
    n = len(values)
    return {'mean': float(values.mean()) if n else math.nan,
            'std': float(values.std(ddof=1)) if n > 1 else math.nan,
            'min': float(values.min()) if n else math.nan,
            'max': float(values.max()) if n else math.nan}


def _metric(records: list[Record], metric: str) -> list[float]:
    return [r.get(f'metric.{metric}', math.nan) for r in records]


def _seeds(records: list[Record]) -> str:
    def key(seed: str):
        return (0, int(seed), '') if seed.lstrip('-').isdigit() else (1, 0, seed)
    return ' '.join(sorted((r['seed'] for r in records), key=key))


def _commits(records: list[Record]) -> list[str]:
    """Short commits of ``records`` (ordered by start time), oldest last use first."""
    last_use = {r['commit']: i for i, r in enumerate(records) if r['commit']}
    return [c[:7] for c in sorted(last_use, key=last_use.get)]


def _provenance(records: list[Record]) -> dict[str, str]:
    return {'commits': ' '.join(_commits(records)),
            'devices': '; '.join(sorted({r['device'] for r in records if r['device']}))}


def header_of(records: list[Record], profile: str) -> dict[str, str]:
    """Profile, commit range, devices, newest run date, run count and protocol versions."""
    commits = _commits(records)
    if not commits:
        commit_range = 'unknown'
    elif len(commits) == 1:
        commit_range = commits[0]
    else:
        commit_range = f'{commits[0]}..{commits[-1]} ({len(commits)} commits)'
    if any(r['dirty'].lower() == 'true' for r in records):
        commit_range += ', some runs from a dirty tree'
    newest = max((r['start_time'] for r in records), default='')
    return {'profile': profile, 'commits': commit_range,
            'devices': '; '.join(sorted({r['device'] for r in records if r['device']})) or 'unknown',
            'newest': newest[:16].replace('T', ' ') + ' UTC' if newest else 'none',
            'runs': str(len(records)),
            'protocol': ', '.join(sorted({r['protocol_version'] for r in records
                                          if r['protocol_version']})) or 'unknown',
            'data': '; '.join(sorted(set(map(runs_io.data_label, (r['dataset'] for r in records),
                                             runs_io.data_versions(pd.DataFrame(records)))))),
            'threads': ', '.join(sorted({str(r.get('threads') or '') for r in records} - {''})) or 'unknown',
            'precision': _precisions(records),
            'backbones': backbones(records),
            'backbones_mixed': ' and '.join(mixed_backbones(records)),
            'libraries': '; '.join(sorted({f'torch {r["torch"]}, BLAS {r.get("blas") or "unknown"}'
                                          for r in records if r.get('torch')})) or 'unknown'}


PRECISION_NAMES = {'fp32': 'float32', 'bf16': 'bf16 autocast (--amp)'}


def _precisions(records: list[Record]) -> str:
    """'float32', or each precision with its run count, most runs first, when the runs mix them;
    a record without one (not read through ``runs.normalize``) counts as float32."""
    counts = Counter(r.get('precision') or 'fp32' for r in records).most_common()
    if len(counts) == 1:
        return PRECISION_NAMES.get(counts[0][0], counts[0][0])
    return ', '.join(f'{PRECISION_NAMES.get(k, k)} ({n} runs)' for k, n in counts)


BACKBONE_STAGES = ('action', 'privacy')


def mixed_backbones(records: list[Record]) -> list[str]:
    """The target stages whose runs started from more than one pretrained backbone."""
    return [stage for stage in BACKBONE_STAGES
            if len({r.get(f'{stage}_init') or '' for r in records} - {''}) > 1]


def backbones(records: list[Record]) -> str:
    """Which pretrained backbones the target models started from (``bench.action_init``,
    ``bench.privacy_init``: the SHA-256 of the backbone's file, ``benchmark.target_pretrain``),
    each with its run count when the runs mix them, and a warning then: a backbone is trained
    once per cache, and one trained on another thread count (before ``PRETRAIN_THREADS``),
    CPU or library differs, by more than raw's seeds do on cMAP, so figures over different
    backbones are not comparable. Runs recorded or exported without the tags count as not
    recorded."""
    parts = []
    for stage in BACKBONE_STAGES:
        counts = Counter(r.get(f'{stage}_init') or '' for r in records)
        unknown = counts.pop('', 0)
        known = counts.most_common()
        if not known:
            parts.append(f'{stage} not recorded')
            continue
        text = (f'{stage} {known[0][0]}' if len(known) == 1 and not unknown
                else f'{stage} ' + ', '.join(f'{h} ({n} runs)' for h, n in known))
        parts.append(text + (f', not recorded ({unknown} runs)' if unknown else ''))
    text = '; '.join(parts)
    mixed = mixed_backbones(records)
    if mixed:
        text += (f' (MIXED {" and ".join(mixed)} backbones: figures from runs on different '
                 f'backbones are not comparable; run them on one machine and cache)')
    return text


def _method_order(records: list[Record], extra_methods) -> list[tuple[str, str]]:
    order = paper.paper_methods()
    known = {m for m, _ in order}
    names = {r['method']: r['table_name'] for r in records if r['table_name']}  # newest wins
    for method in sorted({r['method'] for r in records} - known) + list(extra_methods):
        if method not in known:
            order.append((method, names.get(method, method)))
            known.add(method)
    return order


def _mark(rows: list[dict], columns: list[tuple[str, float, int, bool]], tester=None) -> None:
    """Set ``<column>_mark`` to best / second among learning-based rows, per dataset.

    A mark needs a significant paired difference (``benchmark.stats.paired_test`` at
    ``stats.SIGNIFICANCE``): best when the leader beats the runner-up, second when best is
    marked and the runner-up beats the third. ``tester(metric,
    method_a, method_b, dataset)`` returns the test's result or None when the runs have no
    per-video outputs to test; then nothing is marked. Columns without a test (nLeak) follow
    the cMAP marks.
    """
    from benchmark.stats import SIGNIFICANCE
    for column, scale, decimals, higher in columns:
        for row in rows:
            row[f'{column}_mark'] = ''
            row.setdefault(f'{column}_p', math.nan)
        metric = column.removesuffix('_mean')
        if tester is None or metric not in _TESTED:
            continue
        for dataset in dict.fromkeys(r['dataset'] for r in rows):
            pool = [r for r in rows if r['dataset'] == dataset and r['row_kind'] == 'method'
                    and r['privacy_learning'] == 'true' and not math.isnan(r[column])]
            pool.sort(key=lambda r: r[column], reverse=higher)
            # best beats the runner-up, second beats the third; a sole method is best of nothing
            for rank, label in enumerate(('best', 'second')):
                if rank + 1 >= len(pool):
                    break
                result = tester(metric, pool[rank]['method'], pool[rank + 1]['method'], dataset)
                if result is None:
                    break
                pool[rank][f'{column}_p'] = result.p_value
                if not result.significant(SIGNIFICANCE):
                    break
                pool[rank][f'{column}_mark'] = label
    leak, cmap = f'{LEAK}_mark', 'privacy_cmap_mean_mark'
    for row in rows:
        if leak in row and cmap in row:
            row[leak] = row[cmap]


_TESTED = ('action_top1', 'privacy_cmap', 'privacy_f1_macro')


def _run_groups(records: list[Record], predictions, stage: str) -> dict | None:
    """Seed -> Predictions of one method's runs on one dataset, or None if any run lacks them."""
    out = {}
    for r in records:
        found = predictions.get(r['run_id'], stage) if predictions is not None else None
        if found is None:
            return None
        out[r['seed']] = found
    return out or None


def by_dataset_method(records: list[Record]) -> dict[tuple[str, str], list[Record]]:
    """Runs as (dataset, method) -> their records, in the given order: a table row's runs, and
    what :func:`_tester` pairs."""
    buckets: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        buckets.setdefault((r['dataset'], r['method']), []).append(r)
    return buckets


def _tester(buckets: dict, predictions):
    """``tester(metric, a, b, dataset)`` for ``_mark`` and the paired table, memoized."""
    from benchmark import stats
    cache: dict = {}

    def test(metric: str, a: str, b: str, dataset: str):
        key = (metric, a, b, dataset)
        if key not in cache:
            stage = stats.METRICS[metric][0]
            runs_a = _run_groups(buckets.get((dataset, a), []), predictions, stage)
            runs_b = _run_groups(buckets.get((dataset, b), []), predictions, stage)
            cache[key] = (stats.paired_test(metric, runs_a, runs_b)
                          if runs_a and runs_b else None)
        return cache[key]
    return test


def _in_domain(record: Record) -> bool:
    return record['train_dataset'] in (record['dataset'], '')


def stopped_note(stopped: pd.DataFrame, table: Table) -> str | None:
    """The note naming the runs of ``table``'s profile and datasets that stopped for a stated
    reason (``runs.stopped_runs``), or None: a missing seed is said, not left to be guessed."""
    if stopped is None or stopped.empty or table.frame.empty:
        return None
    rows = stopped[(stopped.profile == table.profile) & stopped.dataset.isin(set(table.frame.dataset))]
    records = rows.to_dict('records')
    if table.kind == 'table1':
        records = [r for r in records if _in_domain(r)]
    if not records:
        return None
    said = []
    for r in records:
        fitted = paper.dataset_title(r['train_dataset'] or r['dataset'])
        said.append(f'{r["table_name"] or r["method"]} on {paper.dataset_title(r["dataset"])} '
                    f'(fitted on {fitted}), seed {r["seed"]}: {r["failure"]}')
    return ('Stopped for a stated reason and not counted (MLflow status FAILED, tag bench.failure; '
            'no later run of the same seed completed): ' + '; '.join(said) + '.')


def table1(counting: pd.DataFrame, profile: str, extra_methods=(), predictions=None) -> Table:
    """Table 1 of one profile: every dataset evaluated in-domain, methods in the paper's order.

    Args:
        counting (pd.DataFrame): Counting runs (``runs.counting_runs``), any profile.
        profile (str): The profile of this table; runs of other profiles are ignored.
        extra_methods (iterable of str): Registered methods to list as "not run" when they have
            no runs. Defaults to none.
        predictions (runs.PredictionStore, optional): Per-video test outputs of the runs, for
            the bootstrap intervals and the paired tests behind the best/second marks.
            Defaults to None (no intervals, no marks).
    """
    from benchmark import stats
    records = [r for r in counting.to_dict('records') if r['profile'] == profile and _in_domain(r)]
    datasets = order_datasets({r['dataset'] for r in records})
    methods = _method_order(records, extra_methods)
    buckets = by_dataset_method(records)
    rows, notes = [], []
    for dataset in datasets:
        on_dataset = [r for r in records if r['dataset'] == dataset]
        floors = {m: _stats(_metric(on_dataset, f)) for m, f in FLOOR_METRIC.items()}
        for metric, stat in floors.items():
            if stat['max'] - stat['min'] > _FLOOR_TOLERANCE:
                message = (f'{paper.dataset_title(dataset)} ({profile}): {FLOOR_METRIC[metric]} differs '
                           f'between runs ({stat["min"]:.4f} to {stat["max"]:.4f}); the runs were not '
                           f'tested on the same labels: the floor row shows the range')
                warnings.warn(message, stacklevel=2)
                notes.append(message)
        raw_cmap = _stats(_metric(buckets.get((dataset, 'raw'), []), 'privacy_cmap'))['mean']
        leak_scale = raw_cmap - floors['privacy_cmap']['mean']
        for method, table_name in methods:
            group = buckets.get((dataset, method), [])
            newest = group[-1] if group else {}
            row = {'profile': profile, 'dataset': dataset, 'row_kind': 'method', 'method': method,
                   'table_name': newest.get('table_name') or table_name,
                   'privacy_learning': newest.get('privacy_learning', '').lower(),
                   'readable': newest.get('readable', '').lower(),
                   'status': 'ok' if group else 'not run', 'n_seeds': len(group),
                   'seeds': _seeds(group)}
            for metric, *_ in TABLE_METRICS:
                stat = _stats(_metric(group, metric))
                runs_of_row = _run_groups(group, predictions, stats.METRICS[metric][0])
                stat['ci_low'], stat['ci_high'] = (stats.group_interval(metric, runs_of_row)
                                                   if runs_of_row else (math.nan, math.nan))
                reported = paper.paper_value(method, dataset, metric)
                row.update({f'{metric}_{k}': v for k, v in stat.items()})
                row[f'paper_{metric}'] = math.nan if reported is None else reported
                row[f'diff_{metric}'] = math.nan if reported is None else stat['mean'] - reported
            row[LEAK] = ((row['privacy_cmap_mean'] - floors['privacy_cmap']['mean']) / leak_scale
                         if leak_scale and not math.isnan(leak_scale) else math.nan)
            row.update(_readability(group))
            row.update(_provenance(group))
            rows.append(row)
        floor_row = {'profile': profile, 'dataset': dataset, 'row_kind': 'floor', 'method': '',
                     'table_name': 'Chance floor', 'privacy_learning': '', 'readable': '',
                     'status': 'ok', 'n_seeds': len(on_dataset), 'seeds': ''}
        for metric, *_ in TABLE_METRICS:
            floor_row.update({f'{metric}_{k}': v for k, v in floors[metric].items()})
            floor_row.update({f'{metric}_std': math.nan, f'paper_{metric}': math.nan,
                              f'diff_{metric}': math.nan, f'{metric}_ci_low': math.nan,
                              f'{metric}_ci_high': math.nan})
        floor_row[LEAK] = 0.0 if leak_scale and not math.isnan(leak_scale) else math.nan
        floor_row.update(_readability([]))
        floor_row.update(_provenance(on_dataset))
        rows.append(floor_row)
    _mark(rows, [(f'{m}_mean', scale, dec, _higher_is_better(m)) for m, _, scale, dec in TABLE_METRICS]
          + [(LEAK, 1.0, LEAK_DECIMALS, False)], _tester(buckets, predictions))
    frame = pd.DataFrame(rows, columns=_table1_columns())
    has_intervals = bool(frame[[f'{m}_ci_low' for m, *_ in TABLE_METRICS]].notna().any().any())
    return Table('table1', profile, frame, header_of(records, profile),
                 notes + _table1_notes(datasets, has_intervals))


def _readability(records: list[Record]) -> dict[str, float]:
    """Seed means of the automated measures, and the human study pooled over the runs' answers
    (top-1 of all answers with its Wilson interval, not a mean of per-run shares)."""
    from benchmark.stats import wilson_interval
    out = {f'{m}_mean': _stats(_metric(records, m))['mean'] for m in READABILITY_METRICS}
    answered = [(c, a) for c, a in zip(_metric(records, f'{HUMAN}_correct'),
                                       _metric(records, f'{HUMAN}_answers')) if a == a and a > 0]
    correct, answers = sum(c for c, _ in answered), sum(a for _, a in answered)
    out[f'{HUMAN}_answers'] = answers
    out[f'{HUMAN}_top1'] = correct / answers if answers else math.nan
    out[f'{HUMAN}_top1_low'], out[f'{HUMAN}_top1_high'] = wilson_interval(int(correct), int(answers))
    return out


def _table1_columns() -> list[str]:
    columns = ['profile', 'dataset', 'row_kind', 'method', 'table_name', 'privacy_learning',
               'readable', 'status', 'n_seeds', 'seeds']
    for metric, *_ in TABLE_METRICS:
        columns += [f'{metric}_{k}' for k in ('mean', 'std', 'min', 'max', 'ci_low', 'ci_high')]
        columns += [f'{metric}_mean_mark', f'{metric}_mean_p', f'paper_{metric}', f'diff_{metric}']
    columns += [f'{m}_mean' for m in READABILITY_METRICS]
    columns += [f'{HUMAN}_top1', f'{HUMAN}_top1_low', f'{HUMAN}_top1_high', f'{HUMAN}_answers']
    return columns + [LEAK, f'{LEAK}_mark', 'commits', 'devices']


def _table1_notes(datasets: list[str], has_intervals: bool = False) -> list[str]:
    from benchmark import stats
    notes = ['Top-1 and cMAP in %, F1 as a fraction; ours: mean ± sample std over seeds, n = seeds '
             '(the newest complete run per method, dataset and seed).']
    if has_intervals:
        notes.append(f'[low, high]: {stats.CONFIDENCE:.0%} bootstrap interval of the seed mean, '
                     f'resampling test videos and seeds together ({stats.N_BOOT:,} resamples, '
                     'benchmark/stats.py); a difference between two rows is only meaningful where '
                     'the paired test says so (paired_<profile>.md).')
    notes += [
             f'paper: the numbers reported in {paper.citation().rstrip(".")}; Δ = ours − paper '
             '(percentage points for Top-1 and cMAP).']
    without = [paper.dataset_title(d) for d in datasets if d not in paper.PAPER_DATASETS]
    if without:
        notes.append(f'{", ".join(without)}: no paper numbers; the paper evaluates on VP-HMDB51 and '
                     'VP-UCF101 only, so these datasets are not compared with it.')
    notes.append('Chance floor: mean of the runs\' floor metrics, computed from the test labels '
                 'used (majority-class Top-1, all-positive F1, mean positive rate as cMAP).')
    for dataset in datasets:
        if dataset in paper.ANNOTATION_FLOORS:
            quoted = paper.ANNOTATION_FLOORS[dataset]
            notes.append(f'{paper.dataset_title(dataset)} over all annotated clips (REFERENCE.md '
                         f'section 2): cMAP floor {quoted["privacy_cmap"] * 100:.1f}, F1 floor '
                         f'{quoted["privacy_f1_macro"]:.3f}.')
    notes.append('nLeak = (cMAP − floor) / (raw cMAP − floor): 1 leaks as much as raw frames, '
                 '0 is chance; n/a without raw runs.')
    notes.append('Bold: best, underlined: second best among learning-based methods (Privacy '
                 'learning ✓), per column in its direction (↑ higher, ↓ lower is better), marked '
                 'only where a paired bootstrap test over the same test videos and seeds finds the '
                 f'difference to the next method significant at p < {stats.SIGNIFICANCE} (two-sided); '
                 'never for a sole learning method. nLeak follows the cMAP marks.')
    notes.append('Readability is measured: "human" is the share of `bench study` answers naming '
                 'the true action ("cannot tell" counted wrong) with its 95 % Wilson interval and '
                 'the number of answers; without answers, the automated measure of the runs '
                 '(benchmark/readability.py, mean over seeds): "outline", the F-score of frame '
                 'edges against the true person outline (1 = the outline as sharp as drawn, '
                 '0 = none), on data with true masks; "person", the overlap of the person regions '
                 'found on anonymized and raw frames, on real data. The depth and colour measures '
                 'are in the CSV.')
    notes.append('Privacy learning and Designed readable come from each method\'s own tags: what '
                 'the method is designed to do, not a judgement of the frames these runs produced; '
                 'the paper\'s check-mark columns are ambiguous in its text (see paper_table1.csv).')
    return notes


def transfer_table(counting: pd.DataFrame, profile: str, predictions=None) -> Table | None:
    """What a transfer costs each method: its anonymizer fitted on A, target models on B.

    One row per (A, B, method) with transfer runs: the in-domain figures on B (anonymizer
    fitted on B), the transfer figures (fitted on A), both as mean ± std over seeds with the
    bootstrap interval of the seed mean, and the cost, in-domain minus transfer, over the seeds
    both have. Both are judged by target models trained and tested on B's splits, so where the
    runs kept their per-video test outputs the cost's interval and p-value come from the paired
    bootstrap (``benchmark.stats.paired_test``: the same test videos and seeds resampled for
    both); without them the cost has no interval. On the paper's datasets the paper's Table 1
    figures on B sit beside ours, labelled as the paper's in-domain figures (the paper prints
    no figures for its transfer). None when the profile has no transfer runs.

    Args:
        counting (pd.DataFrame): Counting runs (``runs.counting_runs``), any profile.
        profile (str): The profile of this table.
        predictions (runs.PredictionStore, optional): Per-video test outputs of the runs.
            Defaults to None (no intervals).
    """
    from benchmark import stats
    records = [r for r in counting.to_dict('records') if r['profile'] == profile]
    transfer = [r for r in records if not _in_domain(r)]
    if not transfer:
        return None
    order = {m: i for i, (m, _) in enumerate(_method_order(transfer, ()))}
    buckets: dict[tuple[str, str, str], list[Record]] = {}
    for r in records:
        buckets.setdefault((r['train_dataset'] or r['dataset'], r['dataset'], r['method']), []).append(r)
    sources = order_datasets({r['train_dataset'] for r in transfer})
    pairs = sorted({(r['train_dataset'], r['dataset']) for r in transfer},
                   key=lambda p: (sources.index(p[0]), order_datasets({p[1]}), p[1]))
    rows, shown = [], list(transfer)
    for source, target in pairs:
        on_pair = [r for r in transfer if (r['train_dataset'], r['dataset']) == (source, target)]
        for method in sorted({r['method'] for r in on_pair}, key=order.get):
            away = buckets[(source, target, method)]
            home = buckets.get((target, target, method), [])
            shown += [r for r in home if r not in shown]
            row = {'profile': profile, 'train_dataset': source, 'dataset': target,
                   'row_kind': 'method', 'method': method,
                   'table_name': away[-1]['table_name'] or method,
                   'privacy_learning': away[-1].get('privacy_learning', '').lower(),
                   'n_seeds': len(away), 'seeds': _seeds(away),
                   'in_domain_n_seeds': len(home), 'in_domain_seeds': _seeds(home)}
            for metric, *_ in TABLE_METRICS:
                stage = stats.METRICS[metric][0]
                for prefix, group in (('', away), ('in_domain_', home)):
                    stat = _stats(_metric(group, metric))
                    outputs = _run_groups(group, predictions, stage)
                    stat['ci_low'], stat['ci_high'] = (stats.group_interval(metric, outputs)
                                                       if outputs else (math.nan, math.nan))
                    row.update({f'{prefix}{metric}_{k}': v for k, v in stat.items()})
                row.update(_transfer_cost(metric, home, away, predictions))
                reported = paper.paper_value(method, target, metric)
                row[f'paper_in_domain_{metric}'] = math.nan if reported is None else reported
            row.update(_provenance(away))
            rows.append(row)
        floor = {'profile': profile, 'train_dataset': source, 'dataset': target, 'row_kind': 'floor',
                 'method': '', 'table_name': 'Chance floor', 'privacy_learning': '',
                 'n_seeds': len(on_pair), 'seeds': '', 'in_domain_n_seeds': 0, 'in_domain_seeds': ''}
        for metric, *_ in TABLE_METRICS:
            floor.update({f'{metric}_{k}': v for k, v in _stats(_metric(on_pair, FLOOR_METRIC[metric])).items()})
            floor.update({f'{metric}_std': math.nan, f'{metric}_ci_low': math.nan,
                          f'{metric}_ci_high': math.nan, f'paper_in_domain_{metric}': math.nan})
            floor.update({f'in_domain_{metric}_{k}': math.nan for k in _STAT_KEYS})
            floor.update({k: math.nan for k in _cost_keys(metric)} | {f'cost_{metric}_basis': ''})
        floor.update(_provenance(on_pair))
        rows.append(floor)
    frame = pd.DataFrame(rows, columns=_transfer_columns())
    shown.sort(key=lambda r: (r['start_time'], r['run_id']))
    return Table('transfer', profile, frame, header_of(shown, profile), _transfer_notes(frame, pairs))


_STAT_KEYS = ('mean', 'std', 'min', 'max', 'ci_low', 'ci_high')


def _cost_keys(metric: str) -> list[str]:
    return [f'cost_{metric}', f'cost_{metric}_ci_low', f'cost_{metric}_ci_high',
            f'cost_{metric}_p', f'cost_{metric}_seeds']


def _transfer_cost(metric: str, home: list[Record], away: list[Record], predictions) -> dict:
    """In-domain minus transfer: paired by seed (and by test video where both have per-video
    outputs), the mean over the seeds both have; unpaired means when they share no seed."""
    from benchmark import stats
    cost = dict.fromkeys(_cost_keys(metric), math.nan)
    shared = sorted({r['seed'] for r in home} & {r['seed'] for r in away})
    if not home or not away:
        return cost | {f'cost_{metric}_basis': ''}
    if not shared:
        cost[f'cost_{metric}'] = (_stats(_metric(home, metric))['mean']
                                  - _stats(_metric(away, metric))['mean'])
        return cost | {f'cost_{metric}_seeds': 0, f'cost_{metric}_basis': 'unpaired'}
    pick = [[r for r in group if r['seed'] in shared] for group in (home, away)]
    stage = stats.METRICS[metric][0]
    outputs = [_run_groups(group, predictions, stage) for group in pick]
    result = stats.paired_test(metric, *outputs) if all(outputs) else None
    if result is None:
        value = _stats(_metric(pick[0], metric))['mean'] - _stats(_metric(pick[1], metric))['mean']
        return cost | {f'cost_{metric}': value, f'cost_{metric}_seeds': len(shared),
                       f'cost_{metric}_basis': 'seeds'}
    return {f'cost_{metric}': result.difference, f'cost_{metric}_ci_low': result.low,
            f'cost_{metric}_ci_high': result.high, f'cost_{metric}_p': result.p_value,
            f'cost_{metric}_seeds': result.seeds, f'cost_{metric}_basis': 'videos and seeds'}


def _transfer_columns() -> list[str]:
    columns = ['profile', 'train_dataset', 'dataset', 'row_kind', 'method', 'table_name',
               'privacy_learning', 'n_seeds', 'seeds', 'in_domain_n_seeds', 'in_domain_seeds']
    for metric, *_ in TABLE_METRICS:
        columns += [f'in_domain_{metric}_{k}' for k in _STAT_KEYS]
        columns += [f'{metric}_{k}' for k in _STAT_KEYS]
        columns += _cost_keys(metric) + [f'cost_{metric}_basis', f'paper_in_domain_{metric}']
    return columns + ['commits', 'devices']


def _transfer_notes(frame: pd.DataFrame, pairs) -> list[str]:
    from benchmark import stats
    notes = ['Top-1 and cMAP in %, F1 as a fraction. In-domain: the anonymizer fitted on the '
             'evaluation dataset B; transfer (A → B): fitted on A and frozen. In both, fresh target '
             'models are trained on B\'s training split, anonymized, and tested on B\'s test split. '
             'Figures: mean ± sample std over seeds [95 % bootstrap interval of the seed mean]; '
             'n: in-domain / transfer seeds.',
             'Cost = in-domain − transfer, over the seeds both have. Top-1: a positive cost is '
             'action recognition lost by fitting elsewhere. F1 and cMAP (lower is better): a '
             'negative cost is privacy lost (the transferred anonymizer leaks more).']
    bases = set(frame[[f'cost_{m}_basis' for m, *_ in TABLE_METRICS]].to_numpy().ravel()) - {''}
    if 'videos and seeds' in bases:
        notes.append(f'[low, high] of a cost: {stats.CONFIDENCE:.0%} interval from a paired '
                     'bootstrap over the same test videos and seeds (the in-domain and transfer '
                     f'runs are tested on the same videos of B; {stats.N_BOOT:,} resamples); '
                     f'*: p < {stats.SIGNIFICANCE} (two-sided), a cost without * is inside the '
                     'noise.')
    if 'seeds' in bases:
        notes.append('A cost without an interval: its runs kept no per-video test outputs, so it '
                     'is the difference of the seed means only.')
    if 'unpaired' in bases:
        notes.append('"unpaired": the in-domain and transfer runs share no seed; the cost is the '
                     'difference of their means.')
    if any(p in paper.PAPER_TRANSFERS for p in pairs):
        notes.append(f'paper in-domain: the paper\'s Table 1 figures on B ({paper.citation().rstrip(".")}). '
                     f'{paper.TRANSFER_REPORTED}')
    notes.append('Only methods with transfer runs are listed. A fixed method (nothing fitted) '
                 'has nothing to transfer: its transfer run equals its in-domain run on B.')
    return notes


def paired_table(counting: pd.DataFrame, profile: str, predictions, reference: str = 'raw') -> Table | None:
    """Every method against ``reference`` (raw frames) on the same seeds and test videos.

    One row per (dataset, method, metric): the difference method − reference of the
    seed-averaged metric, its bootstrap interval and the two-sided p-value of the paired test
    (``benchmark.stats.paired_test``). None when no pair has per-video outputs.
    """
    from benchmark import stats
    records = [r for r in counting.to_dict('records') if r['profile'] == profile and _in_domain(r)]
    buckets = by_dataset_method(records)
    test = _tester(buckets, predictions)
    names = {r['method']: r['table_name'] or r['method'] for r in records}
    order = [m for m, _ in _method_order(records, ())]
    rows = []
    for dataset in order_datasets({r['dataset'] for r in records}):
        for method in order:
            if method == reference or (dataset, method) not in buckets:
                continue
            for metric, *_ in TABLE_METRICS:
                result = test(metric, method, reference, dataset)
                if result is None:
                    continue
                rows.append({'profile': profile, 'dataset': dataset, 'method': method,
                             'table_name': names[method], 'reference': reference, 'metric': metric,
                             'difference': result.difference, 'ci_low': result.low,
                             'ci_high': result.high, 'p_value': result.p_value,
                             'significant': result.significant(stats.SIGNIFICANCE),
                             'seeds': result.seeds, 'videos': result.videos})
    if not rows:
        return None
    notes = [f'Δ = method − {names.get(reference, reference)}, mean over the seeds both have, on the '
             f'same test videos; [low, high]: {stats.CONFIDENCE:.0%} interval of Δ from a paired '
             f'bootstrap resampling test videos and seeds together ({stats.N_BOOT:,} resamples); '
             'p: two-sided, twice the share of resamples on the far side of zero.',
             f'*: significant at p < {stats.SIGNIFICANCE}. A difference without * is inside the '
             'noise of these seeds and test videos.',
             'Top-1 and cMAP in percentage points, F1 as a fraction.']
    return Table('paired', profile, pd.DataFrame(rows), header_of(records, profile), notes)


def _paired_cells(table: Table, style: str):
    frame = table.frame
    delta, star = ('Δ', '*') if style == 'md' else (r'$\Delta$', '*')
    header = ['Dataset', 'Method']
    for metric, name, _, _ in TABLE_METRICS:
        header += [f'{delta}{name} vs raw', 'p']
    header += ['seeds', 'videos']
    body = []
    for (dataset, method), group in frame.groupby(['dataset', 'method'], sort=False):
        by_metric = {r['metric']: r for r in group.to_dict('records')}
        first = next(iter(by_metric.values()))
        cells = [paper.dataset_title(dataset), first['table_name']]
        for metric, *_ in TABLE_METRICS:
            r = by_metric.get(metric)
            if r is None:
                cells += ['', '']
                continue
            text = (f'{_signed(r["difference"], metric)} [{_signed(r["ci_low"], metric)}, '
                    f'{_signed(r["ci_high"], metric)}]')
            p = r['p_value']
            cells += [text + (star if r['significant'] else ''), '<0.001' if p < 0.001 else f'{p:.3f}']
        cells += [str(first['seeds']), str(first['videos'])]
        body.append(('method', cells))
    return header, body, []


# ---------------------------------------------------------------- rendering

def _display(value: float, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    spec = {m: (scale, dec) for m, _, scale, dec in TABLE_METRICS}
    scale, decimals = spec.get(metric, (1.0, LEAK_DECIMALS))
    return f'{value * scale:.{decimals}f}'


def _signed(value: float, metric: str) -> str:
    text = _display(value, metric)
    return f'+{text}' if text and not text.startswith('-') else text


def _ours(row, metric: str, pm: str) -> str:
    mean = _display(row[f'{metric}_mean'], metric)
    if row['row_kind'] == 'floor':
        low, high = _display(row[f'{metric}_min'], metric), _display(row[f'{metric}_max'], metric)
        return mean if low == high else f'{low}–{high}'
    std = _display(row[f'{metric}_std'], metric)
    text = f'{mean}{pm}{std}' if std else mean
    low, high = (_display(row.get(f'{metric}_ci_low', math.nan), metric),
                 _display(row.get(f'{metric}_ci_high', math.nan), metric))
    return f'{text} [{low}, {high}]' if low and high else text


def _header_lines(table: Table) -> list[str]:
    h = table.header
    return [f'profile: {h["profile"]}', f'runs: {h["runs"]} (newest {h["newest"]})',
            f'commits: {h["commits"]}', f'devices: {h["devices"]}',
            f'protocol version: {h["protocol"]}', f'data: {h["data"]}',
            f'threads per run: {h["threads"]}', f'precision: {h["precision"]}',
            f'target backbones: {h["backbones"]}', f'libraries: {h["libraries"]}']


def _check(flag: str, yes: str) -> str:
    return yes if flag == 'true' else ''


def _table1_cells(table: Table, style: str):
    """(header cells, body rows as (row kind, cells), dataset column spans) in md or tex style."""
    frame = table.frame
    datasets = list(dict.fromkeys(frame.dataset))
    bold, under, pm, check, arrow_up, arrow_down, delta = (
        ('**{}**', '<ins>{}</ins>', ' ± ', '✓', '↑', '↓', 'Δ') if style == 'md' else
        (r'\textbf{{{}}}', r'\underline{{{}}}', r' $\pm$ ', r'\checkmark', r'$\uparrow$',
         r'$\downarrow$', r'$\Delta$'))

    def marked(text, mark):
        return bold.format(text) if mark == 'best' else under.format(text) if mark == 'second' else text

    header = ['Method', 'Privacy learning', 'Designed readable']
    spans = []
    for dataset in datasets:
        start = len(header)
        title = paper.dataset_title(dataset)
        prefix = f'{title} ' if style == 'md' else ''
        header.append(f'{prefix}Readability ({arrow_up})')
        for metric, name, _, _ in TABLE_METRICS:
            arrow = arrow_up if _higher_is_better(metric) else arrow_down
            header.append(f'{prefix}{name} ({arrow})')
            if dataset in paper.PAPER_DATASETS:
                header += ['paper', delta]
        header += [f'{prefix}nLeak ({arrow_down})', f'{prefix}n']
        spans.append((title, start, len(header)))
    grouped: dict[tuple[str, str], dict[str, dict]] = {}
    for record in frame.to_dict('records'):
        grouped.setdefault((record['row_kind'], record['method']), {})[record['dataset']] = record
    body = []
    for (kind, method), rows in grouped.items():
        first = next(iter(rows.values()))
        lead = next((r for r in rows.values() if r['status'] == 'ok'), first)
        cells = [first['table_name'], _check(lead['privacy_learning'], check),
                 _check(lead['readable'], check)]
        for dataset in datasets:
            row = rows[dataset]
            has_paper = dataset in paper.PAPER_DATASETS
            width = len(TABLE_METRICS) * (3 if has_paper else 1) + 3
            if row['status'] != 'ok':
                cells += ['not run'] + [''] * (width - 1)
                continue
            cells.append(_readability_cell(row) if kind == 'method' else '')
            for metric, *_ in TABLE_METRICS:
                cells.append(marked(_ours(row, metric, pm), row[f'{metric}_mean_mark']))
                if has_paper:
                    cells += [_display(row[f'paper_{metric}'], metric),
                              _signed(row[f'diff_{metric}'], metric)]
            leak = _display(row[LEAK], LEAK) or 'n/a'
            cells.append(marked(leak, row[f'{LEAK}_mark']) if leak != 'n/a' else leak)
            cells.append(str(row['n_seeds']) if kind == 'method' else '')
        body.append((kind, cells))
    return header, body, spans


def _readability_cell(row) -> str:
    """Human top-1 where the study has answers, else the automated measure the runs have."""
    answers = row[f'{HUMAN}_answers']
    if answers:
        return (f'human {100 * row[f"{HUMAN}_top1"]:.1f} [{100 * row[f"{HUMAN}_top1_low"]:.1f}, '
                f'{100 * row[f"{HUMAN}_top1_high"]:.1f}] n={int(answers)}')
    for metric, name in READABILITY_SHOWN:
        value = row[f'{metric}_mean']
        if value == value:
            return f'{name} {value:.3f}'
    return 'n/a'


def _md_escape(text: str) -> str:
    return str(text).replace('|', r'\|')


def to_markdown(table: Table) -> str:
    """Markdown: header lines, the table, the notes."""
    title = {'table1': f'# Table 1, profile `{table.profile}`',
             'transfer': f'# Transfer, profile `{table.profile}`',
             'paired': f'# Paired comparisons with raw frames, profile `{table.profile}`'}[table.kind]
    lines = ['<!-- generated by `bench report`; do not edit by hand -->', title, '']
    lines += [f'- {line}' for line in _header_lines(table)] + ['']
    header, body, _ = _CELLS[table.kind](table, 'md')
    lines.append('| ' + ' | '.join(header) + ' |')
    lines.append('|' + '|'.join(['---'] + [':---:'] * (len(header) - 1)) + '|')
    for _, cells in body:
        lines.append('| ' + ' | '.join(_md_escape(c) for c in cells) + ' |')
    lines += ['', 'Notes:', ''] + [f'- {note}' for note in table.notes]
    return '\n'.join(lines) + '\n'


_TEX_SPECIAL = {'&': r'\&', '%': r'\%', '$': r'\$', '#': r'\#', '_': r'\_', '{': r'\{', '}': r'\}',
                '~': r'\textasciitilde{}', '^': r'\textasciicircum{}', '\\': r'\textbackslash{}',
                'Δ': r'$\Delta$', '±': r'$\pm$', '−': '$-$', '–': '--', '✓': r'\checkmark',
                '↑': r'$\uparrow$', '↓': r'$\downarrow$', '→': r'$\rightarrow$'}


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters and map the few Unicode signs we print."""
    return ''.join(_TEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: Table) -> str:
    """A booktabs ``table*`` (needs booktabs, graphicx for resizebox, amssymb for checkmark)."""
    header, body, spans = _CELLS[table.kind](table, 'tex')
    lines = ['% generated by `bench report`; do not edit by hand',
             '% needs \\usepackage{booktabs,graphicx,amssymb}']
    lines += [f'% {line}' for line in _header_lines(table)]
    lines += [f'% {note}' for note in table.notes]
    h = table.header
    if table.kind == 'table1':
        caption = ('Comparison of known actions. Top-1 (higher is better), F1 and cMAP (lower is '
                   'better), mean ± std over n seeds, beside the paper\'s numbers and Δ = ours − '
                   'paper; nLeak = (cMAP − floor) / (raw cMAP − floor). Bold: best, underlined: '
                   'second best learning-based method.')
    elif table.kind == 'transfer':
        caption = ('Transfer: anonymizer fitted on the first dataset, target models trained and '
                   'tested on the second; in-domain: anonymizer fitted on the second; '
                   'cost = in-domain − transfer, with its paired bootstrap interval.')
    else:
        caption = ('Paired comparisons with raw frames: Δ = method − raw on the same seeds and test '
                   'videos, its 95 % paired bootstrap interval and two-sided p; * significant at '
                   'p < 0.05.')
    caption += f' Profile {h["profile"]}, {h["runs"]} runs, commits {h["commits"]}, {h["devices"]}.'
    lines += [r'\begin{table*}[t]', r'\centering',
              r'\caption{' + tex_escape(caption) + '}',
              r'\label{tab:' + f'{table.kind}-{table.profile}' + '}',
              r'\resizebox{\textwidth}{!}{%',
              r'\begin{tabular}{' + 'l' * (1 if table.kind == 'table1' else 2)
              + 'c' * (len(header) - (1 if table.kind == 'table1' else 2)) + '}', r'\toprule']
    if spans:
        group = [''] * spans[0][1]
        rules = []
        for title, start, end in spans:
            group.append(r'\multicolumn{' + f'{end - start}' + '}{c}{' + tex_escape(title) + '}')
            rules.append(r'\cmidrule(lr){' + f'{start + 1}-{end}' + '}')
        lines.append(' & '.join(group) + r' \\')
        lines.append(' '.join(rules))
    lines.append(' & '.join(h if h.startswith('$') or '\\' in h else tex_escape(h) for h in header) + r' \\')
    lines.append(r'\midrule')
    previous = None
    for kind, cells in body:
        if kind != previous and previous is not None and kind in ('floor', 'pair'):
            lines.append(r'\midrule')
        previous = kind
        if kind == 'pair':
            lines.append(r'\multicolumn{' + f'{len(header)}' + '}{l}{' + tex_escape(cells[0]) + r'} \\')
            continue
        lines.append(' & '.join(_tex_cell(c) for c in cells) + r' \\')
    lines += [r'\bottomrule', r'\end{tabular}}', r'\end{table*}']
    return '\n'.join(lines) + '\n'


def _tex_cell(cell: str) -> str:
    # cells built in the 'tex' style already hold their own markup
    if cell.startswith(('\\textbf', '\\underline', '\\checkmark')) or '$\\pm$' in cell:
        return cell.replace('–', '--')
    return tex_escape(cell)


def _transfer_cells(table: Table, style: str):
    frame = table.frame
    pm, arrow_up, arrow_down, delta = ((' ± ', '↑', '↓', 'Δ') if style == 'md' else
                                       (r' $\pm$ ', r'$\uparrow$', r'$\downarrow$', r'$\Delta$'))
    with_paper = bool(frame[[f'paper_in_domain_{m}' for m, *_ in TABLE_METRICS]].notna().any().any())
    header = ['Trained on → evaluated on', 'Method']
    for metric, name, _, _ in TABLE_METRICS:
        arrow = arrow_up if _higher_is_better(metric) else arrow_down
        header += [f'{name} ({arrow}) in-domain', f'{name} transfer', f'{name} cost (in − tr)']
        if with_paper:
            header.append(f'{name} paper in-domain')
    header.append('n')
    body = []
    previous = None
    for row in frame.to_dict('records'):
        pair = f'{paper.dataset_title(row["train_dataset"])} → {paper.dataset_title(row["dataset"])}'
        if style == 'tex' and pair != previous:
            body.append(('pair', [pair]))
        previous = pair
        method = row['row_kind'] == 'method'
        cells = [pair if style == 'md' else '', row['table_name']]
        for metric, *_ in TABLE_METRICS:
            home = {k.removeprefix('in_domain_'): v for k, v in row.items() if k.startswith('in_domain_')}
            home['row_kind'] = 'method'
            cells += [(_ours(home, metric, pm) or 'not run') if method else '',
                      _ours(row, metric, pm), _cost_cell(row, metric) if method else '']
            if with_paper:
                cells.append(_display(row[f'paper_in_domain_{metric}'], metric))
        cells.append(f'{row["in_domain_n_seeds"]} / {row["n_seeds"]}' if method else '')
        body.append((row['row_kind'], cells))
    return header, body, []


def _cost_cell(row: dict, metric: str) -> str:
    value = row[f'cost_{metric}']
    text = _signed(value, metric)
    if not text:
        return 'n/a'
    low, high = row[f'cost_{metric}_ci_low'], row[f'cost_{metric}_ci_high']
    if low == low and high == high:
        text += f' [{_signed(low, metric)}, {_signed(high, metric)}]'
        from benchmark.stats import SIGNIFICANCE
        text += '*' if row[f'cost_{metric}_p'] < SIGNIFICANCE else ''
    elif row[f'cost_{metric}_basis'] == 'unpaired':
        text += ' (unpaired)'
    return text


_CELLS = {'table1': _table1_cells, 'transfer': _transfer_cells, 'paired': _paired_cells}


def to_csv(table: Table) -> str:
    """The table's frame as CSV, numbers in the protocol's units (fractions)."""
    return table.frame.to_csv(index=False)


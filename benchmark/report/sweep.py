"""``bench report --sweep NAME``: the ablation table and figures of one sweep.

A sweep's points are the counting runs whose ``bench.sweep`` tag names it
(``benchmark/sweep.py``). One row per point (variant): its grid values, top-1, F1, cMAP and the
automated readability where measured, mean ± sample std over seeds with the seed count, and the
95 % interval of the seed mean from the per-video outputs. Best and second are marked as in
Table 1 (``tables._mark``): only where the paired bootstrap test over the same seeds and test
videos finds the difference significant, here among all points of the sweep.

Below it, every point against one reference point (by default the sweep's first planned point:
the first value given on each grid axis, e.g. ``style=depth``; ``--reference`` picks another):
the paired difference of each metric over the same seeds and test videos, its bootstrap interval
and p-value, so that a difference inside the noise reads as such.

Files: ``sweep_<name>.{md,csv}``, ``sweep_<name>_paired.csv`` (the comparisons with the
reference), ``plots/sweep_<name>_plane.{png,pdf}`` (the points in the privacy-utility plane) and
``plots/sweep_<name>_frames.{png,pdf}`` (the same test frames through every point, from the
points' logged samples: the lowest seed's run of each), plus ``plots/sweep_<name>_heatmap.{png,pdf}``
for a two-axis grid (two values or more on each axis). The samples are exported to
``<results>/samples/sweep_<name>/``, apart from Table 1's.

The sweep's manifest (``<work-dir>/sweeps/<name>.json``, written by ``bench sweep``) says which
points it plans; a report of a sweep still running, or with failed points, names those without a
complete run in its table and on stderr, so that a partial table is never read as the whole.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

from benchmark import stats
from benchmark.errors import InputError
from benchmark.report import grid, runs as runs_io
from benchmark.report import tables

METRICS = tables.TABLE_METRICS  # (metric, title, display scale, decimals)
READABILITY = tables.READABILITY_METRICS


def sweep_runs(counting: pd.DataFrame, name: str) -> pd.DataFrame:
    """The counting runs that are points of sweep ``name``."""
    member = counting.sweep.fillna('').str.split(',').apply(lambda names: name in names)
    return counting[member].reset_index(drop=True)


def variant_values(variant: str) -> dict[str, str]:
    """``style=depth,anonymizer.scale=2`` -> ``{'style': 'depth', 'anonymizer.scale': '2'}``."""
    return dict(part.split('=', 1) for part in variant.split(',') if '=' in part)


def read_manifest(path: Path | None) -> dict | None:
    """The definition in a sweep's manifest (``<work-dir>/sweeps/<name>.json``), or None."""
    try:
        return json.loads(Path(path).read_text())['definition'] if path else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def missing_points(points: pd.DataFrame, definition: dict) -> tuple[int, dict[str, list[str]]]:
    """The number of points the sweep's ``definition`` plans, and those of them without a
    complete run among ``points`` (variant -> seeds). Runs of another dataset or profile than
    the definition's do not count."""
    from benchmark.sweep import planned_points
    planned = planned_points(definition)
    mine = points[(points.dataset == definition.get('dataset'))
                  & (points.profile == definition.get('profile'))]
    have = {(_settings(m.partition('@')[2]), str(seed)) for m, seed in zip(mine.method, mine.seed)}
    missing: dict[str, list[str]] = {}
    for variant, seed in planned:
        if (_settings(variant), str(seed)) not in have:
            missing.setdefault(variant, []).append(str(seed))
    return len(planned), missing


def _settings(variant: str) -> frozenset[str]:
    """A variant's ``key=value`` settings whatever their order: manifests written before the
    grid kept its order (their keys sorted) name a two-key variant the other way round."""
    return frozenset(variant.split(','))


def coverage(points: pd.DataFrame, definition: dict | None) -> str:
    """One sentence: how many of the sweep's planned points have a complete run in the store,
    and which do not yet (a report of a sweep still running, or of one with failed points)."""
    if definition is None:
        return ('the sweep\'s manifest (sweeps/<name>.json in the work dir it ran in) was '
                'not found, so whether every planned point is here is not checked.')
    planned, missing = missing_points(points, definition)
    seeds = len(definition.get('seeds', [])) or 1
    if not missing:
        return f'all {planned} planned ({planned // seeds} variants x {seeds} seeds) have a complete run.'
    done = planned - sum(map(len, missing.values()))
    return (f'{done} of {planned} planned have a complete run; not yet: '
            + '; '.join(f'{v} (seed{"s" if len(s) > 1 else ""} {", ".join(s)})'
                        for v, s in missing.items())
            + '. The table is partial until they do.')


def by_point(points: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    """A sweep's runs as (dataset, method) -> their records, in the store's order."""
    return tables.by_dataset_method(points.to_dict('records'))


def sweep_table(points: pd.DataFrame, name: str, predictions=None, test=None) -> tables.Table:
    """The ablation table of one sweep's counting runs (one profile, one dataset). ``test``: the
    paired tester behind the marks (``tables._tester`` over :func:`by_point`), shared with
    :func:`paired_frame` so that no pair is bootstrapped twice; built here when not given."""
    records = points.to_dict('records')
    buckets = by_point(points)
    axes = list(variant_values(records[0]['method'].partition('@')[2])) if records else []
    rows = []
    for (dataset, method), group in buckets.items():
        variant = method.partition('@')[2]
        row = {'sweep': name, 'dataset': dataset, 'profile': group[-1]['profile'],
               'row_kind': 'method', 'privacy_learning': 'true', 'method': method,
               'variant': variant, **variant_values(variant), 'n_seeds': len(group),
               'seeds': tables._seeds(group)}
        for metric, *_ in METRICS:
            stat = tables._stats(tables._metric(group, metric))
            runs_of_row = tables._run_groups(group, predictions, stats.METRICS[metric][0])
            stat['ci_low'], stat['ci_high'] = (stats.group_interval(metric, runs_of_row)
                                               if runs_of_row else (math.nan, math.nan))
            row.update({f'{metric}_{k}': v for k, v in stat.items()})
        for metric in READABILITY:
            row[f'{metric}_mean'] = tables._stats(tables._metric(group, metric))['mean']
        rows.append(row)
    # every point competes (privacy_learning above only admits the rows to tables._mark's pool)
    tables._mark(rows, [(f'{m}_mean', scale, dec, tables._higher_is_better(m))
                        for m, _, scale, dec in METRICS], test or tables._tester(buckets, predictions))
    frame = pd.DataFrame(rows).drop(columns=['row_kind', 'privacy_learning'])
    header = tables.header_of(records, records[0]['profile']) if records else {}
    header['axes'] = ', '.join(axes)
    return tables.Table('sweep', header.get('profile', ''), frame, header)


def reference_variant(variants: list[str], definition: dict | None, requested: str | None) -> str:
    """The point the others are compared with: ``requested`` (``key=value,...`` in any order, or
    a bare value when the sweep has one axis), else the sweep's first planned point (the first
    value given on each grid axis), else the first of ``variants``. An unknown one is a one-line
    error naming the closest."""
    from benchmark.sweep import planned_points
    by_settings = {_settings(v): v for v in variants}
    if requested:
        axes = list(variant_values(variants[0])) if variants else []
        wanted = requested if '=' in requested or len(axes) != 1 else f'{axes[0]}={requested}'
        found = by_settings.get(_settings(wanted))
        if found is None:
            from benchmark.errors import near_misses
            raise InputError(f'--reference {requested!r}: no such point in this sweep: '
                             f'{near_misses(wanted, variants)} points: {", ".join(variants)}')
        return found
    planned = planned_points(definition) if definition else []
    first = by_settings.get(_settings(planned[0][0])) if planned else None
    return first or variants[0]


def paired_frame(table: tables.Table, test, reference: str) -> pd.DataFrame:
    """Every other point against ``reference``: per metric the difference point − reference of
    the seed-averaged metric over the seeds both have, on the same test videos, its paired
    bootstrap interval and two-sided p (``test``: ``tables._tester`` over the table's points,
    ``benchmark.stats.paired_test``). Empty when the points have no per-video outputs."""
    axes = [a for a in table.header.get('axes', '').split(', ') if a]
    base = next(m for m, v in zip(table.frame.method, table.frame.variant) if v == reference)
    rows = []
    for row in table.frame.to_dict('records'):
        if row['variant'] == reference:
            continue
        for metric, *_ in METRICS:
            result = test(metric, row['method'], base, row['dataset'])
            if result is None:
                continue
            rows.append({'sweep': row['sweep'], 'dataset': row['dataset'], 'profile': row['profile'],
                         'variant': row['variant'], **{a: row[a] for a in axes},
                         'reference': reference, 'metric': metric, 'difference': result.difference,
                         'ci_low': result.low, 'ci_high': result.high, 'p_value': result.p_value,
                         'significant': result.significant(stats.SIGNIFICANCE),
                         'seeds': result.seeds, 'videos': result.videos})
    return pd.DataFrame(rows)


def paired_markdown(paired: pd.DataFrame, axes: list[str], reference: str) -> list[str]:
    """The comparisons with the reference point as Markdown lines (none when there are none)."""
    if paired.empty:
        return []
    titles = [*axes, *(t for _, title, *_ in METRICS for t in (f'Δ{title}', 'p')), 'seeds', 'videos']
    lines = ['', f'## Each point against {reference}', '',
             '| ' + ' | '.join(titles) + ' |', '|' + '---|' * len(titles)]
    signed = tables._signed
    for _, group in paired.groupby('variant', sort=False):
        by_metric = {r['metric']: r for r in group.to_dict('records')}
        first = next(iter(by_metric.values()))
        cells = [str(first[a]) for a in axes]
        for metric, *_ in METRICS:
            r = by_metric.get(metric)
            cells += ['', ''] if r is None else [
                f'{signed(r["difference"], metric)} [{signed(r["ci_low"], metric)}, '
                f'{signed(r["ci_high"], metric)}]' + ('*' if r['significant'] else ''),
                '<0.001' if r['p_value'] < 0.001 else f'{r["p_value"]:.3f}']
        cells += [str(first['seeds']), str(first['videos'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', f'Δ = point − {reference}, mean over the seeds both have, on the same test videos; '
              f'[low, high]: {stats.CONFIDENCE:.0%} interval of Δ from a paired bootstrap resampling '
              f'test videos and seeds together ({stats.N_BOOT:,} resamples); p: two-sided. '
              f'*: significant at p < {stats.SIGNIFICANCE}; a difference without * is inside the '
              'noise of these seeds and test videos. Top-1 and cMAP in percentage points, F1 as a '
              'fraction.']
    return lines


def _cell(row, metric: str, scale: float, decimals: int) -> str:
    mean, std = row[f'{metric}_mean'], row[f'{metric}_std']
    if mean != mean:
        return '-'
    text = f'{scale * mean:.{decimals}f}' + (f' ± {scale * std:.{decimals}f}' if std == std else '')
    low, high = row.get(f'{metric}_ci_low', math.nan), row.get(f'{metric}_ci_high', math.nan)
    if low == low and high == high:
        text += f' [{scale * low:.{decimals}f}, {scale * high:.{decimals}f}]'
    mark = row.get(f'{metric}_mean_mark', '')
    return f'**{text}**' if mark == 'best' else f'<u>{text}</u>' if mark == 'second' else text


def to_markdown(table: tables.Table, paired: pd.DataFrame | None = None,
                reference: str = '') -> str:
    """The sweep's table, then (given ``paired``) each point against the ``reference`` point."""
    h = table.header
    axes = [a for a in h.get('axes', '').split(', ') if a]
    measured = [m for m in READABILITY if table.frame[f'{m}_mean'].notna().any()]
    titles = [*axes, 'seeds', *(f'{t} {"↑" if tables._higher_is_better(m) else "↓"}'
                                for m, t, *_ in METRICS),
              *(m.removeprefix('readability_') for m in measured)]
    lines = [f'# Sweep {table.frame.sweep.iloc[0]}: {table.frame.method.iloc[0].partition("@")[0]} '
             f'on {table.frame.dataset.iloc[0]} ({h["profile"]} profile)', '',
             *(f'- {line}' for line in tables._header_lines(table)), '',
             *([f'Points: {h["coverage"]}', ''] if h.get('coverage') else []),
             '| ' + ' | '.join(titles) + ' |', '|' + '---|' * len(titles)]
    for _, row in table.frame.iterrows():
        cells = [str(row.get(a, '')) for a in axes] + [str(row.n_seeds)]
        cells += [_cell(row, m, scale, dec) for m, _, scale, dec in METRICS]
        cells += [f'{row[f"{m}_mean"]:.3f}' if row[f'{m}_mean'] == row[f'{m}_mean'] else '-'
                  for m in measured]
        lines.append('| ' + ' | '.join(cells) + ' |')
    lines += ['', 'Top-1 and cMAP in percent, F1 as a fraction: mean ± sample std over seeds, '
              f'[low, high] the {stats.CONFIDENCE:.0%} bootstrap interval of the seed mean '
              '(test videos and seeds resampled; shown where the runs kept their per-video outputs). '
              '**Bold**: best point, <u>underlined</u>: second, each only where a paired bootstrap '
              'test over the same seeds and test videos finds it significantly ahead of the next '
              '(p < 0.05); nothing is marked without per-video outputs or with one seed per point.',
              'Readability columns: the automated measures (benchmark/readability.py), seed means.']
    if paired is not None:
        lines += paired_markdown(paired, axes, reference)
    return '\n'.join(lines) + '\n'


def plane(table: tables.Table, stem: Path) -> list[Path]:
    """The points in the privacy-utility plane: cMAP (x, lower is better) against top-1."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from benchmark.report.plots import save
    f = table.frame
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.errorbar(100 * f.privacy_cmap_mean, 100 * f.action_top1_mean,
                xerr=100 * f.privacy_cmap_std.fillna(0), yerr=100 * f.action_top1_std.fillna(0),
                fmt='o', capsize=3)
    for _, row in f.iterrows():
        ax.annotate(row.variant, (100 * row.privacy_cmap_mean, 100 * row.action_top1_mean),
                    textcoords='offset points', xytext=(4, 4), fontsize=7)
    ax.set_xlabel('privacy cMAP (%), lower is better')
    ax.set_ylabel('action top-1 (%), higher is better')
    ax.set_title(f'sweep {f.sweep.iloc[0]} ({table.header["profile"]} profile, mean ± std over seeds)',
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths = save(fig, stem)
    plt.close(fig)
    return paths


def heatmap(table: tables.Table, stem: Path) -> list[Path]:
    """A two-axis grid as heatmaps of top-1 and cMAP (seed means)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import seaborn as sns

    from benchmark.report.plots import save
    first, second = table.header['axes'].split(', ')
    f = table.frame
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (metric, title) in zip(axes, (('action_top1', 'top-1 (%) ↑'),
                                          ('privacy_cmap', 'cMAP (%) ↓'))):
        grid = f.pivot_table(index=first, columns=second, values=f'{metric}_mean', sort=False) * 100
        sns.heatmap(grid, annot=True, fmt='.1f', ax=ax, cmap='viridis' if metric == 'action_top1'
                    else 'viridis_r', cbar=False)
        ax.set_title(title)
    fig.suptitle(f'sweep {f.sweep.iloc[0]} ({table.header["profile"]} profile, seed means)', fontsize=9)
    fig.tight_layout()
    paths = save(fig, stem)
    plt.close(fig)
    return paths


def write_sweep_report(counting: pd.DataFrame, name: str, out: Path, predictions=None,
                       definition: dict | None = None, reference: str | None = None,
                       samples_dir: Path | None = None) -> list[Path]:
    """The sweep's table (Markdown, CSV), its points against the ``reference`` point
    (:func:`reference_variant`) and figures under ``out``; its files only. With the sweep's
    ``definition`` (its manifest's), the table says which planned points are missing; with
    ``samples_dir`` (the sweep's exported samples, ``runs.sweep_samples_dir``), the frame grid
    is drawn."""
    points = sweep_runs(counting, name)
    if points.empty:
        known = sorted({n for names in counting.sweep.fillna('') for n in names.split(',') if n})
        from benchmark.errors import near_misses
        raise InputError(f'no complete run of sweep {name!r} in the store: '
                         + (near_misses(name, known) + f' sweeps: {", ".join(known)}' if known
                            else 'run `bench sweep --name ' + name + '` first'))
    written = []
    for (profile, dataset), group in points.groupby(['profile', 'dataset'], sort=False):
        test = tables._tester(by_point(group), predictions)
        table = sweep_table(group, name, predictions, test)
        # the manifest plans one dataset and profile: its coverage and first point are theirs
        planned_here = definition is None or (definition.get('dataset'),
                                              definition.get('profile')) == (dataset, profile)
        if planned_here:
            table.header['coverage'] = coverage(group, definition)
        suffix = '' if points[['profile', 'dataset']].drop_duplicates().shape[0] == 1 else \
            f'_{dataset}_{profile}'
        stem = f'sweep_{name}{suffix}'
        out.mkdir(parents=True, exist_ok=True)
        base = reference_variant(table.frame.variant.tolist(),
                                 definition if planned_here else None, reference)
        paired = paired_frame(table, test, base)
        (out / f'{stem}.md').write_text(to_markdown(table, paired, base))
        table.frame.to_csv(out / f'{stem}.csv', index=False)
        written += [out / f'{stem}.md', out / f'{stem}.csv']
        if not paired.empty:
            paired.to_csv(out / f'{stem}_paired.csv', index=False)
            written.append(out / f'{stem}_paired.csv')
        written += plane(table, out / 'plots' / f'{stem}_plane')
        axes = [a for a in table.header['axes'].split(', ') if a]
        if len(axes) == 2 and all(table.frame[a].nunique() > 1 for a in axes):
            written += heatmap(table, out / 'plots' / f'{stem}_heatmap')
        if samples_dir is not None:  # rows in the table's order, named by their grid values
            written += grid.frame_grid(samples_dir, dataset, profile,
                                       list(zip(table.frame.method, table.frame.variant)),
                                       out / 'plots' / f'{stem}_frames', run_ids=set(group.run_id),
                                       what=f'every point of sweep {name}')
    return written


def build_sweep_report(tracking_uri: str | None, name: str, out: Path, results_dir: Path,
                       from_csv: Path | None = None, work_dir: Path | None = None,
                       reference: str | None = None) -> list[Path]:
    """Read the store (or a ``runs.csv``), fetch the points' per-video outputs, write the report.

    From the store, the store's runs are exported to ``results_dir`` as ``bench report``
    exports them (``runs.csv``, ``curves.csv``) beside the points' per-video outputs and test
    frames (``samples/sweep_<name>/``: of each point, its lowest seed's run), and the
    sweep's manifest, read from ``work_dir`` (where ``bench sweep`` ran), is copied there:
    a report ``--from`` that export, or from several merged (a sweep split over machines),
    finds it.
    Points it plans that have no complete run are named in the table and on stderr."""
    out, results_dir = Path(out), Path(results_dir)
    if from_csv is not None:
        runs = runs_io.load_runs(Path(from_csv))
        predictions_dir = Path(from_csv).parent / 'predictions'
        samples_dir = runs_io.sweep_samples_dir(Path(from_csv).parent / 'samples', name)
        manifest = Path(from_csv).parent / 'sweeps' / f'{name}.json'
    else:
        runs = runs_io.read_store(tracking_uri)
        predictions_dir = results_dir / 'predictions'
        samples_dir = runs_io.sweep_samples_dir(results_dir / 'samples', name)
        manifest = Path(work_dir) / 'sweeps' / f'{name}.json' if work_dir is not None else None
    definition = read_manifest(manifest)
    counting = runs_io.counting_runs(runs_io.slim(runs))
    points = sweep_runs(counting, name) if not counting.empty else counting
    written = []
    if from_csv is None and not points.empty:
        written += runs_io.fetch_predictions(tracking_uri, points, predictions_dir)
        # the store exported as `bench report` exports it: with the per-video outputs and the
        # manifest, a folder another machine's export merges with (--from A --from B). Curves
        # of every counting run, not the sweep's alone: the folder may hold the curves of the
        # store's other runs (a `bench report` before), which a report --from it still needs.
        cached = runs_io.load_curves(results_dir / 'curves.csv', quiet=True)
        written += runs_io.export_runs(runs, runs_io.read_curves(tracking_uri, counting, cached),
                                       results_dir)
        # as Table 1's samples are exported, in a folder of their own
        from benchmark.report import _in_domain, _remove_stale
        samples = runs_io.fetch_samples(tracking_uri, _in_domain(points), samples_dir)
        _remove_stale(samples_dir, ['*.npz'], samples)  # of points no longer in the table
        written += samples
    written += write_sweep_report(counting, name, out, runs_io.PredictionStore(predictions_dir),
                                  definition, reference, samples_dir)
    if from_csv is None and definition is not None:
        copy = results_dir / 'sweeps' / f'{name}.json'
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(json.dumps({'definition': definition}, indent=2) + '\n')
        written.append(copy)
    mixed = tables.mixed_backbones(points.to_dict('records')) if not points.empty else []
    if mixed:
        print(f'bench report: sweep {name}: its points started their target models from '
              f'different {" and ".join(mixed)} backbones (pretrained on other machines or '
              f'caches): the points are not comparable; run the sweep on one machine and cache',
              file=sys.stderr)
    if definition is not None and missing_points(points, definition)[1]:
        print(f'bench report: sweep {name}: {coverage(points, definition)}', file=sys.stderr)
    return written

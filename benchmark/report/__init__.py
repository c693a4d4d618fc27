"""``bench report``: Table 1, the transfer table and the figures, generated from the runs.

Everything under ``reports/`` is written here and never edited by hand. The sources are the
MLflow store (``benchmark/tracking_schema.md``) or, with ``from_csv``, the exported
``results/runs.csv`` (plus ``curves.csv`` and ``samples/`` beside it), which rebuild the same
tables and figures without the store.

Files, per profile (profiles are never mixed in one table):

- ``table1_<profile>.{md,tex,csv}``: every dataset evaluated in-domain, side by side as in the
  paper's Table 1 (one file per profile rather than per dataset, so the paper's layout holds).
- ``transfer_<profile>.{md,tex,csv}``: per method with transfer runs (anonymizer fitted on A,
  target models trained and tested on B), its in-domain figures on B, its transfer figures and
  the cost (in-domain minus transfer) with a paired interval; written whenever such runs exist.
- ``paired_<profile>.{md,tex,csv}``: every method against raw frames, paired bootstrap tests on
  the same seeds and test videos (runs with per-video outputs, protocol version 2 on).
- ``plots/plane_<profile>``, ``plots/ap_<profile>``, ``plots/curves_<profile>``,
  ``plots/transfer_<profile>`` (in-domain to transferred, an arrow per method),
  ``plots/frames_<dataset>_<profile>``: ``.png`` and ``.pdf`` each.

The points of a ``bench sweep`` (runs tagged ``bench.sweep``) are left out of these: their table
and figures are ``bench report --sweep NAME``'s (``benchmark/report/sweep.py``).

A report replaces the previous one: tables and figures of the report folder (``*_<profile>``
files at its top and in ``plots/``) and samples of the results folder that this report did not
write are removed (other files are never touched), and the frame grid draws only samples of the
runs in its table, so tables, figures and samples always come from the same runs.
"""
from __future__ import annotations

import os
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd

from benchmark.config import available_profiles
from benchmark.errors import InputError, first_line
from benchmark.report import grid, plots, runs as runs_io, tables

__all__ = ['build_report', 'export_runs']

export_runs = runs_io.export_runs


def _filter(runs: pd.DataFrame, datasets, profiles) -> pd.DataFrame:
    if datasets:
        runs = runs[runs.dataset.isin(datasets)]
    if profiles:
        runs = runs[runs.profile.isin(profiles)]
    return runs.reset_index(drop=True)


def _in_domain(counting: pd.DataFrame) -> pd.DataFrame:
    return counting[(counting.train_dataset == counting.dataset) | (counting.train_dataset == '')]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def build_report(tracking_uri: str | None, out: Path, results_dir: Path,
                 datasets: list[str] | None = None, profiles: list[str] | None = None,
                 from_csv: Path | None = None, extra_methods=(), timings: dict | None = None) -> list[Path]:
    """Read the runs, export them (store mode), write every table and figure.

    Args:
        tracking_uri (str, optional): MLflow tracking URI; ignored with ``from_csv``.
        out (Path): Report folder (``reports/``).
        results_dir (Path): Where the store's runs are exported (``results/``: runs.csv,
            curves.csv, samples/); unused with ``from_csv``.
        datasets (list of str, optional): Evaluation datasets to report. Defaults to all.
        profiles (list of str, optional): Profiles to report. Defaults to all.
        from_csv (Path, optional): A ``runs.csv`` export to rebuild from instead of the store.
            Defaults to reading the store.
        extra_methods (iterable of str): Registered methods to list as "not run" in Table 1
            when they have no runs. Defaults to none.
        timings (dict, optional): Filled with seconds per phase (read, export, render).

    Returns:
        list of Path: every file written.
    """
    out, results_dir = Path(out), Path(results_dir)
    timings = {} if timings is None else timings
    start = time.perf_counter()
    _check_writable(out, '--out')
    if from_csv is None:
        _check_writable(results_dir, '--results')
    if from_csv is not None:
        from_csv = Path(from_csv)
        all_runs = _read_export(runs_io.load_runs, from_csv)
        source = str(from_csv)
    else:
        all_runs = runs_io.read_store(tracking_uri, datasets, profiles)
        source = tracking_uri or 'the default MLflow store'
    selected = _filter(all_runs, datasets, profiles)
    counting = runs_io.counting_runs(runs_io.slim(selected))
    stopped = runs_io.stopped_runs(selected[selected.sweep.fillna('') == ''])
    older = runs_io.older_data(selected)
    if len(older):
        labels = sorted(set(map(runs_io.data_label, older.dataset, runs_io.data_versions(older))))
        print(f'bench report: left out {len(older)} complete runs on older data or protocol versions ({"; ".join(labels)})')
    exported = counting  # the export's curves include the sweeps' points (their own report reads them)
    swept = counting[counting.sweep.fillna('') != '']
    if len(swept):  # a sweep's points are its own report's rows, not Table 1's
        names = sorted({n for tag in swept.sweep for n in tag.split(',') if n})
        print(f'bench report: {len(swept)} runs of sweeps are left to their own reports '
              f'(bench report --sweep {"|".join(names[:5])}{"|..." if len(names) > 5 else ""})')
        counting = counting.drop(swept.index).reset_index(drop=True)
        if counting.empty:
            raise InputError(f'every complete run in {source} is a point of a sweep: tabulate '
                             f'them with `bench report --sweep NAME` ({", ".join(names[:5])})')
    if counting.empty:
        raise InputError(_nothing_to_report(all_runs, source, datasets, profiles, from_csv, tracking_uri))
    written: list[Path] = []
    if from_csv is not None:
        curves = _read_export(runs_io.load_curves, from_csv.parent / 'curves.csv')
        samples_dir = from_csv.parent / 'samples'
        predictions_dir = from_csv.parent / 'predictions'
    else:
        cached = runs_io.load_curves(results_dir / 'curves.csv', quiet=True)
        curves = runs_io.read_curves(tracking_uri, exported, cached)
        samples_dir = results_dir / 'samples'
        predictions_dir = results_dir / 'predictions'
        # the tables' intervals and tests read them: exported before the tables are built
        written += runs_io.fetch_predictions(tracking_uri, counting, predictions_dir)
    predictions = runs_io.PredictionStore(predictions_dir)
    timings['read'] = time.perf_counter() - start
    shown_curves = None if curves is None else curves[curves.parent_run_id.isin(set(counting.run_id))]
    renderer = plots.Renderer()
    try:
        grids: list[plots.FigureJob] = []
        for profile in tables.order_profiles(counting.profile):
            written += _profile_report(counting, profile, shown_curves, samples_dir, out,
                                       extra_methods, renderer, grids, predictions, stopped)
        # The figures drawn from the tables are under way in the workers: export meanwhile.
        export_start = time.perf_counter()
        if from_csv is None:
            written += runs_io.export_runs(selected, curves, results_dir)
            samples = runs_io.fetch_samples(tracking_uri, _in_domain(counting), samples_dir)
            _remove_stale(samples_dir, ['*.npz'], samples)
            written += samples
            timings['export'] = time.perf_counter() - export_start
        renderer.add(grids)  # the frame grids read the exported samples
    except BaseException:
        renderer.close()
        raise
    written += renderer.finish()
    _remove_stale(out, report_files({*available_profiles(), *all_runs.profile}), written)
    timings['render'] = time.perf_counter() - export_start - timings.get('export', 0.0)
    return written


def report_files(profiles) -> list[str]:
    """Patterns of what a report writes, whatever the table or figure: ``<name>_<profile>`` with
    a table's suffix at the top of the report folder, with a figure's in ``plots/`` (never in
    another folder). A file of these names that a report did not write is an earlier report's."""
    return [f'{folder}*_{profile}.{suffix}' for profile in sorted(profiles)
            for folder, suffixes in (('', ('md', 'tex', 'csv')), ('plots/', ('png', 'pdf')))
            for suffix in suffixes]


def _remove_stale(folder: Path, patterns: list[str], written: list[Path]) -> None:
    keep = {Path(p).resolve() for p in written}
    for pattern in patterns:
        for path in folder.glob(pattern):
            # a sweep's report (sweep_<name>*) is `bench report --sweep`'s, whatever its name ends in
            if path.resolve() not in keep and not path.name.startswith('sweep_'):
                path.unlink()


def _check_writable(folder: Path, option: str) -> None:
    """Refuse, before reading anything and without creating it, a folder the report could not
    write: the folder, or the nearest folder above it that exists, must be a writable folder."""
    existing = folder.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f'{option} {folder}: {existing} is a file, not a folder; pass another '
                         f'{option}')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f'{option} {folder}: {existing} is not writable; pass another {option}')


def _read_export(read, path: Path):
    """``read(path)`` of an exported runs.csv or curves.csv; one line naming a file it cannot parse."""
    try:
        return read(path)
    except (ValueError, KeyError) as err:  # pandas' parser and decoding errors are ValueErrors
        message = first_line(err)
        raise InputError(message if str(path) in message else
                         f'{path}: not a `bench report` export ({message})') from None


def _profile_report(counting, profile, curves, samples_dir, out, extra_methods, renderer,
                    grids, predictions=None, stopped=None) -> list[Path]:
    """Write the tables of one profile, start drawing its figures on ``renderer`` and queue its
    frame grids on ``grids`` (they wait for the exported samples)."""
    written = []
    table1 = tables.table1(counting, profile, extra_methods, predictions)
    transfer = tables.transfer_table(counting, profile, predictions)
    tables_out = [table1] if not table1.frame.empty else []
    for extra in (transfer, tables.paired_table(counting, profile, predictions)):
        if extra is not None:
            tables_out.append(extra)
    mixed = next((t for t in tables_out if t.header.get('backbones_mixed')), None)
    if mixed is not None:  # the header says it too; a mix is easy to miss there
        print(f'bench report: the {profile} profile\'s runs started their target models from '
              f'different {mixed.header["backbones_mixed"]} backbones (pretrained on other '
              f'machines or caches): their figures are not comparable; see "target backbones" '
              f'in {out / f"{mixed.kind}_{profile}.md"}', file=sys.stderr)
    for table in (table1, transfer):
        note = None if table is None else tables.stopped_note(stopped, table)
        if note:
            table.notes.append(note)
    for table in tables_out:
        stem = out / f'{table.kind}_{profile}'
        written += [_write(stem.with_suffix('.md'), tables.to_markdown(table)),
                    _write(stem.with_suffix('.tex'), tables.to_latex(table)),
                    _write(stem.with_suffix('.csv'), tables.to_csv(table))]
    plot_dir = out / 'plots'
    jobs = []
    if transfer is not None:
        stem = plot_dir / f'transfer_{profile}'
        jobs.append(plots.FigureJob(stem, ['transfer', transfer.frame], partial(
            plots.transfer_plane, transfer, stem), cost=2))
    if table1.frame.empty:  # this profile has transfer runs only
        renderer.add(jobs)
        return written
    in_profile = counting[counting.profile == profile]
    stem = plot_dir / f'plane_{profile}'
    jobs.append(plots.FigureJob(stem, ['plane', table1.frame, in_profile], partial(
        plots.privacy_utility_plane, table1, in_profile, stem), cost=3))
    stem = plot_dir / f'ap_{profile}'
    jobs.append(plots.FigureJob(stem, ['ap', table1.frame, in_profile], partial(
        plots.attribute_ap, table1, in_profile, stem), cost=4))
    if curves is not None:
        mine = curves[curves.parent_run_id.isin(set(in_profile.run_id))]
        stem = plot_dir / f'curves_{profile}'
        jobs.append(plots.FigureJob(stem, ['curves', table1.frame, in_profile, mine], partial(
            plots.training_curves, table1, in_profile, mine, stem), cost=4))
    renderer.add(jobs)
    methods = list(dict.fromkeys(zip(table1.frame[table1.frame.row_kind == 'method'].method,
                                     table1.frame[table1.frame.row_kind == 'method'].table_name)))
    for dataset in dict.fromkeys(table1.frame.dataset):
        stem = plot_dir / f'frames_{dataset}_{profile}'
        samples = [runs_io.input_path(samples_dir, dataset, profile)] + [
            runs_io.sample_path(samples_dir, m, dataset, profile) for m, _ in methods]
        run_ids = sorted(in_profile[in_profile.dataset == dataset].run_id)
        grids.append(plots.FigureJob(stem, ['grid', methods, run_ids, *samples], partial(
            grid.frame_grid, samples_dir, dataset, profile, methods, stem, run_ids=set(run_ids))))
    return written


def _nothing_to_report(all_runs, source, datasets, profiles, from_csv, tracking_uri) -> str:
    if from_csv is None and (datasets or profiles):
        all_runs = runs_io.read_store(tracking_uri)  # only to name what is there
    done = runs_io.counting_runs(all_runs)
    have = (f'complete runs exist for datasets {", ".join(sorted(set(done.dataset)))} and profiles '
            f'{", ".join(sorted(set(done.profile)))}' if len(done) else 'it holds no complete run')
    asked = ''.join([f' --dataset {",".join(datasets)}' if datasets else '',
                     f' --profile {",".join(profiles)}' if profiles else ''])
    return (f'no complete bench run to report in {source}{" for" + asked if asked else ""}: {have}; '
            f'run `bench run` first or pick another --dataset/--profile/--tracking-uri')

"""Figures of a report: the privacy-utility plane, per-attribute AP, training curves.

Pure functions of the counting runs, the Table 1 frame and the curves frame (benchopt's plot
classes, lm-eval's ``make_table`` are the model: data in, file out). Each figure is written as
PNG (for review) and PDF (vector, for a paper). Matplotlib's object API is used without pyplot,
so nothing depends on a display or on global figure state.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from benchmark.metric_specs import PRIVACY_ATTRIBUTES
from benchmark.report import paper
from benchmark.report.tables import Table

STAGES = ('fit', 'action', 'privacy')
STAGE_LOSSES = ('train_loss', 'train_loss_total')  # a stage's loss curve: the first it logged
_PDF_METADATA = {'CreationDate': None}  # reproducible bytes for equal data
# Unhinted glyphs at screen resolution: text is most of a figure's drawing time, and hinting
# (FreeType's autohinter at 8x horizontal resolution) buys little at 100 dpi.
_PNG_TEXT = {'text.hinting': 'no_hinting', 'text.hinting_factor': 1}
# zlib level 1: a fifth of level 6's time, files about a third larger
_PNG_ENCODING = {'compress_level': 1}


def _digest(inputs: list) -> str:
    """A content hash of a figure's inputs and of the code that draws figures."""
    h = hashlib.sha1()
    for module in ('plots.py', 'grid.py'):
        h.update(Path(__file__).with_name(module).read_bytes())
    for item in inputs:
        if isinstance(item, pd.DataFrame):
            h.update(','.join(map(str, item.columns)).encode())
            h.update(pd.util.hash_pandas_object(item, index=False).values.tobytes())
        elif isinstance(item, Path):
            h.update(item.read_bytes() if item.is_file() else b'<absent>')
        else:
            h.update(repr(item).encode())
    return h.hexdigest()


@dataclass
class FigureJob:
    """One figure to draw: where, from what (hashed), and the function that draws it."""

    stem: Path
    inputs: list
    draw: Callable[[], list[Path]]
    cost: float = 1.0  # relative drawing time, for scheduling


class Renderer:
    """Draws the figures whose inputs changed since the last report, in parallel processes.

    Drawing is the slow part of a report (0.2 to 0.9 s per figure on 2 cores); a figure drawn
    from the same inputs by the same code is kept (hashes in ``<folder>/.inputs.json``). A stale
    figure starts drawing as soon as it is added, in one of up to ``workers`` forked processes,
    so figures drawn from the tables overlap with what the report does next (exporting the
    runs and samples); ``finish`` waits for all and returns every file.

    Args:
        workers (int, optional): Processes. Defaults to the CPU count (drawn in this process
            when 1 or where fork is missing). A draw function must then pickle (a
            ``functools.partial`` of a module-level function does).
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or os.cpu_count() or 1
        if 'fork' not in multiprocessing.get_all_start_methods():
            self.workers = 1
        self.manifests: dict[Path, dict] = {}
        self.written: list[Path] = []
        self.pending: list[tuple[FigureJob, str, object]] = []  # job, digest, future or None
        self.pool: ProcessPoolExecutor | None = None

    def add(self, jobs: list[FigureJob]) -> None:
        """Queue figures; stale ones start drawing now (costliest first) when workers > 1."""
        stale = []
        for job in jobs:
            folder = job.stem.parent
            if folder not in self.manifests:
                try:
                    self.manifests[folder] = json.loads((folder / '.inputs.json').read_text())
                except (OSError, ValueError):
                    self.manifests[folder] = {}
            digest = _digest(job.inputs)
            entry = self.manifests[folder].get(job.stem.name)
            if entry and entry['digest'] == digest and all((folder / f).is_file() for f in entry['files']):
                self.written += [folder / f for f in entry['files']]
            else:
                stale.append((job, digest))
        for job, digest in sorted(stale, key=lambda item: -item[0].cost):
            self.pending.append((job, digest, self._submit(job)))

    def _submit(self, job: FigureJob):
        if self.workers == 1:
            return None
        if self.pool is None:
            import matplotlib.backends.backend_agg  # noqa: F401 imported once here, not per worker
            import matplotlib.backends.backend_pdf  # noqa: F401
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context('fork'))
        return self.pool.submit(job.draw)

    def close(self) -> None:
        """Stop drawing without recording anything (the report failed)."""
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
        self.pending = []

    def finish(self) -> list[Path]:
        """Wait for every figure, record the inputs it was drawn from, return every file."""
        try:
            for job, digest, future in self.pending:
                files = future.result() if future is not None else job.draw()
                self.manifests[job.stem.parent][job.stem.name] = {
                    'digest': digest, 'files': [f.name for f in files]}
                self.written += files
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
                self.pool = None
        for folder, manifest in self.manifests.items():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / '.inputs.json').write_text(json.dumps(manifest, indent=1, sort_keys=True))
        self.pending = []
        return self.written


def render(jobs: list[FigureJob], workers: int | None = None) -> list[Path]:
    """Draw the stale figures of ``jobs`` (see ``Renderer``) and return every file."""
    renderer = Renderer(workers)
    renderer.add(jobs)
    return renderer.finish()


def method_colors(methods: list[str]) -> dict[str, tuple]:
    """One stable color per method, by its position in the table's row order."""
    cmap = colormaps['tab20']
    return {m: cmap(i % 20) for i, m in enumerate(methods)}


def save(fig: Figure, stem: Path, dpi: int = 100) -> list[Path]:
    """Write ``stem.png`` (at ``dpi``) and ``stem.pdf``."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = stem.with_suffix('.png'), stem.with_suffix('.pdf')
    with rc_context(_PNG_TEXT):
        fig.savefig(png, dpi=dpi, metadata={'Software': None}, pil_kwargs=_PNG_ENCODING)
    fig.savefig(pdf, metadata=_PDF_METADATA)
    return [png, pdf]


def text_width(texts, fontsize: float) -> float:
    """Width in inches of the widest of ``texts`` at ``fontsize`` points (for margins that
    fit their labels: long sweep-variant names must not be cut at the figure's edge)."""
    from matplotlib.textpath import TextPath
    widths = [TextPath((0, 0), str(t), size=fontsize).get_extents().width for t in texts]
    return max(widths, default=0.0) / 72.0


def _axes_grid(rows: int, cols: int, width: float, height: float, left: float = 0.7,
               right: float = 0.15, bottom: float = 0.55, top: float = 0.4, wgap: float = 0.7,
               hgap: float = 0.7, sharex: bool | str = False):
    """A figure of ``rows x cols`` axes of ``width x height`` inches, margins and gaps in inches.

    Fixed margins instead of a layout engine: constrained layout measures every text twice
    and cost about a third of the drawing time of a report.
    """
    fig_w = left + cols * width + (cols - 1) * wgap + right
    fig_h = bottom + rows * height + (rows - 1) * hgap + top
    fig = Figure(figsize=(fig_w, fig_h))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=sharex, gridspec_kw=dict(
        left=left / fig_w, right=1 - right / fig_w, bottom=bottom / fig_h, top=1 - top / fig_h,
        wspace=wgap / width, hspace=hgap / height))
    return fig, axes


def _pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Non-dominated points for (low cMAP, high top-1), ordered by cMAP."""
    front, best_y = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best_y:
            front.append((x, y))
            best_y = y
    return front


def privacy_utility_plane(table: Table, counting: pd.DataFrame, stem: Path) -> list[Path]:
    """Top-1 against cMAP per dataset: method means, seed spread, Pareto front, floor and raw.

    Each method: its mean (square: fixed, circle: learning), bars of ± one seed std on both
    axes, and its single seeds as faint dots; labels placed clear of each other and the legend.

    Args:
        table (Table): Table 1 of one profile (its frame gives the means and floors).
        counting (pd.DataFrame): The counting runs, for the individual seeds.
        stem (Path): Output path without suffix.
    """
    frame = table.frame
    datasets = list(dict.fromkeys(frame.dataset))
    colors = method_colors(list(dict.fromkeys(frame.method)))
    fig, axes = _axes_grid(1, len(datasets), 4.4, 3.5)
    for ax, dataset in zip(axes[0], datasets):
        rows = frame[(frame.dataset == dataset) & (frame.row_kind == 'method') & (frame.status == 'ok')]
        floor = frame[(frame.dataset == dataset) & (frame.row_kind == 'floor')].iloc[0]
        seeds = counting[(counting.dataset == dataset) & (counting.profile == table.profile)
                         & (counting.train_dataset.isin([dataset, '']))]
        # Vectorized per panel (one collection per kind of mark, not artists per method):
        # drawing dominates a report's time.
        x, y = rows.privacy_cmap_mean.to_numpy() * 100, rows.action_top1_mean.to_numpy() * 100
        xerr = np.nan_to_num(rows.privacy_cmap_std.to_numpy() * 100)
        yerr = np.nan_to_num(rows.action_top1_std.to_numpy() * 100)
        color = [colors[m] for m in rows.method]
        mine = seeds[seeds.method.isin(set(rows.method))]
        import seaborn as sns  # here: only the drawing workers pay its import
        sns.scatterplot(x=mine['metric.privacy_cmap'].to_numpy() * 100,
                        y=mine['metric.action_top1'].to_numpy() * 100, hue=mine.method.to_numpy(),
                        palette=colors, s=12, alpha=0.45, linewidth=0, legend=False, ax=ax)
        segments = [[(a - e, b), (a + e, b)] for a, b, e in zip(x, y, xerr)] + [
            [(a, b - e), (a, b + e)] for a, b, e in zip(x, y, yerr)]
        ax.add_collection(LineCollection(segments, colors=color * 2, linewidths=1))
        learning = (rows.privacy_learning == 'true').to_numpy()
        for marker, which in (('o', learning), ('s', ~learning)):
            if which.any():
                ax.scatter(x[which], y[which], s=36, marker=marker,
                           c=[c for c, w in zip(color, which) if w], zorder=3)
        points = list(zip(x, y))
        front = _pareto(points)
        if len(front) > 1:
            ax.plot(*zip(*front), color='0.4', linestyle='--', linewidth=1, label='Pareto front')
        if not math.isnan(floor.privacy_cmap_mean):
            ax.axvline(floor.privacy_cmap_mean * 100, color='0.55', linestyle=':', label='chance floor')
        if not math.isnan(floor.action_top1_mean):
            ax.axhline(floor.action_top1_mean * 100, color='0.55', linestyle=':')
        raw = rows[rows.method == 'raw']
        if len(raw):
            ax.axvline(raw.privacy_cmap_mean.iloc[0] * 100, color='tab:red', linewidth=0.8,
                       linestyle='-.', label='raw')
            ax.axhline(raw.action_top1_mean.iloc[0] * 100, color='tab:red', linewidth=0.8, linestyle='-.')
        ax.set_title(f'{paper.dataset_title(dataset)} ({table.profile})')
        ax.set_xlabel('privacy cMAP (%), lower is better')
        ax.set_ylabel('action top-1 (%), higher is better')
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        keep = [i for i, lab in enumerate(labels) if lab in ('Pareto front', 'chance floor', 'raw')]
        legend = None
        if keep:
            legend = ax.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize=7,
                               loc='lower right')
        place_labels(ax, list(rows.table_name), x, y, avoid=[legend] if legend else [],
                     segments=segments)
    return save(fig, stem)


def transfer_plane(table: Table, stem: Path) -> list[Path]:
    """The transfer in the privacy-utility plane: ``draw_transfer_plane`` written to ``stem``."""
    return save(draw_transfer_plane(table), stem)


def draw_transfer_plane(table: Table) -> Figure:
    """Top-1 against cMAP per (A → B) pair of a transfer table: an arrow per method from its
    in-domain point (anonymizer fitted on B, filled) to its transferred point (fitted on A,
    hollow), both seed means. A method without in-domain runs shows its transferred point only.

    Arrows carry the gid ``transfer:<method>``, labels ``label:<method>`` (the tests find them).
    """
    frame = table.frame
    pairs = list(dict.fromkeys(zip(frame.train_dataset, frame.dataset)))
    colors = method_colors(list(dict.fromkeys(frame[frame.row_kind == 'method'].method)))
    fig, axes = _axes_grid(1, len(pairs), 4.4, 3.5)
    for ax, (source, target) in zip(axes[0], pairs):
        on_pair = frame[(frame.train_dataset == source) & (frame.dataset == target)]
        rows = on_pair[on_pair.row_kind == 'method']
        away = np.column_stack([rows.privacy_cmap_mean, rows.action_top1_mean]) * 100
        home = np.column_stack([rows.in_domain_privacy_cmap_mean, rows.in_domain_action_top1_mean]) * 100
        color = [colors[m] for m in rows.method]
        has_home = ~np.isnan(home).any(axis=1)
        ax.scatter(*home[has_home].T, s=36, c=[c for c, h in zip(color, has_home) if h], zorder=3)
        ax.scatter(*away.T, s=36, facecolors='white', edgecolors=color, linewidths=1.5, zorder=3)
        # the legend's marks in grey: they stand for every method's colour
        for face, label in (('0.3', f'in-domain (fitted on {paper.dataset_title(target)})'),
                            ('white', f'transfer (fitted on {paper.dataset_title(source)})')):
            ax.scatter([], [], s=36, facecolors=face, edgecolors='0.3', linewidths=1.5, label=label)
        segments = []
        for method, start, end, c, ok in zip(rows.method, home, away, color, has_home):
            if not ok:
                continue
            ax.annotate('', xy=end, xytext=start, zorder=2, gid=f'transfer:{method}',
                        arrowprops=dict(arrowstyle='-|>', color=c, linewidth=1.2, shrinkA=4, shrinkB=5))
            # the arrow in short pieces, so that labels keep clear of its line, not of its box
            steps = np.linspace(0, 1, 9)[:, None]
            path = start + steps * (end - start)
            segments += list(zip(map(tuple, path[:-1]), map(tuple, path[1:])))
        floor = on_pair[on_pair.row_kind == 'floor']
        if len(floor) and not math.isnan(floor.privacy_cmap_mean.iloc[0]):
            ax.axvline(floor.privacy_cmap_mean.iloc[0] * 100, color='0.55', linestyle=':',
                       label='chance floor')
        if len(floor) and not math.isnan(floor.action_top1_mean.iloc[0]):
            ax.axhline(floor.action_top1_mean.iloc[0] * 100, color='0.55', linestyle=':')
        ax.set_title(f'{paper.dataset_title(source)} → {paper.dataset_title(target)} '
                     f'({table.profile})')
        ax.set_xlabel('privacy cMAP (%), lower is better')
        ax.set_ylabel('action top-1 (%), higher is better')
        ax.grid(alpha=0.3)
        ax.update_datalim(np.vstack([home[has_home], away]))
        legend = ax.legend(fontsize=7, loc='lower right')
        texts = place_labels(ax, list(rows.table_name), away[:, 0], away[:, 1], avoid=[legend],
                             segments=segments, points=home[has_home])
        for text, method in zip(texts, rows.method):
            text.set_gid(f'label:{method}')
    return fig


def place_labels(ax, names: list[str], x, y, avoid=(), segments=(), fontsize: float = 7,
                 points=()) -> list:
    """Label points so that no label overlaps another label, a marker (of the labelled points
    and of ``points``, other markers as data points), an error bar (``segments``: pairs of data
    points), a legend or the edge.

    Each label tries positions around its point, nearest first (right, left, above, below,
    the diagonals, then farther out with a leader line); it takes the first whose box, measured
    by the renderer, is inside the axes and clear of every box placed so far. A label that finds
    no free place is drawn at its last candidate with a leader line (possible only when the
    panel is crowded beyond what any placement can fix). Returns the text artists, in the
    order of ``names``.
    """
    fig = ax.figure
    ax.autoscale_view()  # final data limits before measuring where points land
    if not hasattr(fig.canvas, 'get_renderer'):  # a bare Figure: measure text with Agg
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    taken = [artist.get_window_extent(renderer) for artist in avoid]
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0  # points to pixels
    marker = 4 * px  # half the side of a marker's box
    centers = ax.transData.transform(np.column_stack([x, y])) if len(names) else np.empty((0, 2))
    from matplotlib.transforms import Bbox
    others = ax.transData.transform(np.asarray(points, float).reshape(-1, 2))
    taken += [Bbox([[cx - marker, cy - marker], [cx + marker, cy + marker]])
              for cx, cy in np.vstack([centers, others])]
    for start, end in segments:  # error bars, one pixel either side
        (x0, y0), (x1, y1) = ax.transData.transform([start, end])
        taken.append(Bbox([[min(x0, x1) - 1, min(y0, y1) - 1], [max(x0, x1) + 1, max(y0, y1) + 1]]))
    directions = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
    candidates = [(d, r) for r in (6, 14, 24, 36) for d in directions]
    texts = {}
    # crowded points first: they have the fewest free places
    crowd = [int(np.sum(np.hypot(*(centers - c).T) < 40 * px)) for c in centers]
    for i in sorted(range(len(names)), key=lambda i: -crowd[i]):
        cx, cy = centers[i]
        text = ax.annotate(names[i], (x[i], y[i]), xytext=(0, 0), textcoords='offset points',
                           fontsize=fontsize, zorder=4)
        w, h = (lambda b: (b.width, b.height))(text.get_window_extent(renderer))
        chosen = None
        for (dx, dy), r in candidates:
            ox = dx * r * px + (0 if dx > 0 else -w if dx < 0 else -w / 2)
            oy = dy * r * px + (0 if dy > 0 else -h if dy < 0 else -h / 2)
            box = Bbox([[cx + ox, cy + oy], [cx + ox + w, cy + oy + h]])
            inside = (box.x0 >= frame.x0 + 1 and box.x1 <= frame.x1 - 1
                      and box.y0 >= frame.y0 + 1 and box.y1 <= frame.y1 - 1)
            chosen = (ox, oy, box, r)
            if inside and not any(box.overlaps(t) for t in taken):
                break
        ox, oy, box, r = chosen
        text.set_position((ox / px, oy / px))
        if r > 6:  # a leader line from the point to the label's centre
            ax.annotate('', (x[i], y[i]), xytext=((box.x0 + w / 2 - cx) / px, (box.y0 + h / 2 - cy) / px),
                        textcoords='offset points', arrowprops=dict(arrowstyle='-', color='0.5',
                                                                   linewidth=0.5, shrinkA=0, shrinkB=3))
        taken.append(box)
        texts[i] = text
    return [texts[i] for i in range(len(names))]


def attribute_ap(table: Table, counting: pd.DataFrame, stem: Path) -> list[Path]:
    """Heat map of mean AP (%) per method and privacy attribute, with cMAP, per dataset."""
    frame = table.frame
    datasets = list(dict.fromkeys(frame.dataset))
    columns = [f'privacy_ap_{a}' for a in PRIVACY_ATTRIBUTES] + ['privacy_cmap']
    names = list(PRIVACY_ATTRIBUTES) + ['cMAP']
    methods = [(m, n) for m, n in dict.fromkeys(zip(frame[frame.row_kind == 'method'].method,
                                                    frame[frame.row_kind == 'method'].table_name))]
    in_domain = counting[(counting.profile == table.profile)
                         & ((counting.train_dataset == counting.dataset) | (counting.train_dataset == ''))]
    n_rows = max(1, max(in_domain[in_domain.dataset == d].method.nunique() for d in datasets))
    # one color scale for every panel, spanning the APs shown
    shown_aps = in_domain[[f'metric.{c}' for c in columns if f'metric.{c}' in in_domain]] * 100
    low = float(np.nanmin(shown_aps.values)) if shown_aps.size else 0.0
    high = float(np.nanmax(shown_aps.values)) if shown_aps.size else 100.0
    low, high = (low, high) if high > low else (low - 1, high + 1)
    label_width = text_width([n for _, n in methods], 8) + 0.2  # row names fit in the margin
    fig, axes = _axes_grid(1, len(datasets), 3.6, 0.3 * n_rows, left=max(1.2, label_width),
                           right=1.1, bottom=0.8, wgap=max(1.3, label_width + 0.1))
    image = None
    for ax, dataset in zip(axes[0], datasets):
        runs = in_domain[in_domain.dataset == dataset]
        shown = [(m, n) for m, n in methods if (runs.method == m).any()]
        values = np.full((len(shown), len(columns)), np.nan)
        for i, (method, _) in enumerate(shown):
            mine = runs[runs.method == method]
            for j, column in enumerate(columns):
                if f'metric.{column}' in mine:
                    values[i, j] = mine[f'metric.{column}'].mean() * 100
        image = ax.imshow(np.ma.masked_invalid(values), cmap='magma_r', vmin=low, vmax=high, aspect='auto')
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, 'n/a' if math.isnan(value) else f'{value:.1f}', ha='center', va='center',
                    fontsize=7, color='white' if value > (low + high) / 2 else 'black')
        ax.set_xticks(range(len(names)), names, rotation=30, ha='right', fontsize=8)
        ax.set_yticks(range(len(shown)), [n for _, n in shown], fontsize=8)
        ax.set_title(f'AP per attribute (%), {paper.dataset_title(dataset)} ({table.profile})', fontsize=9)
    cax = fig.add_axes((1 - 0.85 / fig.get_figwidth(), 0.8 / fig.get_figheight(),
                        0.15 / fig.get_figwidth(), 1 - 1.2 / fig.get_figheight()))
    fig.colorbar(image, cax=cax, label='AP (%), lower leaks less')
    return save(fig, stem)


def training_curves(table: Table, counting: pd.DataFrame, curves: pd.DataFrame, stem: Path) -> list[Path]:
    """The training loss per stage of every learning method (a method with a ``fit`` stage).

    One panel per (dataset, stage); a line per method, the mean over seeds at each step,
    shaded between the seeds' minimum and maximum. The loss of a stage is its ``train_loss``,
    or for a fit that logs its terms apart (RAPrivacy's two phases) ``train_loss_total``.
    Returns no files when no curves exist.
    """
    runs = counting[(counting.profile == table.profile)
                    & ((counting.train_dataset == counting.dataset) | (counting.train_dataset == ''))]
    joined = curves.merge(runs[['run_id', 'method', 'dataset', 'seed']],
                          left_on='parent_run_id', right_on='run_id', suffixes=('', '_parent'))
    learners = set(joined[joined.stage == 'fit'].method)
    joined = joined[joined.method.isin(learners) & joined.metric.isin(STAGE_LOSSES)]
    # per (method, stage): the first of STAGE_LOSSES it logged
    rank = joined.metric.map({m: i for i, m in enumerate(STAGE_LOSSES)})
    best = rank.groupby([joined.method, joined.stage]).transform('min')
    joined = joined[rank == best]
    if joined.empty:
        return []
    datasets = [d for d in dict.fromkeys(table.frame.dataset) if (joined.dataset == d).any()]
    stages = [s for s in STAGES if (joined.stage == s).any()]
    order = list(dict.fromkeys(table.frame.method))
    colors = method_colors(order)
    # a column is one stage: its panels share the step axis, labelled on the bottom row only
    fig, axes = _axes_grid(len(datasets), len(stages), 3.6, 2.3, top=0.6, right=1.6, wgap=0.7,
                           hgap=0.45, sharex='col')
    names = dict(zip(table.frame.method, table.frame.table_name))
    handles: dict[str, object] = {}
    panels = {key: part for key, part in joined.groupby(['dataset', 'stage'], sort=False)}
    for r, dataset in enumerate(datasets):
        for c, stage in enumerate(stages):
            ax = axes[r][c]
            part = panels.get((dataset, stage), joined.iloc[:0])
            for method, own in sorted(part.groupby('method', sort=False), key=lambda g: order.index(g[0])):
                per_step = own.groupby('step').value.agg(['mean', 'min', 'max'])
                # a stage of one or two logged steps (a one-epoch run) shows as points
                handles[method], = ax.plot(per_step.index, per_step['mean'], color=colors[method],
                                           linewidth=1.2, marker='o' if len(per_step) < 3 else None,
                                           markersize=3)
                ax.fill_between(per_step.index, per_step['min'], per_step['max'], color=colors[method],
                                alpha=0.2, linewidth=0)
            ax.set_title(f'{paper.dataset_title(dataset)}: {stage} stage', fontsize=9)
            if r == len(datasets) - 1:
                ax.set_xlabel('step')
            ax.set_ylabel(', '.join(sorted(set(part.metric))) or 'train_loss')
            ax.grid(alpha=0.3)
    shown = sorted(handles, key=order.index)
    # one legend for the figure: a legend per panel cost a fifth of the drawing
    fig.legend([handles[m] for m in shown], [names[m] for m in shown], fontsize=7,
               loc='upper right', bbox_to_anchor=(1 - 0.05 / fig.get_figwidth(),
                                                  1 - 0.6 / fig.get_figheight()))
    fig.suptitle(f'Training curves of learning methods, profile {table.profile} '
                 f'(mean over seeds, band = min to max)', fontsize=10, y=1 - 0.12 / fig.get_figheight())
    return save(fig, stem)

"""The frame comparison grid: the same test frames through every method, like the RAPrivacy
paper's Figure 1 (raw image, depth image, other anonymizations, RAPrivacy).

Reads the exported samples (``runs.sample_path`` / ``runs.input_path``): every method's
``frames`` (K, T, H, W, 3) uint8 are the same K test clips at the same frame indices, so one
column per clip (its middle frame) and one row per method line up.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from benchmark.report import paper
from benchmark.report.plots import save, text_width
from benchmark.report.runs import input_path, sample_path


def frame_grid(samples_dir: Path, dataset: str, profile: str, methods: list[tuple[str, str]],
               stem: Path, max_clips: int = 4, run_ids: set[str] | None = None,
               what: str = 'every method') -> list[Path]:
    """Draw input and anonymized middle frames of up to ``max_clips`` test clips.

    Args:
        samples_dir (Path): Folder of the exported ``.npz`` samples.
        dataset (str): Evaluation dataset.
        profile (str): Profile of the runs.
        methods (list of (str, str)): (method, row name) in table order.
        stem (Path): Output path without suffix.
        max_clips (int): Columns at most. Defaults to 4.
        run_ids (set of str, optional): The runs of the table: a sample exported from any other
            run (an earlier report's, a committed one) is left out. Defaults to None (any run).
        what (str): What the rows are, for the title. Defaults to 'every method'.

    Returns:
        list of Path: the PNG and PDF, or nothing (with a warning) without exported samples.
    """
    def of_this_table(data) -> bool:
        return run_ids is None or ('run_id' in data and str(data['run_id']) in run_ids)

    source = input_path(samples_dir, dataset, profile)
    rows = []
    if source.is_file():
        with np.load(source) as data:
            if of_this_table(data):
                rows, video_ids = [('Input', data['frames'])], list(data['video_ids'])
    if not rows:
        warnings.warn(f'no exported test frames of these runs for {dataset} ({profile}) in '
                      f'{samples_dir}: frame grid skipped (runs log samples/raw_frames.npz)',
                      stacklevel=2)
        return []
    for method, name in methods:
        path = sample_path(samples_dir, method, dataset, profile)
        if not path.is_file():
            continue
        with np.load(path) as data:
            if not of_this_table(data):
                continue
            if list(data['video_ids']) != video_ids:
                warnings.warn(f'{path}: its test clips differ from the input clips: left out of '
                              f'the frame grid', stacklevel=2)
                continue
            rows.append((name, data['frames']))
    if any(name == 'Raw Data' for name, _ in rows[1:]):
        rows = rows[1:]  # raw's frames are the input frames
    clips = min(max_clips, len(video_ids))
    mosaic, (tile_h, tile_w) = _mosaic([frames[:clips, frames.shape[1] // 2] for _, frames in rows])
    # One image in one axes without ticks (an axes costs ~20 ms per format, its ticks more);
    # interpolation 'none' keeps the PDF's image at its own pixels, scaled by the page.
    zoom = _TILE_PX / max(tile_h, tile_w)
    step_h, step_w = (tile_h + _GAP) * zoom, (tile_w + _GAP) * zoom
    # px: row names (as wide as the longest, e.g. a sweep variant), title and clip names, margin
    left = max(150, round(text_width([name for name, _ in rows], 9) * _DPI) + 16)
    top, pad = 48, 8
    img_h, img_w = mosaic.shape[0] * zoom, mosaic.shape[1] * zoom
    width, height = left + img_w + pad, top + img_h + pad
    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    ax = fig.add_axes((left / width, pad / height, img_w / width, img_h / height))
    ax.imshow(mosaic, interpolation='none', aspect='auto')
    ax.set_axis_off()
    for c in range(clips):
        fig.text((left + c * step_w + tile_w * zoom / 2) / width, 1 - (top - 6) / height,
                 str(video_ids[c]), ha='center', va='bottom', fontsize=7)
    for r, (name, _) in enumerate(rows):
        fig.text((left - 8) / width, 1 - (top + r * step_h + tile_h * zoom / 2) / height, name,
                 ha='right', va='center', fontsize=9)
    fig.suptitle(f'{paper.dataset_title(dataset)} test frames through {what} ({profile})',
                 fontsize=10, y=1 - 4 / height, va='top')
    return save(fig, stem, dpi=_DPI)


_GAP = 2  # white pixels between tiles (before enlarging)
_TILE_PX = 128  # tile size after enlarging
_DPI = 100


def _mosaic(rows: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int]]:
    """Tile rows of (clips, H, W, 3) frames into one image with white gaps."""
    tile_h = max(r.shape[1] for r in rows)
    tile_w = max(r.shape[2] for r in rows)
    clips = rows[0].shape[0]
    out = np.full((len(rows) * (tile_h + _GAP) - _GAP, clips * (tile_w + _GAP) - _GAP, 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for c in range(clips):
            frame = frames[c]
            y, x = r * (tile_h + _GAP), c * (tile_w + _GAP)
            out[y:y + frame.shape[0], x:x + frame.shape[1]] = frame
    return out, (tile_h, tile_w)

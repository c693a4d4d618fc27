"""``bench datasets check``: is a VP-UCF101 / VP-HMDB51 tree complete and readable?

Reports, for one official split: clips per split and class, clips listed but missing on
disk, files that do not decode, listed clips without privacy labels, and labels of listed
classes whose clip no split lists. A tree is ``ok`` when nothing is missing, undecodable or
unlabelled; labels without clips are shown but do not fail it (they change no run).

``decode='sample'`` (the quick mode) checks presence and labels for every clip and decodes a
few; ``decode=True`` opens every clip and decodes its first, middle and last frame, in worker
processes. A run does the same full decoding of the clips it reads before it starts, cached
per file (:func:`undecodable_clips`), and refuses to start on a clip that does not decode
unless its source says ``on_corrupt='skip'``.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.datasets.annotations import LabelIndex, load_privacy_labels
from benchmark.datasets.real import (SPLITS, ClipEntry, DatasetLayoutError, _Decoder, build_index,
                                     find_annotations, present_clips)

SAMPLE_PER_SPLIT = 3


@dataclass
class DatasetReport:
    """What :func:`check_dataset` found; ``format()`` prints it for people."""

    name: str
    data_root: str
    split_id: int
    layout: str = ''
    video_root: str = ''
    annotations: str = ''
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    labels_without_clips: list[str] = field(default_factory=list)
    other_class_labels: int = 0
    decoded: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.errors or self.missing or self.undecodable or self.unlabelled)

    def format(self, limit: int | None = 100) -> str:
        """Human-readable summary; lists of names are cut at ``limit`` (None: all)."""
        lines = [f'{self.name} split {self.split_id} at {self.data_root}']
        if self.layout:
            lines.append(f'  {self.layout} under {self.video_root}; labels {self.annotations}')
        lines += [f'  note: {n}' for n in self.notes]
        lines += [f'  ERROR: {e}' for e in self.errors]
        for split, per_class in self.counts.items():
            if not per_class:
                continue
            sizes = sorted(per_class.items(), key=lambda kv: kv[1])
            lines.append(f'  {split}: {sum(per_class.values())} clips in {len(per_class)} classes '
                         f'(fewest {sizes[0][1]} {sizes[0][0]}, most {sizes[-1][1]} {sizes[-1][0]})')
        if self.counts:
            classes = sorted({c for per_class in self.counts.values() for c in per_class})
            splits = [s for s in self.counts if self.counts[s]]
            cells = [f'{c} ' + '/'.join(str(self.counts[s].get(c, 0)) for s in splits) for c in classes]
            lines.append(f'  per class ({"/".join(splits)}):')
            for start in range(0, len(cells), 4):
                lines.append('    ' + ', '.join(cells[start:start + 4]))

        def listing(title: str, items: list[str]) -> None:
            if not items:
                return
            lines.append(f'  {title}: {len(items)}')
            shown = items if limit is None else items[:limit]
            lines.extend(f'    {item}' for item in shown)
            if len(shown) < len(items):
                lines.append(f'    ... and {len(items) - len(shown)} more')

        listing('missing on disk', self.missing)
        listing('do not decode', [f'{n}: {why}' for n, why in self.undecodable])
        listing('listed clips without privacy labels', self.unlabelled)
        listing('privacy labels without a listed clip', self.labels_without_clips)
        if self.other_class_labels:
            lines.append(f'  ({self.other_class_labels} labels belong to classes of which the '
                         f'split lists name no clip)')
        lines.append(f'  decoded {self.decoded} clips')
        lines.append('  OK' if self.ok else '  PROBLEMS FOUND (see above)')
        return '\n'.join(lines)


def _probe(args: tuple[str, str, str, str, int]) -> str | None:
    """Open one clip and decode its first, middle and last frame; the error, or None."""
    path, layout, backend, filename_tmpl, start_index = args
    try:
        decoder = _Decoder(layout, backend, filename_tmpl, start_index)
        n = decoder.num_frames(Path(path))
        if n <= 0:
            return 'no frames'
        frames = decoder.read(Path(path), np.array(sorted({0, n // 2, n - 1})))
        if frames.ndim != 4 or frames.shape[-1] != 3:
            return f'unexpected frame shape {frames.shape}'
    except Exception as e:  # noqa: BLE001 - the report names the file and the reason
        return f'{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ""}'
    return None


def probe_clips(jobs: list[tuple[str, str, str, str, int]], workers: int | None = None) -> list[str | None]:
    """:func:`_probe` every job, in worker processes when there are many; errors in job order."""
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 8:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(_probe, jobs, chunksize=16))
    return [_probe(j) for j in jobs]


def undecodable_clips(name: str, paths: dict[str, Path], layout: str, decoder: str,
                      filename_tmpl: str, start_index: int, cache_dir: Path,
                      workers: int | None = None) -> dict[str, str]:
    """The clips among ``paths`` (clip name -> file) that do not decode, with the reason.

    Every file is probed as ``bench datasets check`` does, once per version of it: verdicts are
    cached in ``<cache_dir>/<name>/decode_check-<settings>.json`` with each file's size and
    mtime (a frame folder's own, for extracted frames), so the next run of the same tree only
    stats its files and probes what changed.
    """
    settings = f'{layout}|{decoder}|{filename_tmpl}|{start_index}'
    cache = Path(cache_dir) / name / f'decode_check-{hashlib.sha1(settings.encode()).hexdigest()[:12]}.json'
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    stamps = {}
    for path in paths.values():
        st = path.stat()
        stamps[str(path)] = [st.st_size, st.st_mtime_ns]
    todo = [str(p) for p in paths.values() if known.get(str(p), [None, None])[:2] != stamps[str(p)]]
    if todo:
        errors = probe_clips([(p, layout, decoder, filename_tmpl, start_index) for p in todo], workers)
        known.update({p: stamps[p] + [e] for p, e in zip(todo, errors)})
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f'.{cache.name}.{os.getpid()}')  # aside and renamed: runs may share it
        tmp.write_text(json.dumps(known))
        os.replace(tmp, cache)
    return {clip: known[str(p)][2] for clip, p in paths.items() if known[str(p)][2] is not None}


def check_dataset(name: str, data_root: str | Path, split_id: int = 1,
                  annotations: str | Path | None = None, decode: bool | str = True,
                  layout: str = 'auto', split_dir: str | Path | None = None,
                  decoder: str = 'decord', start_index: int = 1, workers: int | None = None) -> DatasetReport:
    """Check a VP-UCF101 / VP-HMDB51 tree for one split.

    Args:
        name (str): ``'vp_ucf101'`` or ``'vp_hmdb51'``.
        data_root (str | Path): The dataset root.
        split_id (int): Official split 1, 2 or 3. Defaults to 1.
        annotations (str | Path, optional): Privacy-label pickle; None looks under the root.
            Defaults to None.
        decode (bool | str): True decodes every clip, ``'sample'`` a few per split (quick),
            False none. Defaults to True.
        layout (str): ``'auto'``, ``'videos'`` or ``'frames'``. Defaults to ``'auto'``.
        split_dir (str | Path, optional): Folder of the split lists. Defaults to None.
        decoder (str): ``'decord'`` or ``'pyav'``. Defaults to ``'decord'``.
        start_index (int): Number of the first frame file (frames layout). Defaults to 1.
        workers (int, optional): Processes for full decoding; None uses the CPU count.
            Defaults to None.

    Returns:
        DatasetReport: ``.ok`` and ``.format()``.
    """
    report = DatasetReport(name, str(data_root), split_id)
    try:
        index = build_index(name, data_root, split_id, layout, split_dir)
    except (DatasetLayoutError, ValueError, KeyError) as e:
        report.errors.append(str(e).strip('"\''))
        return report
    report.layout, report.video_root = index.layout, str(index.video_root)

    try:
        labels_path = find_annotations(name, data_root, annotations)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            labels = LabelIndex(load_privacy_labels(labels_path, name))
        report.notes += [str(w.message) for w in caught]
        report.annotations = str(labels_path)
    except (FileNotFoundError, ValueError) as e:
        report.errors.append(str(e))
        labels = None

    checked: list[ClipEntry] = [c for s in SPLITS for c in index.splits[s]]
    for split in SPLITS:
        report.counts[split] = dict(collections.Counter(c.name.split('/')[0] for c in index.splits[split]))
    present, missing = present_clips(index, checked)
    report.missing = [str(index.path(c).relative_to(index.video_root)) for c in missing]

    if labels is not None:
        matched = set()
        for c in checked:
            key = labels.match(c.name)
            if key is None:
                report.unlabelled.append(c.name)
            else:
                matched.add(key)
        # HMDB51's unused clips (mark 0) are listed too: their labels have a clip.
        matched.update(k for c in index.splits.get('unused', []) if (k := labels.match(c.name)))
        # A tree holding a few classes should not list every other class's labels one by one.
        classes = {c.name.split('/')[0] for c in checked}
        for key in sorted(set(labels.labels) - matched):
            if key.split('/')[0] in classes:
                report.labels_without_clips.append(key)
            else:
                report.other_class_labels += 1

    if decode == 'sample':
        on_disk = set(present)
        targets = []
        for split in SPLITS:
            clips = [c for c in index.splits[split] if c in on_disk]
            picks = np.linspace(0, len(clips) - 1, min(SAMPLE_PER_SPLIT, len(clips))).round().astype(int)
            targets += [clips[p] for p in sorted(set(picks.tolist()))]
    elif decode:
        targets = present
    else:
        targets = []
    if targets:
        try:
            import decord  # noqa: F401
        except ImportError:
            decoder = 'pyav'
        jobs = [(str(index.path(c)), index.layout, decoder, 'img_{:05}.jpg', start_index) for c in targets]
        errors = probe_clips(jobs, workers)
        report.undecodable = [(c.name, e) for c, e in zip(targets, errors) if e is not None]
        report.decoded = len(targets)
    return report

"""VP-UCF101 and VP-HMDB51: the real videos, official splits and STPrivacy privacy labels.

The RAPrivacy paper evaluates on VP-UCF101 and VP-HMDB51: UCF101 (Soomro et al., 2012) and
HMDB51 (Kuehne et al., 2011) videos with five binary privacy attributes per clip from
STPrivacy (Li et al., ICCV 2023), 16-frame clips at sampling rate 4 (UCF) and 2 (HMDB).
Users bring the data; these sources read it as distributed:

- videos: ``UCF-101/<Class>/v_*.avi`` and ``<class>/*.avi`` (HMDB51's per-class archives
  unpacked), or mmaction2's layouts ``videos/<Class>/<clip>.avi`` and extracted frames
  ``rawframes/<Class>/<clip>/img_00001.jpg``;
- splits: UCF101's ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt``; HMDB51's
  ``<class>_test_splitN.txt`` (1 train, 2 test, 0 unused);
- labels: ``ucf101_privacy_attribute_label.pickle`` / ``hmdb51_...`` (see
  :mod:`benchmark.datasets.annotations`).

Frames are decoded by mmaction2's transforms (``DecordInit``/``DecordDecode``,
``PyAVInit``/``PyAVDecode``, ``RawFrameDecode``). Depth (ZoeDepth) and person masks are
computed once per video on first use and cached on disk.
"""
from __future__ import annotations

import hashlib
import logging
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from mmengine.logging import print_log

from benchmark.datasets.annotations import FILE_NAMES, LabelIndex, load_privacy_labels
from benchmark.datasets.clips import PRIVACY_ATTRIBUTES
from benchmark.registry import DATASETS

VIDEO_EXTENSIONS = ('.avi', '.mp4', '.webm', '.mkv')
AUX_KINDS = ('depth', 'mask')
SPLITS = ('train', 'test')

# Where each dataset's pieces usually sit under the root the user gives, in the order tried.
_LAYOUTS = {
    'vp_ucf101': dict(
        title='UCF101',
        split_dirs=('ucfTrainTestlist', 'UCF101TrainTestSplits-RecognitionTask/ucfTrainTestlist',
                    'annotations', 'splits', '.'),
        video_dirs=('UCF-101', 'UCF101', 'videos', '.'),
        frame_dirs=('rawframes', 'frames'),
        expected='UCF-101/<Class>/v_*.avi (or videos/ or rawframes/<Class>/<clip>/img_00001.jpg) '
                 'and ucfTrainTestlist/{classInd,trainlist0N,testlist0N}.txt'),
    'vp_hmdb51': dict(
        title='HMDB51',
        split_dirs=('testTrainMulti_7030_splits', 'test_train_splits/testTrainMulti_7030_splits',
                    'annotations', 'splits', '.'),
        video_dirs=('hmdb51_org', 'HMDB51', 'hmdb51', 'videos', '.'),
        frame_dirs=('rawframes', 'frames'),
        expected='<class>/*.avi (or videos/ or rawframes/<class>/<clip>/img_00001.jpg) and '
                 'testTrainMulti_7030_splits/<class>_test_splitN.txt'),
}


class DatasetLayoutError(FileNotFoundError):
    """The root does not hold the expected tree; the message says what is missing."""


@dataclass(frozen=True)
class ClipEntry:
    """One clip of a split list: ``name`` is ``"<Class>/<file name>"`` as listed."""

    name: str
    label: int

    @property
    def stem(self) -> str:
        return os.path.splitext(self.name)[0]


@dataclass
class DatasetIndex:
    """What the split files list and where the clips are on disk."""

    name: str
    data_root: Path
    split_id: int
    split_dir: Path
    classes: tuple[str, ...]
    splits: dict[str, list[ClipEntry]]
    layout: str = ''
    video_root: Path | None = None
    extension: str = '.avi'

    def path(self, clip: ClipEntry) -> Path:
        """The clip's video file or frame folder."""
        if self.layout == 'frames':
            return self.video_root / clip.stem
        return self.video_root / (clip.stem + self.extension)


def default_cache_dir() -> Path:
    return Path(os.environ.get('BENCH_CACHE') or Path.home() / '.cache' / 'raprivacy-bench')


def _read_lines(path: Path) -> list[str]:
    # The official lists have CRLF endings and trailing spaces.
    return [line.strip() for line in path.read_text(encoding='utf-8', errors='replace').splitlines()
            if line.strip()]


def _find_split_dir(name: str, root: Path, split_id: int, split_dir: str | Path | None) -> Path:
    marker = {'vp_ucf101': f'trainlist0{split_id}.txt', 'vp_hmdb51': f'*_test_split{split_id}.txt'}[name]
    candidates = [Path(split_dir)] if split_dir else [root / d for d in _LAYOUTS[name]['split_dirs']]
    for d in candidates:
        if d.is_dir() and any(d.glob(marker)):
            return d
    where = ', '.join(str(c) for c in candidates)
    raise DatasetLayoutError(
        f'{name}: no split {split_id} list ({marker}) found in {where}; expected '
        f'{_LAYOUTS[name]["expected"]} under --data-root (or set dataset.source.split_dir)')


def read_ucf101_splits(split_dir: Path, split_id: int) -> tuple[tuple[str, ...], dict[str, list[ClipEntry]]]:
    """Classes (0-based, from ``classInd.txt``) and train/test clips of one UCF101 split."""
    class_file = split_dir / 'classInd.txt'
    if not class_file.is_file():
        raise DatasetLayoutError(f'vp_ucf101: {class_file} is missing (it comes with the split lists)')
    numbered = []
    for line in _read_lines(class_file):
        number, _, cls = line.partition(' ')
        if not number.isdigit() or not cls:
            raise ValueError(f'{class_file}: line {line!r} is not "<number> <Class>"')
        numbered.append((int(number), cls.strip()))
    classes = tuple(cls for _, cls in sorted(numbered))
    label_of = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split, file_name in (('train', f'trainlist0{split_id}.txt'), ('test', f'testlist0{split_id}.txt')):
        path = split_dir / file_name
        if not path.is_file():
            raise DatasetLayoutError(f'vp_ucf101: {path} is missing')
        entries = []
        for line in _read_lines(path):
            clip = line.split(' ')[0].replace('\\', '/')
            cls = clip.split('/')[0]
            if cls not in label_of:
                raise ValueError(f'{path}: {clip!r} is in class {cls!r}, which {class_file} lacks')
            entries.append(ClipEntry(clip, label_of[cls]))
        splits[split] = entries
    return classes, splits


def read_hmdb51_splits(split_dir: Path, split_id: int) -> tuple[tuple[str, ...], dict[str, list[ClipEntry]]]:
    """Classes (sorted names) and train/test/unused clips of one HMDB51 split."""
    pattern = re.compile(rf'^(.+)_test_split{split_id}\.txt$')
    files = {m.group(1): p for p in split_dir.iterdir() if (m := pattern.match(p.name))}
    classes = tuple(sorted(files))
    splits: dict[str, list[ClipEntry]] = {'train': [], 'test': [], 'unused': []}
    which = {'1': 'train', '2': 'test', '0': 'unused'}
    for label, cls in enumerate(classes):
        for line in _read_lines(files[cls]):
            clip, _, mark = line.rpartition(' ')
            if mark not in which or not clip:
                raise ValueError(f'{files[cls]}: line {line!r} is not "<clip>.avi <0|1|2>"')
            splits[which[mark]].append(ClipEntry(f'{cls}/{clip.strip()}', label))
    return classes, splits


def _class_listing(root: Path, cls: str, cache: dict) -> set[str]:
    if cls not in cache:
        try:
            cache[cls] = set(os.listdir(root / cls))
        except (FileNotFoundError, NotADirectoryError):
            cache[cls] = set()
    return cache[cls]


def build_index(name: str, data_root: str | Path, split_id: int = 1, layout: str = 'auto',
                split_dir: str | Path | None = None) -> DatasetIndex:
    """Read the split lists and find where the clips are.

    Args:
        name (str): ``'vp_ucf101'`` or ``'vp_hmdb51'``.
        data_root (str | Path): The root the user gave.
        split_id (int): Official split 1, 2 or 3. Defaults to 1.
        layout (str): ``'auto'``, ``'videos'`` or ``'frames'``. Defaults to ``'auto'``.
        split_dir (str | Path, optional): Folder of the split lists, when it is not one of the
            usual places. Defaults to None.

    Returns:
        DatasetIndex: Classes, split entries, layout and video root.
    """
    if name not in _LAYOUTS:
        raise KeyError(f'unknown real dataset {name!r}: valid are {", ".join(_LAYOUTS)}')
    if split_id not in (1, 2, 3):
        raise ValueError(f'{name}: split_id must be 1, 2 or 3, got {split_id!r}')
    if layout not in ('auto', 'videos', 'frames'):
        raise ValueError(f"{name}: layout must be 'auto', 'videos' or 'frames', got {layout!r}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f'{name}: --data-root {root} is not a folder; expected '
                                 f'{_LAYOUTS[name]["expected"]}')
    found = _find_split_dir(name, root, split_id, split_dir)
    reader = read_ucf101_splits if name == 'vp_ucf101' else read_hmdb51_splits
    classes, splits = reader(found, split_id)
    index = DatasetIndex(name, root, split_id, found, classes, splits)
    listed = [c for s in SPLITS for c in splits[s]]
    if not listed:
        raise DatasetLayoutError(f'{name}: the split {split_id} lists in {found} name no clips')

    # The video root is the candidate folder holding the most listed clips, so one missing
    # clip (or class) does not send the search elsewhere.
    probe = listed[:: max(1, len(listed) // 200)]
    kinds = {'videos': _LAYOUTS[name]['video_dirs'], 'frames': _LAYOUTS[name]['frame_dirs']}
    best = (0, '', None, '.avi')
    for kind, dirs in kinds.items():
        if layout not in ('auto', kind):
            continue
        for d in dirs:
            cand = root / d
            if not cand.is_dir():
                continue
            if kind == 'frames':
                scores = [(sum((cand / c.stem).is_dir() for c in probe), '.avi')]
            else:
                listing: dict = {}
                scores = [(sum(os.path.basename(c.stem) + ext
                               in _class_listing(cand, c.name.split('/')[0], listing) for c in probe), ext)
                          for ext in VIDEO_EXTENSIONS]
            for hits, ext in scores:
                if hits > best[0]:  # ties keep the earlier candidate: video files first
                    best = (hits, kind, cand, ext)
    if best[2] is None:
        tried = ', '.join(str(root / d) for k, ds in kinds.items() if layout in ('auto', k) for d in ds)
        raise DatasetLayoutError(
            f'{name}: none of the clips listed in {found} is under {tried}; expected '
            f'{_LAYOUTS[name]["expected"]}')
    _, index.layout, index.video_root, index.extension = best
    return index


def present_clips(index: DatasetIndex, clips: list[ClipEntry]) -> tuple[list[ClipEntry], list[ClipEntry]]:
    """Split ``clips`` into those on disk and those missing, listing each class folder once."""
    listing: dict = {}
    present, missing = [], []
    suffix = '' if index.layout == 'frames' else index.extension
    for c in clips:
        cls = c.name.split('/')[0]
        names = _class_listing(index.video_root, cls, listing)
        (present if os.path.basename(c.stem) + suffix in names else missing).append(c)
    return present, missing


def find_annotations(name: str, data_root: str | Path, annotations: str | Path | None) -> Path:
    """The label pickle: the given path, else the published file name under the root."""
    if annotations:
        path = Path(annotations).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f'{name}: annotations file {path} does not exist '
                                    f'(dataset.source.annotations)')
        return path
    root = Path(data_root).expanduser()
    for d in ('.', 'annotations', 'vp_annotations', '..'):
        path = root / d / FILE_NAMES[name]
        if path.is_file():
            return path
    raise FileNotFoundError(
        f'{name}: privacy labels {FILE_NAMES[name]} not found in {root} or {root / "annotations"}: '
        f'download it from https://github.com/ming1993li/stprivacy (annotations/) and put it '
        f'there, or set dataset.source.annotations=PATH')


class _Decoder:
    """mmaction2's loading transforms for one layout.

    Every call opens the video anew: a decord reader left open in the main process keeps a
    decoding thread whose locks a fork into a DataLoader worker inherits held, and the worker
    then deadlocks on its first open.
    """

    def __init__(self, layout: str, backend: str, filename_tmpl: str, start_index: int) -> None:
        from mmaction.datasets.transforms import (DecordDecode, DecordInit, PyAVDecode, PyAVInit,
                                                  RawFrameDecode)
        self.layout = layout
        self.backend = backend
        self.filename_tmpl = filename_tmpl
        self.start_index = start_index
        if layout == 'frames':
            self._decode = RawFrameDecode()
        elif backend == 'decord':
            self._init, self._decode = DecordInit(), DecordDecode()
        elif backend == 'pyav':
            self._init, self._decode = PyAVInit(), PyAVDecode()
        else:
            raise ValueError(f"decoder must be 'decord' or 'pyav', got {backend!r}")

    def num_frames(self, path: Path) -> int:
        if self.layout == 'frames':
            prefix = self.filename_tmpl.split('{')[0]
            return sum(1 for n in os.listdir(path) if n.startswith(prefix))
        results = self._init.transform(dict(filename=str(path)))
        n = int(results['total_frames'])
        del results
        if n <= 0:  # some containers do not store a frame count: count by decoding
            import av
            with av.open(str(path)) as container:
                n = sum(1 for _ in container.decode(video=0))
        return n

    def read(self, path: Path, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        if self.layout == 'frames':
            results = dict(frame_dir=str(path), filename_tmpl=self.filename_tmpl, modality='RGB',
                           offset=self.start_index, frame_inds=indices)
        else:
            results = dict(self._init.transform(dict(filename=str(path))), frame_inds=indices)
        return np.stack(self._decode.transform(results)['imgs'])


def _fingerprint(config: dict) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _resize_maps(maps: np.ndarray, height: int, width: int, interpolation: int) -> np.ndarray:
    if maps.shape[1:3] == (height, width):
        return maps
    return np.stack([cv2.resize(m, (width, height), interpolation=interpolation) for m in maps])


def _shrink(frames: np.ndarray, short_side: int | None, interpolation: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    if not short_side or min(h, w) <= short_side:
        return frames
    scale = short_side / min(h, w)
    return _resize_maps(frames, round(h * scale), round(w * scale), interpolation)


class _RealVideoSource:
    """A VP dataset split read from the user's tree (see the module docstring).

    Args:
        data_root (str): Root of the dataset tree. Required.
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        split_id (int): Official split 1, 2 or 3. Defaults to 1.
        annotations (str, optional): Privacy-label pickle; ``None`` looks for the published file
            name in ``data_root`` and ``data_root/annotations``. Defaults to None.
        aux (sequence of str): Aux maps to provide after RGB, a subset of ``('depth', 'mask')``.
            Defaults to ``()``.
        depth (dict, optional): :class:`~benchmark.datasets.depth_model.DepthEstimator`
            arguments (``weights`` at least); needed when ``'depth'`` is in ``aux``.
            Defaults to None.
        person (dict, optional): :class:`~benchmark.datasets.person_regions.PersonRegions`
            arguments; needed when ``'mask'`` is in ``aux``. Defaults to None (HOG).
        layout (str): ``'auto'``, ``'videos'`` or ``'frames'``. Defaults to ``'auto'``.
        decoder (str): ``'decord'`` or ``'pyav'`` for video files. Defaults to ``'decord'``.
        filename_tmpl (str): Frame file names of the frames layout (mmaction2's).
            Defaults to ``'img_{:05}.jpg'``.
        start_index (int): Number of the first frame file. Defaults to 1.
        split_dir (str, optional): Folder of the split lists when not in a usual place.
            Defaults to None.
        cache_dir (str, optional): Where depth and masks are cached; ``None`` uses
            ``$BENCH_CACHE`` or ``~/.cache/raprivacy-bench``. Defaults to None.
        aux_short_side (int): Short side at which aux maps are computed and cached (they are
            resized to the frame size on read). Defaults to 128.
        preflight (bool): At construction, fail when listed clips are missing, and decode every
            clip once (first, middle and last frame, in worker processes; the verdicts are cached
            per file, so the next run only stats them), so that a broken clip stops the run
            before training, not hours into it. Defaults to True.
        on_corrupt (str): What the preflight does with clips that do not decode: ``'refuse'``
            (one error naming them and their count) or ``'skip'`` (leave them out, with a logged
            count). Defaults to ``'refuse'``.
    """

    name = ''

    def __init__(self, data_root: str | None = None, split: str = 'train', split_id: int = 1,
                 annotations: str | None = None, aux=(), depth: dict | None = None,
                 person: dict | None = None, layout: str = 'auto', decoder: str = 'decord',
                 filename_tmpl: str = 'img_{:05}.jpg', start_index: int = 1,
                 split_dir: str | None = None, cache_dir: str | None = None,
                 aux_short_side: int = 128, preflight: bool = True, on_corrupt: str = 'refuse') -> None:
        if data_root is None:
            raise ValueError(f'{self.name}: no data root: pass --data-root PATH (or '
                             f'dataset.source.data_root) with {_LAYOUTS[self.name]["expected"]}')
        if split not in SPLITS:
            raise ValueError(f"{self.name}: split must be 'train' or 'test', got {split!r}")
        if on_corrupt not in ('refuse', 'skip'):
            raise ValueError(f"{self.name}: on_corrupt must be 'refuse' or 'skip', got {on_corrupt!r}")
        self.on_corrupt = on_corrupt
        unknown = [a for a in aux if a not in AUX_KINDS]
        if unknown:
            raise ValueError(f'{self.name}: unknown aux maps {unknown}; valid: {", ".join(AUX_KINDS)}')
        self.split = split
        self.split_id = split_id
        self.aux_channels = tuple(aux)
        self.attributes = PRIVACY_ATTRIBUTES
        self.index = build_index(self.name, data_root, split_id, layout, split_dir)
        self.classes = self.index.classes
        self.annotations = find_annotations(self.name, data_root, annotations)
        labels = LabelIndex(load_privacy_labels(self.annotations, self.name))

        listed = self.index.splits[split]
        self.clips: list[ClipEntry] = []
        self._labels: list[np.ndarray] = []
        for clip in listed:
            key = labels.match(clip.name)
            if key is not None:
                self.clips.append(clip)
                self._labels.append(labels.labels[key])
        if len(self.clips) < len(listed):
            print_log(f'{self.name} split {split_id} {split}: {len(listed) - len(self.clips)} of '
                      f'{len(listed)} listed clips have no privacy labels in {self.annotations} '
                      f'and are left out (bench datasets check lists them)', logger='current',
                      level=logging.WARNING)
        if not self.clips:
            raise ValueError(f'{self.name} split {split_id} {split}: no listed clip has privacy '
                             f'labels in {self.annotations}: is it the {FILE_NAMES[self.name]}?')

        if decoder == 'decord':
            try:
                import decord  # noqa: F401
            except ImportError:
                decoder = 'pyav'
        self._decoder = _Decoder(self.index.layout, decoder, filename_tmpl, start_index)
        self._paths = [self.index.path(c) for c in self.clips]
        self._frame_counts: dict[int, int] = {}

        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.aux_short_side = aux_short_side
        self._aux_models: dict = {}
        self._aux_configs = {}
        if 'depth' in self.aux_channels:
            from benchmark.datasets.depth_model import check_depth_config
            self._aux_configs['depth'] = check_depth_config(depth)
        if 'mask' in self.aux_channels:
            from benchmark.datasets.person_regions import check_person_config
            self._aux_configs['mask'] = check_person_config(person)
        self._last_aux: tuple[int, dict] | None = None

        if preflight:
            self._preflight()

    def _preflight(self) -> None:
        _, missing = present_clips(self.index, self.clips)
        check = f'run `bench datasets check {self.name} --data-root {self.index.data_root}`'
        where = f'{self.name} split {self.split_id} {self.split}'
        if missing:
            shown = ', '.join(c.name for c in missing[:5])
            more = f' and {len(missing) - 5} more' if len(missing) > 5 else ''
            raise FileNotFoundError(
                f'{where}: {len(missing)} of {len(self.clips)} clips are missing under '
                f'{self.index.video_root}: {shown}{more}; {check}')
        from benchmark.datasets.check import undecodable_clips
        d = self._decoder
        bad = undecodable_clips(self.name, {c.name: p for c, p in zip(self.clips, self._paths)},
                                d.layout, d.backend, d.filename_tmpl, d.start_index, self.cache_dir)
        if not bad:
            return
        names = list(bad)
        listing = ', '.join(names[:3]) + (f' and {len(names) - 3} more' if len(names) > 3 else '')
        if self.on_corrupt == 'refuse' or len(bad) == len(self.clips):
            raise RuntimeError(
                f'{where}: {len(bad)} of {len(self.clips)} clips do not decode: {listing} '
                f'({names[0]}: {bad[names[0]]}); {check} for the list, replace them, or leave them '
                f"out with --cfg-options dataset.source.on_corrupt=skip")
        keep = [i for i, c in enumerate(self.clips) if c.name not in bad]
        self.clips = [self.clips[i] for i in keep]
        self._labels = [self._labels[i] for i in keep]
        self._paths = [self._paths[i] for i in keep]
        print_log(f'{where}: {len(bad)} clips that do not decode are left out (on_corrupt=skip), '
                  f'{len(self.clips)} remain: {listing}', logger='current', level=logging.WARNING)

    # --- the SOURCE interface of benchmark.datasets.clips ---
    def __len__(self) -> int:
        return len(self.clips)

    def num_frames(self, i: int) -> int:
        if i not in self._frame_counts:
            self._frame_counts[i] = self._decoder.num_frames(self._paths[i])
        return self._frame_counts[i]

    def read(self, i: int, frame_indices) -> np.ndarray:
        try:
            frames = self._decoder.read(self._paths[i], frame_indices)
        except Exception as e:  # noqa: BLE001 - whatever the decoder raises, name the file
            first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
            raise RuntimeError(f'{self.name}: {self._paths[i]} does not decode ({first}); run `bench '
                               f'datasets check {self.name} --data-root {self.index.data_root}`') from None
        if not self.aux_channels:
            return frames
        h, w = frames.shape[1:3]
        indices = np.asarray(frame_indices)
        maps = []
        for kind in self.aux_channels:
            video_maps = self._aux(kind, i)
            picked = video_maps[np.minimum(indices, len(video_maps) - 1)]
            interpolation = cv2.INTER_LINEAR if kind == 'depth' else cv2.INTER_NEAREST
            maps.append(_resize_maps(picked, h, w, interpolation))
        return np.concatenate([frames, np.stack(maps, axis=-1)], axis=-1)

    def action(self, i: int) -> int:
        return self.clips[i].label

    def privacy(self, i: int) -> list[int]:
        return self._labels[i].tolist()

    def video_id(self, i: int) -> str:
        return self.clips[i].stem

    # --- aux maps, computed once per video and cached ---
    def aux_cache_path(self, kind: str, i: int) -> Path:
        """Cache file of the ``kind`` maps of clip ``i`` (depends on the model's settings)."""
        folder = f'{kind}-{_fingerprint(self._aux_configs[kind])}-{self.aux_short_side}'
        return self.cache_dir / self.name / folder / (self.clips[i].stem + '.npz')

    def _aux_model(self, kind: str):
        if kind not in self._aux_models:  # built lazily: sessions do not pickle into workers
            if kind == 'depth':
                from benchmark.datasets.depth_model import DepthEstimator
                self._aux_models[kind] = DepthEstimator(**self._aux_configs[kind])
            else:
                from benchmark.datasets.person_regions import PersonRegions
                self._aux_models[kind] = PersonRegions(**self._aux_configs[kind])
        return self._aux_models[kind]

    def _aux(self, kind: str, i: int) -> np.ndarray:
        if self._last_aux is not None and self._last_aux[0] == i and kind in self._last_aux[1]:
            return self._last_aux[1][kind]
        path = self.aux_cache_path(kind, i)
        source_size = os.path.getsize(self._paths[i]) if self._paths[i].is_file() else -1
        maps = None
        if path.is_file():
            with np.load(path) as cached:
                if int(cached['source_size']) == source_size:
                    maps = cached['maps']
        if maps is None:
            maps = self._compute_aux(kind, i)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed: two workers on one video must not leave a torn file.
            tmp = path.with_name(f'.{path.stem}.{os.getpid()}.npz')
            np.savez_compressed(tmp, maps=maps, source_size=source_size)
            os.replace(tmp, path)
        if self._last_aux is None or self._last_aux[0] != i:
            self._last_aux = (i, {})
        self._last_aux[1][kind] = maps
        return maps

    def _video_chunks(self, i: int, short_side: int | None, chunk: int = 64):
        """All frames of clip ``i``, shrunk to ``short_side`` if larger, in bounded chunks."""
        n = self.num_frames(i)
        for start in range(0, n, chunk):
            frames = self._decoder.read(self._paths[i], np.arange(start, min(n, start + chunk)))
            yield _shrink(frames, short_side, cv2.INTER_AREA)

    def _compute_aux(self, kind: str, i: int) -> np.ndarray:
        model = self._aux_model(kind)
        if kind == 'depth':
            return model.video_nearness(self._video_chunks(i, self.aux_short_side))
        # Detectors see full-size frames (small people vanish at the cache size).
        masks = np.concatenate([model(chunk) for chunk in self._video_chunks(i, None)])
        return _shrink(masks, self.aux_short_side, cv2.INTER_NEAREST)

    def __getstate__(self):
        return {**self.__dict__, '_aux_models': {}, '_last_aux': None}


@DATASETS.register_module()
class VPUCF101Source(_RealVideoSource):
    __doc__ = ('VP-UCF101: UCF101 videos, official splits, STPrivacy privacy labels.\n'
               + _RealVideoSource.__doc__.split('\n', 1)[1])
    name = 'vp_ucf101'


@DATASETS.register_module()
class VPHMDB51Source(_RealVideoSource):
    __doc__ = ('VP-HMDB51: HMDB51 videos, official splits, STPrivacy privacy labels.\n'
               + _RealVideoSource.__doc__.split('\n', 1)[1])
    name = 'vp_hmdb51'

"""VP-Synth: the embedded, procedurally generated dataset (``vp_synth`` and ``vp_synth_b``).

Stands in for VP-UCF101 / VP-HMDB51 (the RAPrivacy paper's Table 1 data) where real video is
absent, and keeps their structure: an action label per clip and the same 5 binary privacy
labels in the same order (skin_color, face, gender, nudity, relationship), here with
default positive rates taken from VP-HMDB51. Actions are carried by motion (joint
trajectories with random phase, amplitude and tempo), private attributes by appearance, so
anonymizing appearance can remove leakage without removing the action. Most appearance cues
are coarse (colours, hair, shapes); nudity also has a fine one, a weave at the stored frames'
pixel pitch that downsampling and blur remove (``synth_render``). Every clip comes
with a per-frame nearness map and person mask rendered from the same scene (ground truth for
the depth-image, blur and blackening baselines). Domain ``b`` (``vp_synth_b``, for transfer)
changes scenes (outdoor), camera (farther, higher horizon, shakier, noisier) and people
(shirt and trouser palettes, body proportions: ``synth_render.DOMAINS``); the private
attributes keep their cues, so their labels mean the same in both. It has a generator
version of its own (``DOMAIN_B_VERSION``, recorded by ``VPSynthBSource``).

Splits are generated once into a cache folder keyed by a hash of the settings and the
generator version, written to a temporary folder and renamed into place; a manifest with
shapes and CRC-32 checksums is verified on every load, and a cache that fails is
regenerated, never half-read. Per-video seeds make the bytes independent of worker count.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from benchmark import console
from benchmark.datasets.clips import PRIVACY_ATTRIBUTES
from benchmark.datasets.synth_render import (ACTIONS, RENDER_SIZE, apply_weave, render_clip,
                                             style_frame)
from benchmark.registry import DATASETS

# 2: a fine cue for nudity: skin-toned shirts told from bare skin by a pixel-pitch weave
#    (synth_render.apply_weave), which downsampling and blur remove.
GENERATOR_VERSION = 2
# Domain b's own version, so that changing only vp_synth_b leaves vp_synth's caches and the
# data version its runs record (and committed results rest on) as they are.
# 3: a build of its own (torso 0.88, arms 1.10, legs 1.12 times domain a's segment lengths).
DOMAIN_B_VERSION = 3
DEFAULT_PRIVACY_RATES = (0.90, 0.62, 0.92, 0.27, 0.21)
_DOMAINS = {'a': ('vp_synth', 0), 'b': ('vp_synth_b', 1)}
# pretrain: the corpus the target action model starts from (benchmark/target_pretrain.py),
# the same actions by other people in other scenes; never evaluated on.
_SPLITS = {'train': 0, 'test': 1, 'pretrain': 2}
_LABEL_TAG, _TABLE_TAG, _STYLE_TAG, _STYLE_FRAME_TAG = 7001, 7002, 7003, 7004


def generator_version(domain: str) -> int:
    """The version of what generates a domain's videos: ``GENERATOR_VERSION`` for domain a,
    ``DOMAIN_B_VERSION`` for domain b."""
    return DOMAIN_B_VERSION if domain == 'b' else GENERATOR_VERSION


def default_cache_dir() -> Path:
    """``$BENCH_CACHE`` or ``~/.cache/raprivacy-bench``."""
    return Path(os.environ.get('BENCH_CACHE') or Path.home() / '.cache' / 'raprivacy-bench')


# ---------------------------------------------------------------------------- labels


def split_labels(split: str = 'train', domain: str = 'a', per_class: int = 48,
                 privacy_rates=DEFAULT_PRIVACY_RATES, correlation: float = 0.0,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Action and privacy labels of a split, without rendering anything.

    Classes are interleaved (video ``i`` has class ``i % 10``). Each attribute gets exactly
    ``round(rate * N)`` positives. With ``correlation`` c in [0, 1], a video's rank for an
    attribute mixes c times a fixed per-(action, attribute) bit (shared by train and test)
    with 1 - c times chance, so c = 0 is independent and c = 1 ties attributes to actions as
    far as the positive counts allow (which classes lean positive depends on ``seed`` only).

    Args:
        split (str): ``'train'``, ``'test'`` or ``'pretrain'``. Defaults to ``'train'``.
        domain (str): ``'a'`` or ``'b'``. Defaults to ``'a'``.
        per_class (int): Videos per action class. Defaults to 48.
        privacy_rates (sequence of 5 float): Positive rates. Defaults to VP-HMDB51's.
        correlation (float): Action/attribute correlation in [0, 1]. Defaults to 0.0.
        seed (int): Dataset seed. Defaults to 0.

    Returns:
        tuple: ``actions`` int64 ``(N,)`` and ``privacy`` uint8 ``(N, 5)``.
    """
    check_settings(split, domain, per_class=per_class, privacy_rates=privacy_rates, correlation=correlation)
    n = per_class * len(ACTIONS)
    actions = np.arange(n, dtype=np.int64) % len(ACTIONS)
    rates = np.asarray(privacy_rates, np.float64)
    # round(rate * 10) classes lean positive per attribute, so c = 1 keeps the counts.
    table_rng = np.random.default_rng([seed, _TABLE_TAG])
    table = np.zeros((len(ACTIONS), 5), bool)
    for k in range(5):
        table[table_rng.permutation(len(ACTIONS))[:int(round(rates[k] * len(ACTIONS)))], k] = True
    rng = np.random.default_rng([seed, _DOMAINS[domain][1], _SPLITS[split], _LABEL_TAG])
    privacy = np.zeros((n, 5), np.uint8)
    for k in range(5):
        chance = rng.random(n)
        score = correlation * table[actions, k] + (1 - correlation) * chance + 1e-9 * chance
        privacy[np.argsort(-score, kind='stable')[:int(round(rates[k] * n))], k] = 1
    return actions, privacy


def check_settings(split: str = 'train', domain: str = 'a', size: int = RENDER_SIZE,
                   num_frames: int = 32, per_class: int = 1, privacy_rates=None,
                   correlation: float = 0.0) -> None:
    """Raise a one-line ValueError for settings ``VPSynthSource`` cannot generate."""
    privacy_rates = DEFAULT_PRIVACY_RATES if privacy_rates is None else privacy_rates
    if split not in _SPLITS:
        raise ValueError(f"vp_synth: split must be 'train', 'test' or 'pretrain', got {split!r}")
    if domain not in _DOMAINS:
        raise ValueError(f"vp_synth: domain must be 'a' (vp_synth) or 'b' (vp_synth_b), "
                         f'got {domain!r}')
    if int(per_class) < 1:
        raise ValueError(f'vp_synth: videos per class must be >= 1, got {per_class}')
    rates = np.asarray(privacy_rates, np.float64)
    if rates.shape != (5,) or np.any(rates < 0) or np.any(rates > 1):
        raise ValueError(f'vp_synth: privacy_rates must be 5 numbers in [0, 1] '
                         f'({", ".join(PRIVACY_ATTRIBUTES)}), got {privacy_rates!r}')
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f'vp_synth: correlation must be in [0, 1], got {correlation}')
    if not 16 <= int(size) <= RENDER_SIZE:
        raise ValueError(f'vp_synth: size must be in [16, {RENDER_SIZE}] (frames render '
                         f'at {RENDER_SIZE} px and are only shrunk), got {size}')
    if int(num_frames) < 2:
        raise ValueError(f'vp_synth: num_frames must be >= 2, got {num_frames}')


def video_rng(seed: int, domain: str, split: str, index: int) -> np.random.Generator:
    """The generator of one video: its bytes depend on nothing else."""
    return np.random.default_rng([seed, _DOMAINS[domain][1], _SPLITS[split], index])


def render_video(seed: int, domain: str, split: str, index: int, action: int,
                 bits: np.ndarray, num_frames: int, size: int,
                 draw_people: bool = True) -> np.ndarray:
    """Video ``index`` of a split as uint8 ``(T, size, size, 5)``, resized from 112 px; woven
    cloth gets its weave at ``size`` (``synth_render.apply_weave``)."""
    clip, weave = render_clip(video_rng(seed, domain, split, index), domain, ACTIONS[action], bits,
                              num_frames, draw_people=draw_people, weave_maps=True)
    packed = resize_clip(np.concatenate([clip, weave[..., None]], -1), size)  # weave: a 6th map
    return apply_weave(np.ascontiguousarray(packed[..., :5]), packed[..., 5])


def resize_clip(clip: np.ndarray, size: int) -> np.ndarray:
    """Area-resize packed frames; the maps after the nearness (person mask, weave) stay binary
    (255 where they cover half)."""
    if clip.shape[1] == size:
        return clip
    out = np.empty((clip.shape[0], size, size, clip.shape[-1]), np.uint8)
    for f in range(clip.shape[0]):
        out[f, ..., :3] = cv2.resize(clip[f, ..., :3], (size, size), interpolation=cv2.INTER_AREA)
        out[f, ..., 3:] = cv2.resize(clip[f, ..., 3:], (size, size),
                                     interpolation=cv2.INTER_AREA).reshape(size, size, -1)
    out[..., 4:] = np.where(out[..., 4:] >= 128, 255, 0)
    return out


# ---------------------------------------------------------------------------- cache


def _digest(settings: dict) -> str:
    blob = json.dumps(settings, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _crc(path: Path) -> int:
    crc = 0
    with open(path, 'rb') as fh:
        while chunk := fh.read(1 << 24):
            crc = zlib.crc32(chunk, crc)
    return crc


def _verify(folder: Path, settings: dict) -> str | None:
    """Why ``folder`` is not a complete cache for ``settings``, or None when it is."""
    manifest_path = folder / 'manifest.json'
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        return f'manifest unreadable ({err.__class__.__name__})'
    if manifest.get('settings') != settings:
        return 'manifest settings differ'
    for name, info in manifest.get('files', {}).items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != info['bytes']:
            return f'{name} missing or of the wrong size'
        try:
            arr = np.load(path, mmap_mode='r')
        except (OSError, ValueError):
            return f'{name} has a broken header'
        if list(arr.shape) != info['shape'] or str(arr.dtype) != info['dtype']:
            return f'{name} has the wrong shape or dtype'
        del arr
        if _crc(path) != info['crc32']:
            return f'{name} fails its checksum'
    if not manifest.get('files'):
        return 'manifest lists no files'
    return None


def cached_arrays(kind: str, settings: dict, build: Callable[[Path], None],
                  cache_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Memory-mapped arrays of a cache entry, built by ``build(tmp_folder)`` when needed.

    ``build`` writes ``.npy`` files into the temporary folder; the manifest and the rename
    into place happen here, so a reader sees a complete entry or none.
    """
    settings = dict(settings, generator_version=generator_version(settings.get('domain', 'a')),
                    kind=kind)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f'{kind}_{_digest(settings)}'
    if folder.exists():
        problem = _verify(folder, settings)
        if problem is None:
            return _open(folder)
        warnings.warn(f'{kind} cache {folder} is unusable ({problem}); regenerating it',
                      stacklevel=2)
        _remove(folder)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f'cannot create the dataset cache {root} ({err}); set BENCH_CACHE or '
                      f'cache_dir to a writable folder') from err
    tmp = Path(tempfile.mkdtemp(prefix=f'.{folder.name}.', dir=root))
    try:
        build(tmp)
        files = {}
        for path in sorted(tmp.glob('*.npy')):
            arr = np.load(path, mmap_mode='r')
            files[path.name] = dict(shape=list(arr.shape), dtype=str(arr.dtype),
                                    bytes=path.stat().st_size, crc32=_crc(path))
            del arr
        (tmp / 'manifest.json').write_text(json.dumps(dict(settings=settings, files=files),
                                                      indent=1))
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished the same entry first: use theirs if it is sound.
            if _verify(folder, settings) is not None:
                raise
            _remove(tmp)
    except BaseException:
        _remove(tmp)
        raise
    return _open(folder)


def _open(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.load(p, mmap_mode='r') for p in sorted(folder.glob('*.npy'))}


def _remove(folder: Path) -> None:
    # Rename first so no reader can find a half-deleted entry under the real name.
    trash = folder.with_name(f'.trash-{folder.name}-{os.getpid()}-{time.time_ns()}')
    try:
        os.rename(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


# ---------------------------------------------------------------------------- generation


_JOB: dict = {}


def _render_range(bounds: tuple[int, int]) -> int:
    job = _JOB
    frames = np.load(job['path'], mmap_mode='r+')
    for i in range(*bounds):
        frames[i] = render_video(job['seed'], job['domain'], job['split'], i,
                                 int(job['actions'][i]), job['privacy'][i], job['num_frames'],
                                 job['size'])
    frames.flush()
    del frames
    return bounds[1] - bounds[0]


def _generate_split(folder: Path, job: dict, label: str, workers: int) -> None:
    n = len(job['actions'])
    np.save(folder / 'actions.npy', job['actions'])
    np.save(folder / 'privacy.npy', job['privacy'])
    path = folder / 'frames.npy'
    frames = np.lib.format.open_memmap(
        path, mode='w+', dtype=np.uint8,
        shape=(n, job['num_frames'], job['size'], job['size'], 5))
    del frames
    _JOB.clear()
    _JOB.update(job, path=path)
    chunks = [(s, min(s + 8, n)) for s in range(0, n, 8)]
    try:
        with console.current().progress(label, n, 'videos') as bar:
            if workers > 1:
                # Forked workers inherit the job; each writes its own videos into the memmap.
                with multiprocessing.get_context('fork').Pool(workers) as pool:
                    for count in pool.imap_unordered(_render_range, chunks):
                        bar.update(count)
            else:
                for chunk in chunks:
                    bar.update(_render_range(chunk))
    finally:
        _JOB.clear()


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@DATASETS.register_module()
class VPSynthSource:
    """A split of VP-Synth as a clip source (see ``benchmark.datasets.clips``).

    ``read`` returns uint8 ``(T, H, W, 5)``: RGB, nearness (255 = nearest) and person mask
    (255 = person). The split lives in memory-mapped ``.npy`` files, so forked DataLoader
    workers share its pages.

    Args:
        split (str): ``'train'``, ``'test'`` or ``'pretrain'`` (the target model's pretraining
            corpus, as many videos as train). Defaults to ``'train'``.
        domain (str): ``'a'`` (``vp_synth``); domain ``'b'`` is ``VPSynthBSource``'s.
            Defaults to ``'a'``.
        size (int): Stored frame side; frames render at 112 and are area-resized when
            smaller. Defaults to 112.
        num_frames (int): Frames per video. Defaults to 32.
        train_per_class (int): Training videos per action class. Defaults to 48.
        test_per_class (int): Test videos per action class. Defaults to 16.
        privacy_rates (sequence of 5 float): Positive rates of skin_color, face, gender,
            nudity, relationship. Defaults to VP-HMDB51's (0.90, 0.62, 0.92, 0.27, 0.21).
        correlation (float): Action/attribute correlation in [0, 1] (see
            ``split_labels``). Defaults to 0.0.
        seed (int): Dataset seed, independent of any training seed. Defaults to 0.
        cache_dir (str, optional): Cache root; ``None`` uses ``$BENCH_CACHE`` or
            ``~/.cache/raprivacy-bench``. Defaults to None.
    """

    classes = ACTIONS
    attributes = PRIVACY_ATTRIBUTES
    aux_channels = ('depth', 'mask')
    # Rendered with the frames, not estimated: readability is measured against them.
    aux_is_truth = True
    # Runs record it (tag bench.data_version); the report never averages across versions.
    data_version = f'generator {GENERATOR_VERSION}'
    _domain = 'a'  # the domain this class generates, whose version it records

    def __init__(self, split: str = 'train', domain: str = 'a', size: int = 112,
                 num_frames: int = 32, train_per_class: int = 48, test_per_class: int = 16,
                 privacy_rates=DEFAULT_PRIVACY_RATES, correlation: float = 0.0, seed: int = 0,
                 cache_dir: str | Path | None = None) -> None:
        per_class = test_per_class if split == 'test' else train_per_class
        check_settings(split, domain, size, num_frames, per_class, privacy_rates, correlation)
        if domain != self._domain:
            other = next(c for c in (VPSynthSource, VPSynthBSource) if c._domain == domain)
            raise ValueError(f"vp_synth: domain {domain!r} is generated by type='{other.__name__}' "
                             f'(its data version: {other.data_version}), not {type(self).__name__}')
        self.split, self.domain = split, domain
        self.name = _DOMAINS[domain][0]
        self.size, self.frames_per_video = int(size), int(num_frames)
        settings = dict(split=split, domain=domain, size=self.size,
                        num_frames=self.frames_per_video, per_class=int(per_class),
                        privacy_rates=[float(r) for r in privacy_rates],
                        correlation=float(correlation), seed=int(seed))
        self._arrays = cached_arrays(f'{self.name}_{split}', settings, self._builder(settings),
                                     cache_dir)
        self.cache_folder = Path(self._arrays['frames'].filename).parent
        self._actions = np.asarray(self._arrays['actions'])
        self._privacy = np.asarray(self._arrays['privacy'])

    def _builder(self, settings: dict) -> Callable[[Path], None]:
        def build(folder: Path) -> None:
            actions, privacy = split_labels(settings['split'], settings['domain'],
                                            settings['per_class'], settings['privacy_rates'],
                                            settings['correlation'], settings['seed'])
            job = dict(actions=actions, privacy=privacy, seed=settings['seed'],
                       domain=settings['domain'], split=settings['split'],
                       num_frames=settings['num_frames'], size=settings['size'])
            _generate_split(folder, job, f'data {self.name} {self.split}', _workers())
        return build

    def __getstate__(self) -> dict:
        # Pickle the paths, not the mapped bytes: workers re-map the same files.
        state = dict(self.__dict__)
        state['_arrays'] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._arrays = _open(self.cache_folder)

    def __len__(self) -> int:
        return len(self._actions)

    def num_frames(self, i: int) -> int:
        return self.frames_per_video

    def read(self, i: int, frame_indices) -> np.ndarray:
        return np.asarray(self._arrays['frames'][i][np.asarray(frame_indices)])

    def action(self, i: int) -> int:
        return int(self._actions[i])

    def privacy(self, i: int) -> tuple[int, ...]:
        return tuple(int(b) for b in self._privacy[i])

    def video_id(self, i: int) -> str:
        return f'{self.name}_{self.split}_{i:04d}'


# ---------------------------------------------------------------------------- style images


@DATASETS.register_module()
class VPSynthBSource(VPSynthSource):
    """VP-Synth's second domain, ``vp_synth_b``: other scenes, camera and people, for transfer.

    A class of its own because a run records the data version of its source's class and
    domain b's videos have a version of their own (``DOMAIN_B_VERSION``). Args as
    ``VPSynthSource``, but ``domain`` defaults to, and must be, ``'b'``.
    """

    data_version = f'generator {DOMAIN_B_VERSION}'
    _domain = 'b'

    def __init__(self, split: str = 'train', domain: str = 'b', **kwargs) -> None:
        super().__init__(split, domain, **kwargs)

def vp_synth_style_images(num: int = 64, size: int = 112, seed: int = 0,
                          colormap: str | None = None,
                          cache_dir: str | Path | None = None) -> np.ndarray:
    """Depth renderings of other synthetic people, in the manner of SBU Kinect depth frames.

    RAPrivacy transfers frames toward the style of Kinect depth images (the SBU Kinect
    Interaction set: one or two people in a room, grey nearness, sensor holes). These are
    drawn from seeds disjoint from every dataset video, so no style image shows a dataset
    person.

    Args:
        num (int): Number of images. Defaults to 64.
        size (int): Image side in pixels. Defaults to 112.
        seed (int): Seed of the set. Defaults to 0.
        colormap (str, optional): ``None`` for grey, ``'jet'`` for OpenCV's jet map.
            Defaults to None.
        cache_dir (str, optional): Cache root, as for ``VPSynthSource``. Defaults to None.

    Returns:
        np.ndarray: uint8 ``(num, size, size, 3)``.
    """
    if colormap not in (None, 'jet'):
        raise ValueError(f"vp_synth_style_images: colormap must be None or 'jet', got {colormap!r}")
    if int(num) < 1 or int(size) < 16:
        raise ValueError(f'vp_synth_style_images: need num >= 1 and size >= 16, got {num}, {size}')
    settings = dict(num=int(num), size=int(size), seed=int(seed), colormap=colormap)

    def build(folder: Path) -> None:
        out = np.empty((num, size, size, 3), np.uint8)
        for i in range(num):
            grey = style_frame(np.random.default_rng([seed, _STYLE_TAG, i]), size)
            out[i] = (cv2.cvtColor(cv2.applyColorMap(grey, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
                      if colormap == 'jet' else np.repeat(grey[..., None], 3, -1))
        np.save(folder / 'images.npy', out)

    return np.asarray(cached_arrays('vp_synth_style', settings, build, cache_dir)['images'])


def vp_synth_style_frames(num: int = 64, size: int = 112, seed: int = 0,
                          cache_dir: str | Path | None = None) -> np.ndarray:
    """Frames of other synthetic people with their maps, for the style sets that render from
    them (``raprivacy/styles.py``: edges, silhouettes, thermal-like, natural RGB).

    Drawn, like ``vp_synth_style_images``, from seeds disjoint from every dataset video: one
    frame of a clip of a random action, one or two people, domain ``a``.

    Args:
        num (int): Number of frames. Defaults to 64.
        size (int): Frame side in pixels. Defaults to 112.
        seed (int): Seed of the set. Defaults to 0.
        cache_dir (str, optional): Cache root, as for ``VPSynthSource``. Defaults to None.

    Returns:
        np.ndarray: uint8 ``(num, size, size, 5)``: RGB, nearness (white = near), person mask.
    """
    if int(num) < 1 or int(size) < 16:
        raise ValueError(f'vp_synth_style_frames: need num >= 1 and size >= 16, got {num}, {size}')
    settings = dict(num=int(num), size=int(size), seed=int(seed))

    def build(folder: Path) -> None:
        out = np.empty((num, size, size, 5), np.uint8)
        for i in range(num):
            rng = np.random.default_rng([seed, _STYLE_FRAME_TAG, i])
            bits = (rng.random(5) < 0.5).astype(np.uint8)
            bits[4] = rng.random() < 0.7  # two people in most, as in the depth style set
            clip = render_clip(rng, 'a', ACTIONS[int(rng.integers(len(ACTIONS)))], bits, 8, size=size)
            out[i] = clip[int(rng.integers(8))]
        np.save(folder / 'frames.npy', out)

    return np.asarray(cached_arrays('vp_synth_style_frames', settings, build, cache_dir)['frames'])


# ---------------------------------------------------------------------------- preview


def write_preview(out_dir: str | Path, domain: str = 'a', size: int = 112, num_clips: int = 10,
                  frames_shown: int = 6, gif_clips: int = 4, num_frames: int = 32,
                  test_per_class: int = 16, privacy_rates=DEFAULT_PRIVACY_RATES,
                  seed: int = 0) -> list[Path]:
    """Write a labelled frame grid PNG and an animated GIF of test clips.

    The clips are the first ``num_clips`` of the test split (one per action class when
    ``num_clips`` is 10), rendered directly, byte-identical to the cached ones.

    Args:
        out_dir (str | Path): Folder to write into (created).
        domain (str): ``'a'`` or ``'b'``. Defaults to ``'a'``.
        size (int): Frame side. Defaults to 112.
        num_clips (int): Rows of the grid. Defaults to 10.
        frames_shown (int): Frames per row. Defaults to 6.
        gif_clips (int): Clips side by side in the GIF. Defaults to 4.
        num_frames (int): Frames per video. Defaults to 32.
        test_per_class (int): Test videos per class of the split shown. Defaults to 16.
        privacy_rates (sequence of 5 float): As for ``VPSynthSource``. Defaults to
            VP-HMDB51's.
        seed (int): Dataset seed. Defaults to 0.

    Returns:
        list[Path]: The PNG and the GIF.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image, ImageDraw

    name = _DOMAINS[domain][0] if domain in _DOMAINS else None
    if name is None:
        raise ValueError(f"write_preview: domain must be 'a' or 'b', got {domain!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = max(num_clips, gif_clips)
    actions, privacy = split_labels('test', domain, test_per_class, privacy_rates, seed=seed)
    if count > len(actions):
        raise ValueError(f'write_preview: {count} clips asked, the test split has {len(actions)}')
    clips = [render_video(seed, domain, 'test', i, int(actions[i]), privacy[i], num_frames, size)
             for i in range(count)]

    def caption(i: int) -> str:
        bits = ' '.join(f'{a[:4]}={b}' for a, b in zip(PRIVACY_ATTRIBUTES, privacy[i]))
        return f'{ACTIONS[actions[i]]}\n{bits}'

    shown = np.linspace(0, num_frames - 1, frames_shown).round().astype(int)
    rows = num_clips + 2
    fig, axes = plt.subplots(rows, frames_shown, figsize=(1.6 * frames_shown + 2.2, 1.6 * rows))
    axes = np.atleast_2d(axes)
    for r in range(rows):
        clip = clips[min(r, num_clips - 1) if r < num_clips else 0]
        for c, f in enumerate(shown):
            ax = axes[r, c]
            if r < num_clips:
                ax.imshow(clip[f, ..., :3])
            else:
                ax.imshow(clip[f, ..., 3 if r == num_clips else 4], cmap='gray', vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f'frame {f}', fontsize=8)
        label = (caption(r) if r < num_clips
                 else f'{ACTIONS[actions[0]]}\n' + ('depth (white = near)' if r == num_clips
                                                    else 'person mask'))
        axes[r, 0].set_ylabel(label, rotation=0, ha='right', va='center', fontsize=7)
    fig.suptitle(f'{name} (test split, seed {seed}, {size} px): action, privacy bits '
                 f'[{", ".join(PRIVACY_ATTRIBUTES)}]', fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    png = out_dir / f'{name}_preview.png' if domain == 'b' else out_dir / 'vp_synth_preview.png'
    fig.savefig(png, dpi=110)
    plt.close(fig)

    scale = max(1, 224 // size)
    frames = []
    for f in range(num_frames):
        tiles = []
        for i in range(gif_clips):
            tile = Image.fromarray(clips[i][f, ..., :3]).resize((size * scale, size * scale),
                                                                Image.NEAREST)
            canvas = Image.new('RGB', (size * scale, size * scale + 14), (255, 255, 255))
            canvas.paste(tile, (0, 14))
            ImageDraw.Draw(canvas).text((2, 1), ACTIONS[actions[i]], fill=(0, 0, 0))
            tiles.append(canvas)
        strip = Image.new('RGB', (sum(t.width for t in tiles), tiles[0].height))
        for k, tile in enumerate(tiles):
            strip.paste(tile, (k * tile.width, 0))
        frames.append(strip)
    gif = png.with_suffix('.gif')
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return [png, gif]

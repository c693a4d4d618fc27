"""Style image sets for the style transfer module (RAPrivacy Sec. 3.1 and 4.1).

The paper draws style images at random from a large set of depth images (SBU Kinect). Which set
is a config choice (``anonymizer.style_set``), so the style ablation can swap it. Every set
returns ``uint8 (K, H, W, 3)`` RGB images of side ``size``:

- ``VPSynthDepthStyles`` (default): depth renderings from the VP-Synth generator.
- ``VPSynthEdgeStyles``, ``VPSynthSilhouetteStyles``, ``VPSynthThermalStyles``,
  ``VPSynthRGBStyles``: edge maps, person silhouettes, a thermal-like colour map and natural RGB
  frames, each rendered from the generator's frames, nearness and person masks (other people
  than any dataset video's); the alternatives of the style ablation (``bench sweep --grid
  style=depth,edges,silhouette,thermal,rgb``).
- ``FolderStyles``: every image of a folder (e.g. SBU Kinect depth frames, or any images).
- ``ImageStyles``: images given as an array (programmatic use and tests).
"""
from __future__ import annotations

import abc
from pathlib import Path

import cv2
import numpy as np
from mmengine.registry import Registry

from benchmark.registry import closest, UnknownNameError

STYLE_SETS = Registry('style set', scope='benchmark', locations=['raprivacy.styles'])
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff')
#: Short names of the style sets (``bench sweep --grid style=depth,...``, ``bench styles``).
STYLE_NAMES = {'depth': 'VPSynthDepthStyles', 'edges': 'VPSynthEdgeStyles',
               'silhouette': 'VPSynthSilhouetteStyles', 'thermal': 'VPSynthThermalStyles',
               'rgb': 'VPSynthRGBStyles'}


def build_style_images(cfg: dict) -> np.ndarray:
    """The ``uint8 (K, H, W, 3)`` images of a style set config."""
    cfg = dict(cfg)
    name = cfg.get('type')
    if STYLE_SETS.get(name) is None:
        raise UnknownNameError(closest(str(name), list(STYLE_SETS.module_dict), 'style set'))
    images = as_rgb_uint8(STYLE_SETS.build(cfg).images())
    if len(images) == 0:
        raise ValueError(f'style set {name} gave no images: check anonymizer.style_set')
    return images


def as_rgb_uint8(images: np.ndarray) -> np.ndarray:
    """Bring ``(K, H, W)``, ``(K, H, W, 1)`` or ``(K, H, W, 3)`` images to ``uint8 (K, H, W, 3)``."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f'style images must be (K, H, W[, 1|3]), got shape {images.shape}')
    if images.dtype != np.uint8:
        images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return np.array(images, dtype=np.uint8, order='C', copy=True)  # writable, owned


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and crop the centre square."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y, x = (nh - size) // 2, (nw - size) // 2
    return image[y:y + size, x:x + size]


class _VPSynthStyles:
    """A style set the VP-Synth generator draws.

    Args:
        num (int): Number of style images K. Defaults to 64.
        size (int): Side of the square images. Defaults to 112.
        seed (int): Generator seed. Defaults to 0.
    """

    def __init__(self, num: int = 64, size: int = 112, seed: int = 0) -> None:
        self.num, self.size, self.seed = num, size, seed


@STYLE_SETS.register_module()
class VPSynthDepthStyles(_VPSynthStyles):
    """Depth images rendered by the VP-Synth generator (the default style set)."""

    def images(self) -> np.ndarray:
        from benchmark.datasets.vp_synth import vp_synth_style_images  # the generator is optional here
        return vp_synth_style_images(self.num, self.size, self.seed)


class _VPSynthFrameStyles(_VPSynthStyles, abc.ABC):
    """Style images rendered from VP-Synth frames with their nearness and person mask; a
    subclass gives ``render(rgb, near, person)`` for one frame."""

    def images(self) -> np.ndarray:
        from benchmark.datasets.vp_synth import vp_synth_style_frames
        frames = vp_synth_style_frames(self.num, self.size, self.seed)
        return np.stack([self.render(f[..., :3], f[..., 3], f[..., 4] > 0) for f in frames])

    @abc.abstractmethod
    def render(self, rgb: np.ndarray, near: np.ndarray, person: np.ndarray) -> np.ndarray:
        """One style image, ``uint8 (H, W)`` or ``(H, W, 3)``, from one frame's maps."""


@STYLE_SETS.register_module()
class VPSynthEdgeStyles(_VPSynthFrameStyles):
    """Edge maps: white Canny edges of the frame and of its nearness, on black.

    Outlines of the people and the room: no texture, no colour.
    """

    def render(self, rgb, near, person):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return cv2.Canny(grey, 60, 150) | cv2.Canny(near, 20, 60)


@STYLE_SETS.register_module()
class VPSynthSilhouetteStyles(_VPSynthFrameStyles):
    """Person silhouettes: the person mask, white on black (shape and pose only)."""

    def render(self, rgb, near, person):
        return np.where(person, 255, 0).astype(np.uint8)


@STYLE_SETS.register_module()
class VPSynthThermalStyles(_VPSynthFrameStyles):
    """Thermal-like images: people warm, the room cool, in OpenCV's inferno colour map.

    The room keeps a faint gradient of nearness; the whole is blurred as a thermal camera's
    optics blur.
    """

    def render(self, rgb, near, person):
        heat = 0.25 * near.astype(np.float32) + 190.0 * person
        sigma = max(1.0, self.size / 112)
        heat = cv2.GaussianBlur(heat, (0, 0), sigma)
        heat = np.clip(heat, 0, 255).astype(np.uint8)
        return cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


@STYLE_SETS.register_module()
class VPSynthRGBStyles(_VPSynthFrameStyles):
    """Natural RGB frames of other synthetic people (the style a plain photo gives)."""

    def render(self, rgb, near, person):
        return rgb


@STYLE_SETS.register_module()
class FolderStyles:
    """Every image file under a folder, sorted by path; 16-bit depth frames are scaled to 8 bits.

    Args:
        root (str): The folder (searched recursively).
        num (int, optional): Keep this many, drawn with ``seed``; ``None`` keeps all.
            Defaults to None.
        size (int): Side of the square images. Defaults to 112.
        seed (int): Seed of the draw. Defaults to 0.
    """

    def __init__(self, root: str, num: int | None = None, size: int = 112, seed: int = 0) -> None:
        self.root, self.num, self.size, self.seed = Path(root).expanduser(), num, size, seed

    def images(self) -> np.ndarray:
        if not self.root.is_dir():
            raise FileNotFoundError(f'style folder {self.root} does not exist: set '
                                    f'anonymizer.style_set.root to a folder of images')
        paths = sorted(p for p in self.root.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f'style folder {self.root} holds no {"/".join(IMAGE_SUFFIXES)} '
                                    f'images: set anonymizer.style_set.root to a folder of images')
        if self.num is not None and self.num < len(paths):
            keep = np.random.default_rng(self.seed).choice(len(paths), self.num, replace=False)
            paths = [paths[i] for i in sorted(keep)]
        return np.stack([self._read(p) for p in paths])

    def _read(self, path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f'style image {path} could not be read: remove it from '
                             f'anonymizer.style_set.root or convert it to PNG')
        if image.dtype != np.uint8:  # e.g. 16-bit Kinect depth: stretch to the image's own range
            image = image.astype(np.float32)
            image = 255.0 * (image - image.min()) / max(float(image.max() - image.min()), 1e-6)
            image = image.astype(np.uint8)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return fit_square(image, self.size)


def write_preview(name: str, out_dir: str | Path, num: int = 16, size: int = 112,
                  root: str | None = None) -> Path:
    """A grid of a style set's first ``num`` images, ``<out_dir>/styles_<name>.png``.

    Args:
        name (str): A short name of ``STYLE_NAMES``, or ``folder`` (with ``root``).
        out_dir (str | Path): Folder to write into (created).
        num (int): Images shown. Defaults to 16.
        size (int): Image side. Defaults to 112.
        root (str, optional): The folder of images, for ``folder``. Defaults to None.
    """
    if name == 'folder':
        if not root:
            raise ValueError('the folder style set needs its folder: --root PATH')
        cfg = dict(type='FolderStyles', root=root, num=num, size=size)
    elif name in STYLE_NAMES:
        cfg = dict(type=STYLE_NAMES[name], num=num, size=size)
    else:
        raise UnknownNameError(closest(name, [*STYLE_NAMES, 'folder'], 'style'))
    images = build_style_images(cfg)[:num]
    cols = min(8, len(images))
    rows = -(-len(images) // cols)
    grid = np.zeros((rows * (size + 2), cols * (size + 2), 3), np.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        grid[r * (size + 2):r * (size + 2) + size, c * (size + 2):c * (size + 2) + size] = image
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f'styles_{name}.png'
    cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return path


@STYLE_SETS.register_module()
class ImageStyles:
    """Style images given directly.

    Args:
        images (array-like): ``(K, H, W[, 1|3])`` images, uint8 or in [0, 255].
        size (int, optional): Resize to this square side; ``None`` keeps them. Defaults to None.
    """

    def __init__(self, images, size: int | None = None) -> None:
        self._images = as_rgb_uint8(images)
        self.size = size

    def images(self) -> np.ndarray:
        if self.size is None:
            return self._images
        return np.stack([fit_square(im, self.size) for im in self._images])

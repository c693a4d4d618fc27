"""Privacy labels of VP-UCF101 and VP-HMDB51, read safely, and clip-name matching.

The labels are the pickles distributed with STPrivacy (Li et al., ICCV 2023,
github.com/ming1993li/stprivacy, ``annotations/``): a dict from ``"<Class>/<clip>.mp4"`` to
an int64 array of shape ``(1, 5)`` whose columns are, as inferred from per-class positive
rates, ``[skin_color, face, gender, nudity, relationship]``.

Unpickling runs code, so :class:`RestrictedUnpickler` admits only the three numpy globals
such arrays need and refuses everything else before it can run.

The pickle's names do not always equal the names on disk: keys end in ``.mp4`` while the
videos are ``.avi``; copies of the HMDB51 split lists drop characters such as ``#`` and
``!``; UCF101 has folders ``HandstandPushups`` holding ``v_HandStandPushups_*`` files, and
tools that rename one or the other exist. :class:`LabelIndex` matches exactly first, then
ignoring case, then ignoring every character that is not a letter or digit, and takes a
looser match only when it is unambiguous.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import re
import warnings
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError

#: sha256 of the files in the STPrivacy repository at commit c64b6dea.
KNOWN_SHA256 = {
    'vp_ucf101': '0f5ba5553b26ccede4b2aa515161a5d4cadcd96ceffa309da2fb7342120a769f',
    'vp_hmdb51': '233f26185ed3b6aa884a1030985e16ced3478fe928ea61a3e292cd26d1380547',
}
FILE_NAMES = {
    'vp_ucf101': 'ucf101_privacy_attribute_label.pickle',
    'vp_hmdb51': 'hmdb51_privacy_attribute_label.pickle',
}
SOURCE_URL = 'https://github.com/ming1993li/stprivacy (annotations/)'

# numpy 1.x pickles name numpy.core; numpy 2.x moved it to numpy._core and warns on the old
# path, so both resolve to whichever module this numpy has.
_ALLOWED = {
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy', 'ndarray'),
    ('numpy', 'dtype'),
}


class UnsafePickleError(BenchError, pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy-array allowlist: refused in one line by
    every command (``bench run``, ``bench datasets check``), never reported as a data finding."""


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds numpy arrays and plain containers, and nothing else.

    Args:
        file: Binary file object to read.
        source (str): Name of the file, for error messages. Defaults to ``'<pickle>'``.
    """

    def __init__(self, file, source: str = '<pickle>') -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f'{self.source}: refusing to load global {module}.{name}; this file is not a '
                f'privacy-label pickle (only numpy arrays are allowed); get the original from '
                f'{SOURCE_URL}')
        if name == '_reconstruct':
            try:
                from numpy._core import multiarray  # numpy >= 2
            except ImportError:
                from numpy.core import multiarray
            return multiarray._reconstruct
        return getattr(np, name)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_privacy_labels(path: str | Path, dataset: str | None = None) -> dict[str, np.ndarray]:
    """Read a label pickle into ``{"<Class>/<clip stem>": int64 array (5,)}``.

    Args:
        path (str | Path): The pickle.
        dataset (str, optional): ``'vp_ucf101'`` or ``'vp_hmdb51'``: compare the file's sha256
            with the published one and warn when it differs. Defaults to None (no comparison).

    Returns:
        dict: Labels keyed by class folder and clip name without extension.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'privacy labels {path} do not exist: download '
                                f'{FILE_NAMES.get(dataset, "the label pickle")} from {SOURCE_URL}')
    data = path.read_bytes()
    if dataset in KNOWN_SHA256:
        digest = hashlib.sha256(data).hexdigest()
        if digest != KNOWN_SHA256[dataset]:
            warnings.warn(f'{path}: sha256 {digest[:12]}... differs from the published '
                          f'{FILE_NAMES[dataset]} ({KNOWN_SHA256[dataset][:12]}...); '
                          f'labels may not match the paper', stacklevel=2)
    try:
        raw = RestrictedUnpickler(io.BytesIO(data), source=str(path)).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or not a pickle at all
        raise ValueError(f'{path}: not a readable privacy-label pickle ({e})') from None
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected a dict of clip name -> labels, got {type(raw).__name__}')
    labels = {}
    for key, value in raw.items():
        arr = np.asarray(value)
        if not isinstance(key, str) or arr.size != 5 or not np.isin(arr, (0, 1)).all():
            raise ValueError(f'{path}: entry {key!r} is not a clip name with 5 binary labels '
                             f'(got shape {arr.shape})')
        labels[strip_extension(key)] = arr.reshape(5).astype(np.int64)
    return labels


def strip_extension(name: str) -> str:
    """``"Class/clip.mp4"`` -> ``"Class/clip"``; names without a video extension unchanged."""
    return re.sub(r'\.(mp4|avi|webm|mkv)$', '', name, flags=re.IGNORECASE)


def _loose(key: str) -> str:
    return re.sub(r'[^0-9a-z/]', '', key.casefold())


class LabelIndex:
    """Look up privacy labels by clip name, tolerating the known name differences.

    Args:
        labels (dict): ``{"<Class>/<clip stem>": labels}`` as from :func:`load_privacy_labels`.
    """

    def __init__(self, labels: dict[str, np.ndarray]) -> None:
        self.labels = labels
        self._by_case = self._unique(str.casefold)
        self._by_loose = self._unique(_loose)

    def _unique(self, fold) -> dict[str, str]:
        seen: dict[str, str | None] = {}
        for key in self.labels:
            folded = fold(key)
            seen[folded] = None if folded in seen else key  # None marks an ambiguous name
        return {k: v for k, v in seen.items() if v is not None}

    def match(self, name: str) -> str | None:
        """The label key for clip ``"<Class>/<clip>[.ext]"``, or None when it has none."""
        name = strip_extension(name)
        if name in self.labels:
            return name
        return self._by_case.get(name.casefold()) or self._by_loose.get(_loose(name))

    def __len__(self) -> int:
        return len(self.labels)

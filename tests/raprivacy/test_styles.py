"""RAPrivacy's registered style sets: every short name of `--grid style=...` renders from
VP-Synth's frames, nearness and masks, and has a preview."""
from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import UnknownNameError
from raprivacy.styles import STYLE_NAMES, STYLE_SETS, build_style_images, write_preview


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv('BENCH_CACHE', str(tmp_path / 'cache'))


def test_five_style_sets_are_registered():
    assert list(STYLE_NAMES) == ['depth', 'edges', 'silhouette', 'thermal', 'rgb']
    assert all(STYLE_SETS.get(kind) is not None for kind in STYLE_NAMES.values())


@pytest.mark.parametrize('name', list(STYLE_NAMES))
def test_style_set_renders_distinct_images(name):
    images = build_style_images(dict(type=STYLE_NAMES[name], num=4, size=32, seed=0))
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert images.std() > 5, name  # not a constant image
    assert not np.array_equal(images[0], images[1])
    again = build_style_images(dict(type=STYLE_NAMES[name], num=4, size=32, seed=0))
    assert np.array_equal(images, again)  # from the cache, the same


def test_style_sets_differ_and_look_as_named():
    sets = {n: build_style_images(dict(type=t, num=4, size=32)).astype(int) for n, t in STYLE_NAMES.items()}
    names = list(sets)
    assert all(not np.array_equal(sets[a], sets[b]) for i, a in enumerate(names) for b in names[i + 1:])
    assert set(np.unique(sets['silhouette'])) <= {0, 255}
    assert set(np.unique(sets['edges'])) <= {0, 255} and (sets['edges'] == 255).mean() < 0.3
    grey = ('depth', 'edges', 'silhouette')
    assert all((sets[n][..., 0] == sets[n][..., 2]).all() for n in grey)
    assert (sets['thermal'][..., 0] != sets['thermal'][..., 2]).any()  # a colour map


def test_preview_writes_a_grid(tmp_path):
    import cv2
    path = write_preview('thermal', tmp_path, num=4, size=32)
    assert path == tmp_path / 'styles_thermal.png'
    assert cv2.imread(str(path)).shape == (34, 4 * 34, 3)
    with pytest.raises(UnknownNameError, match="did you mean 'thermal'"):
        write_preview('thermla', tmp_path)
    with pytest.raises(ValueError, match='--root'):
        write_preview('folder', tmp_path)

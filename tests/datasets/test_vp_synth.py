"""VP-Synth: determinism, shapes, label rates, cache robustness, depth/mask alignment."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from benchmark.datasets.clips import PRIVACY_ATTRIBUTES, ClipDataset
from benchmark.datasets.vp_synth import (DEFAULT_PRIVACY_RATES, VPSynthBSource, VPSynthSource,
                                         render_video, split_labels, vp_synth_style_images,
                                         write_preview)
from benchmark.registry import DATASETS

SMALL = dict(size=32, num_frames=16, train_per_class=2, test_per_class=1)


def _source(cache, **kw):
    kind = VPSynthBSource if kw.get('domain') == 'b' else VPSynthSource
    return kind(cache_dir=cache, **{**SMALL, **kw})


def test_shapes_dtypes_and_interface(tmp_path):
    src = DATASETS.build(dict(type='VPSynthSource', cache_dir=str(tmp_path), **SMALL))
    assert src.name == 'vp_synth' and len(src) == 20
    assert len(src.classes) == 10 and src.attributes == PRIVACY_ATTRIBUTES
    assert src.aux_channels == ('depth', 'mask')
    clip = src.read(3, [0, 5, 15])
    assert clip.shape == (3, 32, 32, 5) and clip.dtype == np.uint8
    assert set(np.unique(clip[..., 4])) <= {0, 255}
    assert src.num_frames(0) == 16
    assert sorted(src.action(i) for i in range(20)) == sorted(list(range(10)) * 2)
    assert all(len(src.privacy(i)) == 5 for i in range(20))
    assert len({src.video_id(i) for i in range(20)}) == 20


def test_same_seed_same_bytes_and_worker_independent(tmp_path):
    a = _source(tmp_path / 'one')
    b = _source(tmp_path / 'two')
    assert np.array_equal(np.asarray(a._arrays['frames']), np.asarray(b._arrays['frames']))
    # A single video rendered alone equals the one in the split (what the preview relies on).
    alone = render_video(0, 'a', 'train', 7, a.action(7), np.array(a.privacy(7)), 16, 32)
    assert np.array_equal(alone, a.read(7, range(16)))
    other = _source(tmp_path / 'three', seed=1)
    assert not np.array_equal(np.asarray(a._arrays['frames']),
                              np.asarray(other._arrays['frames']))


def test_label_base_rates_and_independence():
    actions, privacy = split_labels('train', 'a', per_class=48)
    assert np.allclose(privacy.mean(0), DEFAULT_PRIVACY_RATES, atol=0.005)
    assert np.bincount(actions).tolist() == [48] * 10
    # Independent of the action by default: no class far from the overall rate.
    per_class = np.stack([privacy[actions == c].mean(0) for c in range(10)])
    assert np.abs(per_class - privacy.mean(0)).max() < 0.3
    _, test_privacy = split_labels('test', 'a', per_class=16)
    assert np.allclose(test_privacy.mean(0), DEFAULT_PRIVACY_RATES, atol=0.01)


def test_correlation_ties_attributes_to_actions():
    actions, privacy = split_labels('train', 'a', per_class=48, correlation=1.0)
    per_class = np.stack([privacy[actions == c].mean(0) for c in range(10)])
    assert np.allclose(privacy.mean(0), DEFAULT_PRIVACY_RATES, atol=0.005)
    # Every attribute is then decided by the action for most classes.
    purity = np.minimum(per_class, 1 - per_class)
    assert ((purity < 0.1).sum(0) >= 9).all()
    test_actions, test_privacy = split_labels('test', 'a', per_class=16, correlation=1.0)
    test_per_class = np.stack([test_privacy[test_actions == c].mean(0) for c in range(10)])
    assert np.abs(test_per_class - per_class).max() < 0.3  # same leaning in both splits
    custom = split_labels('test', 'a', per_class=20, privacy_rates=(0.5, 0.5, 0.5, 0.5, 0.1))[1]
    assert np.allclose(custom.mean(0), (0.5, 0.5, 0.5, 0.5, 0.1))


def test_depth_and_mask_line_up_with_frames():
    actions, privacy = split_labels('train', 'a', per_class=2)
    for i in (0, 4, 9):
        bits = privacy[i].copy()
        bits[4] = 1  # a second person too
        full = render_video(0, 'a', 'train', i, int(actions[i]), bits, 8, 112)
        empty = render_video(0, 'a', 'train', i, int(actions[i]), bits, 8, 112,
                             draw_people=False)
        person = full[..., 4] == 255
        assert 0.03 < person.mean() < 0.5
        # Outside the mask the frame is exactly the empty scene; inside, people changed it.
        assert np.array_equal(full[~person][:, :4], empty[~person][:, :4])
        changed = np.abs(full[..., :3].astype(int) - empty[..., :3]).sum(-1) > 0
        assert changed[person].mean() > 0.95
        # People are nearer than what they hide.
        assert (full[..., 3][person].astype(int) > empty[..., 3][person]).all()
        assert not empty[..., 4].any()


def test_domain_b_differs(tmp_path):
    a = _source(tmp_path, split='test')
    b = _source(tmp_path, split='test', domain='b')
    assert b.name == 'vp_synth_b' and a.cache_folder != b.cache_folder
    fa, fb = (np.asarray(s._arrays['frames'][..., :3], np.float32) for s in (a, b))
    # Outdoor scenes: different mean colour statistics, not just different pixels.
    assert np.abs(fa.mean((0, 1, 2, 3)) - fb.mean((0, 1, 2, 3))).max() > 5
    masks = [np.asarray(s._arrays['frames'][..., 4]).mean() for s in (a, b)]
    assert masks[1] < masks[0]  # farther camera: smaller people
    # its own data version, recorded by its own source type (the vp_synth_b config's)
    assert a.data_version == 'generator 2' and b.data_version == 'generator 3'
    with pytest.raises(ValueError, match="type='VPSynthBSource'"):
        VPSynthSource(split='test', domain='b', cache_dir=tmp_path, **SMALL)


def test_domain_b_people_have_other_proportions():
    from benchmark.datasets import synth_render as sr
    ratios = {}
    for domain, style in sr.DOMAINS.items():
        j = sr.skeleton('walk', 4, 14.0, 0.0, 1.0, 0.1, 0.07, np.zeros(8), style.build)
        shin = np.linalg.norm(j[:, sr.R_ANK] - j[:, sr.R_KNE], axis=-1)
        forearm = np.linalg.norm(j[:, sr.R_WRI] - j[:, sr.R_ELB], axis=-1)
        torso = np.linalg.norm(j[:, sr.NECK] - j[:, sr.PELVIS], axis=-1)
        ratios[domain] = (shin / torso).mean(), (forearm / torso).mean()
    assert ratios['a'] == pytest.approx((0.225 / 0.30, 0.15 / 0.30))
    assert ratios['b'] == pytest.approx((0.225 * 1.12 / (0.30 * 0.88), 0.15 * 1.10 / (0.30 * 0.88)))


# sha256 (first 16 hex digits) of videos 0..19 of each split of domain a, seed 0, 8 frames at
# 32 px: committed results rest on these videos, so no change to domain b may move them.
DOMAIN_A_DIGESTS = {'train': 'f37b8d2a26ff5c73', 'test': 'b8f3308a17604704',
                    'pretrain': '27d6f3ea46dafd4e'}


@pytest.mark.parametrize('split', sorted(DOMAIN_A_DIGESTS))
def test_domain_a_videos_are_unchanged(split):
    import hashlib
    actions, privacy = split_labels(split, 'a', per_class=2)
    digest = hashlib.sha256()
    for i in range(20):
        digest.update(render_video(0, 'a', split, i, int(actions[i]), privacy[i], 8, 32).tobytes())
    assert digest.hexdigest()[:16] == DOMAIN_A_DIGESTS[split]


@pytest.mark.parametrize('damage', ['truncate', 'manifest', 'byte', 'labels'])
def test_corrupt_cache_is_regenerated(tmp_path, damage):
    first = _source(tmp_path, split='test')
    reference = np.array(first._arrays['frames'])
    folder = first.cache_folder
    del first
    frames = folder / 'frames.npy'
    if damage == 'truncate':
        data = frames.read_bytes()
        frames.write_bytes(data[:len(data) // 2])
    elif damage == 'manifest':
        (folder / 'manifest.json').unlink()
    elif damage == 'byte':
        data = bytearray(frames.read_bytes())
        data[len(data) // 3] ^= 0xFF
        frames.write_bytes(bytes(data))
    else:
        manifest = json.loads((folder / 'manifest.json').read_text())
        manifest['files']['privacy.npy']['crc32'] += 1
        (folder / 'manifest.json').write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match='regenerating'):
        again = _source(tmp_path, split='test')
    assert np.array_equal(np.asarray(again._arrays['frames']), reference)
    # The regenerated entry is sound: the next load is silent.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _source(tmp_path, split='test')


def test_pickles_without_the_frames_and_feeds_clip_dataset(tmp_path):
    src = _source(tmp_path)
    blob = pickle.dumps(src)
    assert len(blob) < 20_000  # paths, not the mapped bytes (workers re-map the files)
    copy = pickle.loads(blob)
    assert np.array_equal(copy.read(2, [1, 3]), src.read(2, [1, 3]))
    ds = ClipDataset(src, target='privacy', clip_len=4, frame_interval=2, crop_size=28)
    item = ds[0]
    assert item['inputs'].shape == (1, 5, 4, 28, 28)


def test_bad_options_fail_with_one_line(tmp_path):
    with pytest.raises(ValueError, match='split'):
        VPSynthSource(split='val', cache_dir=tmp_path)
    with pytest.raises(ValueError, match='privacy_rates'):
        VPSynthSource(privacy_rates=(0.5, 0.5), cache_dir=tmp_path)
    with pytest.raises(ValueError, match='size'):
        VPSynthSource(size=224, cache_dir=tmp_path)


def test_style_images_are_cached_depth_renderings(tmp_path):
    images = vp_synth_style_images(num=6, size=48, seed=3, cache_dir=tmp_path)
    assert images.shape == (6, 48, 48, 3) and images.dtype == np.uint8
    assert np.array_equal(images[..., 0], images[..., 2])  # grey like Kinect depth frames
    assert np.array_equal(images, vp_synth_style_images(num=6, size=48, seed=3,
                                                        cache_dir=tmp_path))
    jet = vp_synth_style_images(num=2, size=48, seed=3, colormap='jet', cache_dir=tmp_path)
    assert not np.array_equal(jet[..., 0], jet[..., 2])


def test_preview_writes_png_and_gif(tmp_path):
    from PIL import Image
    paths = write_preview(tmp_path, size=32, num_clips=2, frames_shown=3, gif_clips=2,
                          num_frames=4)
    png, gif = paths
    assert png.name == 'vp_synth_preview.png' and Image.open(png).size[0] > 200
    with Image.open(gif) as anim:
        assert anim.n_frames == 4


def test_woven_cloth_is_fine_detail_only():
    """Nudity's fine cue (synth_render's docstring): half the shirts are skin-toned cloth told
    from a bare torso only by a pixel-pitch weave, never on a bare torso. The weave shows at
    the stored size and is gone after 2x area downsampling (the Downsample-2x baseline)."""
    from benchmark.datasets import synth_render as sr
    from benchmark.datasets.vp_synth import resize_clip

    def woven(seed, nudity):
        bits = np.array([1, 1, 1, nudity, 0])  # no companion: only the labelled person
        return sr.render_clip(np.random.default_rng(seed), 'a', 'idle', bits, 2, weave_maps=True)

    assert not any(woven(seed, 1)[1].any() for seed in range(20))
    shirts = [seed for seed in range(40) if woven(seed, 0)[1].any()]
    assert 10 <= len(shirts) <= 30
    import cv2
    clip, weave = woven(shirts[0], 0)
    plain = resize_clip(clip, 64)
    small = np.stack([cv2.resize(w, (64, 64), interpolation=cv2.INTER_AREA) for w in weave])
    cloth = sr.apply_weave(plain.copy(), np.where(small >= 128, 255, 0))
    full = (cloth[..., :3].astype(float) - plain[..., :3]) ** 2
    assert full.sum() > 0 and (cloth[..., 3:] == plain[..., 3:]).all()

    def down2(x):
        return x[..., :3].astype(float).reshape(2, 32, 2, 32, 2, 3).mean((2, 4))
    # what is left after downsampling is the weave's edge, cut by other shapes
    assert ((down2(cloth) - down2(plain)) ** 2).sum() * 4 < 0.05 * full.sum()

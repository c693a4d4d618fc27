"""Anonymize once: the stored videos are the anonymizer's output, resume after an interruption,
and clips read from them equal clips anonymized batch by batch."""
import json

import numpy as np
import pytest
import torch

from benchmark.anonymizer import Anonymizer
from benchmark.data import ClipPreprocessor
from benchmark.datasets.anonymized import COMPLETE, AnonymizedSource, materialize, video_path
from benchmark.datasets.clips import ClipDataset
from baselines.blur import RegionBlur
from baselines.downsample import Downsample


class ToySource:
    """Videos of varying length and size, with a mask map."""
    classes, attributes, aux_channels = ('a', 'b'), ('skin_color',), ('mask',)

    def __init__(self, shapes=((6, 20, 24), (4, 20, 24), (5, 18, 30))):
        rng = np.random.default_rng(0)
        self.videos = [rng.integers(0, 256, (*s, 4), dtype=np.uint8) for s in shapes]

    def __len__(self):
        return len(self.videos)

    def num_frames(self, i):
        return len(self.videos[i])

    def read(self, i, idx):
        return self.videos[i][np.asarray(idx)]

    def action(self, i):
        return i % 2

    def privacy(self, i):
        return (i % 2,)

    def video_id(self, i):
        return f'toy_{i}'


def test_stored_videos_are_the_anonymizer_output_and_keep_labels(tmp_path):
    src, anon = ToySource(), RegionBlur(sigma=2.0).eval()
    record = materialize(src, anon, tmp_path)
    assert record['videos'] == 3 and record['frames'] == 15
    out = AnonymizedSource(src, str(tmp_path))
    assert out.aux_channels == () and len(out) == 3 and out.classes == src.classes
    for i in range(3):
        frames = torch.from_numpy(src.videos[i]).permute(3, 0, 1, 2)[None].float() / 255
        want = anon(frames[:, :3], {'mask': frames[:, 3:]}).clamp(0, 1).mul(255).round()
        got = torch.from_numpy(out.read(i, np.arange(out.num_frames(i)))).permute(3, 0, 1, 2)[None]
        assert torch.equal(got.float(), want)
        assert (out.action(i), out.privacy(i), out.video_id(i)) == (i % 2, (i % 2,), f'toy_{i}')


def test_an_interrupted_pass_resumes_with_the_videos_already_written(tmp_path):
    src = ToySource()
    materialize(src, Downsample(2), tmp_path)
    (tmp_path / COMPLETE).unlink()
    video_path(tmp_path, 1).unlink()  # as if killed after video 0
    kept = video_path(tmp_path, 0).stat().st_mtime_ns
    record = materialize(src, Downsample(2), tmp_path)
    assert record['frames'] == 4  # only video 1 again
    assert video_path(tmp_path, 0).stat().st_mtime_ns == kept
    assert json.loads((tmp_path / COMPLETE).read_text()) == record


def test_reading_before_the_pass_or_a_clip_mixing_anonymizer_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match='no complete set'):
        AnonymizedSource(ToySource(), str(tmp_path))

    class ClipWise(Anonymizer):
        def forward(self, clips, aux=None):
            return clips.mean(2, keepdim=True).expand_as(clips)
    with pytest.raises(ValueError, match='not per_frame'):
        materialize(ToySource(), ClipWise(), tmp_path)


def test_clips_from_stored_videos_match_the_per_batch_path(tmp_path):
    src = ToySource(shapes=((8, 20, 20), (8, 20, 20)))
    anon = Downsample(2)
    materialize(src, anon, tmp_path, resize_short=16, crop_size=16)
    kw = dict(test_mode=True, clip_len=4, frame_interval=1, crop_size=16, resize_short=16,
              num_clips=2, num_crops=1)
    stored = ClipDataset(AnonymizedSource(src, str(tmp_path)), **kw)
    direct = ClipDataset(src, **kw)
    batch_path = ClipPreprocessor(aux_channels=('mask',), anonymizer=dict(type='Downsample', factor=2),
                                  normalize=False)
    plain = ClipPreprocessor(normalize=False)
    for i in range(2):
        a = plain(dict(inputs=[stored[i]['inputs']], data_samples=[None]))['inputs']
        b = batch_path(dict(inputs=[direct[i]['inputs']], data_samples=[None]))['inputs']
        # same frames; downsampling by 2 of a 16 px crop of a 16 px frame: identical but for rounding
        assert (a - b).abs().max() <= 1 / 255 + 1e-6

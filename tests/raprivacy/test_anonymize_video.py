"""``load_anonymizer`` and ``anonymize_video`` (the engine of ``bench anonymize``) on real files."""
import json
import re

import av
import cv2
import numpy as np
import pytest
import torch

from benchmark.anonymize import anonymize_video, load_anonymizer
from benchmark.anonymizer import Anonymizer, build_anonymizer
from benchmark.errors import InputError
from tests.raprivacy.helpers import tiny_anonymizer_cfg


def write_video(path, frames: int, h: int = 40, w: int = 48, fps: int = 10):
    with av.open(str(path), mode='w') as container:
        stream = container.add_stream('mpeg4', rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, 'yuv420p'
        for i in range(frames):
            image = np.zeros((h, w, 3), np.uint8)
            image[:, : (i * 5) % w] = (200, 80, 30)  # a moving edge
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_video(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format='rgb24') for f in container.decode(stream)]
        return frames, float(stream.average_rate)


def save_fitted(folder, anonymizer_cfg, clip_len=4, crop_size=32):
    """What the protocol leaves for a run: anonymizer.pth and anonymizer.json."""
    torch.manual_seed(0)
    anon = build_anonymizer(anonymizer_cfg)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(anon.state_dict() if anon.learns else {}, folder / 'anonymizer.pth')
    (folder / 'anonymizer.json').write_text(json.dumps(dict(
        anonymizer={k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in anonymizer_cfg.items()},
        clip_len=clip_len, crop_size=crop_size, method='raprivacy', aux_channels=['depth', 'mask'])))
    return anon.eval()


def test_video_file_round_trip_streams_windows(tmp_path):
    cfg = tiny_anonymizer_cfg()
    cfg['style_set'] = dict(cfg['style_set'], images=cfg['style_set']['images'].tolist())
    fitted = save_fitted(tmp_path / 'run', cfg)
    anon = load_anonymizer(checkpoint=tmp_path / 'run')
    assert anon.run_meta['clip_len'] == 4 and not anon.training
    write_video(tmp_path / 'in.mp4', frames=10)  # 2 full windows and a partial one
    calls = []
    anon.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    info = anonymize_video(anon, tmp_path / 'in.mp4', tmp_path / 'out.mp4')
    frames, fps = read_video(tmp_path / 'out.mp4')
    assert info['frames'] == 10 and len(frames) == 10 and fps == pytest.approx(10)
    assert frames[0].shape == (40, 48, 3)  # back at the video's size
    assert calls == [(1, 3, 4, 32, 32)] * 3  # windows of clip_len at the fitted crop size
    assert info['size'] == '32x32'  # a learning anonymizer works at its size, and says it
    assert info['frame_size'] == '48x40'
    # the loaded anonymizer is the fitted one
    clips = torch.rand(1, 3, 4, 32, 32)
    assert torch.allclose(anon(clips), fitted(clips))


def test_frame_folder_in_and_out(tmp_path):
    cfg = tiny_anonymizer_cfg()
    cfg['style_set'] = dict(cfg['style_set'], images=cfg['style_set']['images'].tolist())
    save_fitted(tmp_path / 'run', cfg)
    anon = load_anonymizer(checkpoint=tmp_path / 'run' / 'anonymizer.pth')
    (tmp_path / 'frames').mkdir()
    for i in range(5):
        cv2.imwrite(str(tmp_path / 'frames' / f'{i:03d}.png'), np.full((30, 30, 3), 40 * i, np.uint8))
    info = anonymize_video(anon, tmp_path / 'frames', tmp_path / 'out_frames', window=2)
    written = sorted((tmp_path / 'out_frames').glob('*.png'))
    assert info['frames'] == 5 and len(written) == 5
    assert cv2.imread(str(written[0])).shape == (30, 30, 3)


class _NeedsDepth(Anonymizer):  # not registered: the registry lists the suite's methods only
    needs = ('depth',)

    def forward(self, clips, aux=None):
        return clips


def test_exported_from_the_package():
    import raprivacy
    assert raprivacy.load_anonymizer is load_anonymizer and raprivacy.anonymize_video is anonymize_video


def test_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match='anonymizer.json'):
        (tmp_path / 'anonymizer.pth').write_bytes(b'')
        load_anonymizer(checkpoint=tmp_path / 'anonymizer.pth')
    with pytest.raises(ValueError, match='exactly one'):
        load_anonymizer()
    with pytest.raises(ValueError, match='needs depth maps, which a plain video does not have'):
        anonymize_video(_NeedsDepth(), tmp_path / 'in.mp4', tmp_path / 'out.mp4')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        anonymize_video(build_anonymizer(tiny_anonymizer_cfg()), tmp_path / 'absent.mp4', tmp_path / 'o.mp4')


def test_load_from_an_mlflow_run(tmp_path):
    mlflow = pytest.importorskip('mlflow')
    cfg = tiny_anonymizer_cfg()
    cfg['style_set'] = dict(cfg['style_set'], images=cfg['style_set']['images'].tolist())
    fitted = save_fitted(tmp_path / 'run', cfg)
    uri = f'sqlite:///{tmp_path}/mlflow.db'
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment('t', artifact_location=(tmp_path / 'artifacts').as_uri())
    run = client.create_run(experiment)
    client.log_artifacts(run.info.run_id, str(tmp_path / 'run'), artifact_path='anonymizer')
    anon = load_anonymizer(run_id=run.info.run_id, tracking_uri=uri)
    clips = torch.rand(1, 3, 4, 32, 32)
    assert torch.allclose(anon(clips), fitted(clips))


def test_a_fixed_anonymizer_works_at_the_videos_own_size(tmp_path):
    """Fitted at an 8 px crop, downsampling must not shrink a 48x40 video to 8x8 first."""
    save_fitted(tmp_path / 'run', dict(type='Downsample', factor=2), crop_size=8)
    anon = load_anonymizer(checkpoint=tmp_path / 'run')
    write_video(tmp_path / 'in.mp4', frames=6)
    calls = []
    anon.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    info = anonymize_video(anon, tmp_path / 'in.mp4', tmp_path / 'out.mp4')
    assert info['size'] is None and calls == [(1, 3, 4, 40, 48)] * 2
    assert read_video(tmp_path / 'out.mp4')[0][0].shape == (40, 48, 3)


@pytest.mark.parametrize('write, says', [
    (lambda p: p.write_bytes(b'\x00 not a torch file ' * 50), 'is not a torch checkpoint'),
    (lambda p: torch.save({'epoch': 3, 'weight': torch.ones(2)}, p),
     'does not hold the weights of Downsample (Unexpected key(s)'),
    (lambda p: torch.save([1, 2], p), 'does not hold the weights of Downsample'),
])
def test_a_checkpoint_that_is_not_the_anonymizers_is_one_line_naming_it(write, says, tmp_path):
    save_fitted(tmp_path / 'run', dict(type='Downsample', factor=2))
    write(tmp_path / 'run' / 'anonymizer.pth')
    with pytest.raises(InputError) as err:
        load_anonymizer(checkpoint=tmp_path / 'run')
    assert says in str(err.value) and str(tmp_path / 'run' / 'anonymizer.pth') in str(err.value)
    assert '\n' not in str(err.value)
    (tmp_path / 'run' / 'anonymizer.json').write_text('{"anonymizer": ')
    with pytest.raises(InputError, match='anonymizer.json is not the anonymizer.json a bench run'):
        load_anonymizer(checkpoint=tmp_path / 'run')


def test_an_output_folder_it_cannot_write_is_named_before_decoding(tmp_path, monkeypatch):
    anon = build_anonymizer(dict(type='Downsample', factor=2))
    write_video(tmp_path / 'in.mp4', frames=2)
    with pytest.raises(InputError, match=f'output folder {tmp_path / "missing"} does not exist'):
        anonymize_video(anon, tmp_path / 'in.mp4', tmp_path / 'missing' / 'out.mp4')
    (tmp_path / 'a_file').write_text('')
    with pytest.raises(InputError, match='a_file/frames cannot be created'):
        anonymize_video(anon, tmp_path / 'in.mp4', tmp_path / 'a_file' / 'frames')
    import benchmark.anonymize
    monkeypatch.setattr(benchmark.anonymize.os, 'access', lambda path, mode: path != tmp_path)
    with pytest.raises(InputError, match=f'output folder {tmp_path} is not writable'):
        anonymize_video(anon, tmp_path / 'in.mp4', tmp_path / 'out.mp4')
    assert not (tmp_path / 'missing').exists() and not (tmp_path / 'out.mp4').exists()


def test_bench_anonymize_ends_with_one_readable_line(tmp_path, capsys):
    from benchmark.cli import main
    cfg = tiny_anonymizer_cfg()
    cfg['style_set'] = dict(cfg['style_set'], images=cfg['style_set']['images'].tolist())
    save_fitted(tmp_path / 'run', cfg)
    write_video(tmp_path / 'in.mp4', frames=10)
    assert main(['anonymize', '--checkpoint', str(tmp_path / 'run'), str(tmp_path / 'in.mp4'),
                 str(tmp_path / 'out.mp4')]) == 0
    captured = capsys.readouterr()
    assert captured.err == ''
    lines = captured.out.splitlines()
    assert len(lines) == 1 and re.fullmatch(
        r'anonymized 10 frames \(48x40, 10 fps\) in \d+\.\d s, worked at 32x32 \(its fitted size\) '
        r'and resized back: ' + re.escape(str(tmp_path / 'out.mp4')), lines[0]), lines

"""Run a fitted anonymizer on a video: what a clinic would run (``bench anonymize``).

Every run of the protocol leaves, for its anonymizer, ``anonymizer.pth`` (the state dict; empty
for fixed methods) and ``anonymizer.json`` beside it: ``{"anonymizer": <config>, "clip_len": T,
"crop_size": S, "method": ..., "aux_channels": [...]}``, also logged to MLflow under the parent
run's ``anonymizer/`` artifacts. ``load_anonymizer`` rebuilds it from either place;
``anonymize_video`` streams a video file (or a folder of frames) through it in windows of T
frames, so memory does not grow with the video's length.

A fixed anonymizer (blur, downsampling, ...) works on the frames at the video's own size: its
sizes are given at 112 px frame height and scale with the frame, so a small training crop must
not shrink the video it anonymizes. A learning anonymizer works at the size it was fitted at:
frames are resized (bilinear, antialiased) to ``S x S`` (the fitted crop size; wide frames are
squeezed), anonymized, and resized back to the video's own size; the size is returned so the
caller can say it. The last window is padded with its last frame and the padding dropped.
Audio is not copied.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.anonymizer import Anonymizer, build_anonymizer
from benchmark.data import load_anonymizer_state
from benchmark.errors import InputError, first_line
from benchmark.registry import ANONYMIZERS, closest, UnknownNameError

VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.mov', '.webm', '.m4v')
FRAME_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp')
CHECKPOINT_NAME, META_NAME = 'anonymizer.pth', 'anonymizer.json'


def load_anonymizer(checkpoint: str | Path | None = None, run_id: str | None = None,
                    tracking_uri: str | None = None, device: str | torch.device = 'cpu') -> Anonymizer:
    """Rebuild a fitted anonymizer, frozen and in eval mode.

    Args:
        checkpoint (str | Path, optional): ``anonymizer.pth`` or the folder holding it and
            ``anonymizer.json``. Defaults to None.
        run_id (str, optional): MLflow run whose ``anonymizer/`` artifacts to download.
            Defaults to None.
        tracking_uri (str, optional): MLflow store of ``run_id``; None uses MLflow's default
            (``MLFLOW_TRACKING_URI``). Defaults to None.
        device (str | torch.device): Where to put it. Defaults to ``'cpu'``.

    Returns:
        Anonymizer: with ``run_meta``, the contents of ``anonymizer.json``.
    """
    if (checkpoint is None) == (run_id is None):
        raise ValueError('give exactly one of --checkpoint PATH or --run RUN_ID')
    if run_id is not None:
        import mlflow
        try:
            folder = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path='anonymizer',
                                                              tracking_uri=tracking_uri))
        except Exception as err:  # MLflow raises several types; the user needs one line
            raise FileNotFoundError(f'run {run_id}: no anonymizer/ artifacts in the MLflow store '
                                    f'{tracking_uri or "(default)"} ({type(err).__name__}): check --run '
                                    f'and --tracking-uri') from None
        weights = folder / CHECKPOINT_NAME
    else:
        path = Path(checkpoint).expanduser()
        weights = path / CHECKPOINT_NAME if path.is_dir() else path
    meta_path = weights.with_name(META_NAME)
    for p in (weights, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f'{p} not found: an anonymizer checkpoint is {CHECKPOINT_NAME} with '
                                    f'{META_NAME} beside it, as bench run writes them')
    try:
        meta = json.loads(meta_path.read_text())
        cfg = dict(meta['anonymizer'])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(f'{meta_path} is not the {META_NAME} a bench run writes '
                         f'({first_line(err)})') from None
    cls = ANONYMIZERS.get(cfg.get('type'))
    if cls is None:
        raise UnknownNameError(closest(str(cfg.get('type')), list(ANONYMIZERS.module_dict), 'anonymizer'))
    if hasattr(cls, 'checkpoint_config'):  # weights come from the state dict, not from files
        cfg = cls.checkpoint_config(cfg)
    anonymizer = build_anonymizer(cfg)
    load_anonymizer_state(anonymizer, weights)
    anonymizer.run_meta = meta
    return anonymizer.to(device).eval().requires_grad_(False)


def _frame_source(path: Path):
    """Yields (fps, iterator of uint8 (H, W, 3) RGB frames) for a video file or frame folder."""
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
        if not frames:
            raise FileNotFoundError(f'{path} holds no {"/".join(FRAME_SUFFIXES)} frames')
        import cv2

        def read():
            for p in frames:
                image = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if image is None:
                    raise ValueError(f'frame {p} could not be read')
                yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return None, read()
    if not path.is_file():
        raise FileNotFoundError(f'input {path} does not exist: give a video file or a folder of frames')
    import av
    container = av.open(str(path))
    if not container.streams.video:
        raise ValueError(f'{path} has no video stream')
    stream = container.streams.video[0]
    stream.thread_type = 'AUTO'

    def decode():
        with container:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format='rgb24')
    return float(stream.average_rate or 25), decode()


class _FrameSink:
    """Writes frames to a video file (H.264, else MPEG-4) or to numbered PNGs in a folder."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.video = path.suffix.lower() in VIDEO_SUFFIXES
        self.container = self.stream = None
        self.count = 0
        self.frame_size = None  # (H, W) of the frames written
        folder = path.parent if self.video else path
        if not self.video:
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputError(f'output folder {path} cannot be created ({err.strerror})') from None
        elif not folder.is_dir():
            raise InputError(f'output folder {folder} does not exist: create it or write elsewhere')
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f'output folder {folder} is not writable: write elsewhere')

    def _open(self, h: int, w: int) -> None:
        import av
        from fractions import Fraction
        self.container = av.open(str(self.path), mode='w')
        codec = 'libx264' if 'libx264' in av.codecs_available else 'mpeg4'
        self.stream = self.container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        self.stream.width, self.stream.height = w, h
        # 4:2:0 needs even sides; x264 takes odd ones in 4:4:4
        self.stream.pix_fmt = 'yuv420p' if (h % 2 == 0 and w % 2 == 0) or codec != 'libx264' else 'yuv444p'
        if codec != 'libx264' and (h % 2 or w % 2):
            raise ValueError(f'{self.path}: odd frame size {w}x{h} needs libx264, which this PyAV lacks')

    def write(self, frame: np.ndarray) -> None:
        if not self.video:
            import cv2
            cv2.imwrite(str(self.path / f'frame_{self.count:06d}.png'), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        else:
            import av
            if self.container is None:
                self._open(*frame.shape[:2])
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                self.container.mux(packet)
        self.frame_size = frame.shape[:2]
        self.count += 1

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()


def check_paths(input_path: str | Path, output_path: str | Path) -> None:
    """Refuse an output that is the input (same path, a link to it, or a hard link): nothing is written."""
    src, dst = Path(input_path).expanduser(), Path(output_path).expanduser()
    if src.resolve() == dst.resolve() or (src.exists() and dst.exists() and os.path.samefile(src, dst)):
        raise ValueError(f'output {dst} is the input {src}: anonymizing would overwrite it; give '
                         f'another output path')


@torch.no_grad()
def _anonymize_window(anonymizer: Anonymizer, frames: list[np.ndarray], clip_len: int,
                      size: tuple[int, int] | None, device) -> np.ndarray:
    n = len(frames)
    clip = torch.from_numpy(np.stack(frames + [frames[-1]] * (clip_len - n)))  # (T, H, W, 3)
    clip = clip.to(device).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W)
    h, w = clip.shape[-2:]
    if size is not None and (h, w) != size:
        clip = F.interpolate(clip, size=size, mode='bilinear', antialias=True, align_corners=False)
    out = anonymizer(clip.transpose(0, 1).unsqueeze(0).clamp_(0, 1), {})[0].transpose(0, 1)
    if out.shape[-2:] != (h, w):
        out = F.interpolate(out, size=(h, w), mode='bilinear', antialias=True, align_corners=False)
    out = out[:n].clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return out.permute(0, 2, 3, 1).cpu().numpy()


def anonymize_video(anonymizer: Anonymizer, input_path: str | Path, output_path: str | Path,
                    window: int | None = None, size: int | None = None,
                    device: str | torch.device | None = None, fps: float = 25.0) -> dict:
    """Anonymize a video file or a folder of frames, window by window.

    Args:
        anonymizer (Anonymizer): A loaded anonymizer (``load_anonymizer``).
        input_path (str | Path): Video file (anything FFmpeg decodes) or folder of PNG/JPEG frames.
        output_path (str | Path): ``.mp4``/``.avi``/``.mkv``/... for a video (H.264 when PyAV has
            it, else MPEG-4), anything else for a folder of PNG frames.
        window (int, optional): Frames per anonymizer call; defaults to the fitted clip length
            (``run_meta['clip_len']``), else 16.
        size (int, optional): Working side S. Defaults to the fitted crop size
            (``run_meta['crop_size']``) for a learning anonymizer, and to the frames' own size
            for a fixed one (or without that record).
        device (str | torch.device, optional): Defaults to the anonymizer's device.
        fps (float): Output frame rate for a folder of frames (videos keep theirs). Defaults to 25.

    Returns:
        dict: ``frames`` written, ``fps``, ``output`` path, ``frame_size`` (``'WxH'``, the
        frames' own) and ``size``, the working size (``'SxS'``), or None where frames kept their
        own size.
    """
    check_paths(input_path, output_path)
    needs = tuple(getattr(anonymizer, 'needs', ()))
    if needs:
        raise ValueError(f'{type(anonymizer).__name__} needs {", ".join(needs)} maps, which a plain '
                         f'video does not have: anonymize_video runs only anonymizers that need RGB alone')
    meta = getattr(anonymizer, 'run_meta', {}) or {}
    window = int(window or meta.get('clip_len') or 16)
    side = size or (meta.get('crop_size') if anonymizer.learns else None)
    work = (int(side), int(side)) if side else None
    if device is None:
        tensor = next(itertools.chain(anonymizer.parameters(), anonymizer.buffers()), None)
        device = tensor.device if tensor is not None else 'cpu'
    anonymizer.eval()
    source_fps, frames = _frame_source(Path(input_path).expanduser())
    sink = _FrameSink(Path(output_path).expanduser(), source_fps or fps)
    pending: list[np.ndarray] = []
    try:
        for frame in frames:
            pending.append(frame)
            if len(pending) == window:
                for out in _anonymize_window(anonymizer, pending, window, work, device):
                    sink.write(out)
                pending = []
        if pending:
            for out in _anonymize_window(anonymizer, pending, window, work, device):
                sink.write(out)
    finally:
        sink.close()
    if sink.count == 0:
        raise ValueError(f'{input_path} gave no frames')
    h, w = sink.frame_size
    return dict(frames=sink.count, fps=sink.fps, output=str(output_path), frame_size=f'{w}x{h}',
                size=f'{work[1]}x{work[0]}' if work else None)

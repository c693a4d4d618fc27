"""Monocular depth for the Depth Image row on real videos: ZoeDepth from local weights.

The RAPrivacy paper's Depth Image baseline replaces each frame by its ZoeDepth estimate
(Bhat et al., 2023, "ZoeDepth: Zero-shot Transfer by Combining Relative and Metric Depth").
No depth weights are on any registry this suite can reach, so the user points to weights
they have: an ONNX export (run with onnxruntime, the ``onnx`` extra) or a local Hugging Face
ZoeDepth folder (run with ``transformers``, when it is installed). Nothing falls back to
random weights.

The output is *nearness*: inverse depth normalised per video to [0, 255] (255 = nearest),
as a depth camera image is usually shown and as the anonymizers' ``'depth'`` map expects.
Normalising per video (not per frame) keeps the brightness of a still scene steady.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

_WEIGHTS_HINT = ('set dataset.source.depth.weights=PATH to a ZoeDepth ONNX file or a local Hugging '
                 'Face ZoeDepth folder (e.g. --cfg-options dataset.source.depth.weights=/models/'
                 'zoedepth-nyu-kitti.onnx); see README "Using the real datasets"')


def check_depth_config(cfg: dict | None) -> dict:
    """Validate the depth config early (at dataset construction) and fix the weights path.

    Returns the config with ``weights`` absolute and a ``stamp`` (size and modification time of
    the weights) so a cache made with other weights is never reused.
    """
    cfg = dict(cfg or {})
    weights = cfg.get('weights')
    if not weights:
        raise ValueError(f'the depth maps need ZoeDepth weights: {_WEIGHTS_HINT}')
    path = Path(weights).expanduser()
    if not path.exists():
        raise FileNotFoundError(f'depth weights {path} do not exist: {_WEIGHTS_HINT}')
    cfg['weights'] = str(path.resolve())
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    cfg['stamp'] = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files if f.is_file()]
    return cfg


class DepthEstimator:
    """Run a depth model on frames, batched.

    Args:
        weights (str): An ``.onnx`` file, or a folder with a Hugging Face ZoeDepth model
            (``config.json`` and its weights).
        backend (str): ``'onnx'``, ``'transformers'`` or ``'auto'`` (by the path).
            Defaults to ``'auto'``.
        input_size (tuple[int, int]): ``(height, width)`` the frames are resized to for an ONNX
            model whose input size is not fixed. Defaults to ``(384, 512)`` (ZoeDepth's).
        mean (tuple[float, ...]): Per-channel mean subtracted from RGB in [0, 1] for ONNX.
            Defaults to ``(0.5, 0.5, 0.5)`` (ZoeDepth's).
        std (tuple[float, ...]): Per-channel std for ONNX. Defaults to ``(0.5, 0.5, 0.5)``.
        output (str): What the model returns: ``'depth'`` (larger is farther, ZoeDepth) or
            ``'inverse'`` (larger is nearer, e.g. MiDaS). Defaults to ``'depth'``.
        batch_size (int): Frames per model call. Defaults to 16.
        device (str): Torch device for the transformers backend. Defaults to ``'cpu'``.
        stamp: Fingerprint added by :func:`check_depth_config`; unused here. Defaults to None.
    """

    def __init__(self, weights: str, backend: str = 'auto', input_size: tuple[int, int] = (384, 512),
                 mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.5, 0.5, 0.5),
                 output: str = 'depth', batch_size: int = 16, device: str = 'cpu', stamp=None) -> None:
        del stamp  # part of the cache key only
        path = Path(weights).expanduser()
        if backend == 'auto':
            backend = 'transformers' if path.is_dir() else 'onnx'
        if output not in ('depth', 'inverse'):
            raise ValueError(f"dataset.source.depth.output must be 'depth' or 'inverse', got {output!r}")
        self.backend = backend
        self.output = output
        self.batch_size = batch_size
        self.mean = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
        if backend == 'onnx':
            try:
                import onnxruntime as ort
            except ImportError:
                raise ImportError('ONNX depth weights need onnxruntime: pip install '
                                  '"raprivacy-bench[onnx]" (or pip install onnxruntime)') from None
            self.session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
            spec = self.session.get_inputs()[0]
            self.input_name = spec.name
            fixed = [d if isinstance(d, int) else None for d in spec.shape]
            self.input_size = (fixed[2] or input_size[0], fixed[3] or input_size[1])
            if fixed[0] is not None:  # an export with a fixed batch
                self.batch_size = fixed[0]
        elif backend == 'transformers':
            try:
                import torch
                from transformers import AutoImageProcessor, AutoModelForDepthEstimation
            except ImportError:
                raise ImportError(f'{path} is a folder, read as a Hugging Face model, which needs '
                                  f'transformers (pip install transformers); or pass an ONNX '
                                  f'file') from None
            self.torch = torch
            self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True)
            self.model.to(device).eval()
            self.device = device
        else:
            raise ValueError(f"dataset.source.depth.backend must be 'onnx', 'transformers' or "
                             f"'auto', got {backend!r}")

    def _run_onnx(self, frames: np.ndarray) -> np.ndarray:
        h, w = self.input_size
        x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        x = x.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
        x = (x - self.mean) / self.std
        out = np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32)
        return out.reshape(len(frames), *out.shape[-2:])

    def _run_transformers(self, frames: np.ndarray) -> np.ndarray:
        inputs = self.processor(images=list(frames), return_tensors='pt').to(self.device)
        with self.torch.no_grad():
            out = self.model(**inputs).predicted_depth
        return out.reshape(len(frames), *out.shape[-2:]).float().cpu().numpy()

    def predict(self, frames: np.ndarray) -> np.ndarray:
        """Raw model output ``(T, H, W)`` float32 for uint8 RGB ``(T, H, W, 3)`` frames."""
        h, w = frames.shape[1:3]
        run = self._run_onnx if self.backend == 'onnx' else self._run_transformers
        preds = []
        for start in range(0, len(frames), self.batch_size):
            for p in run(frames[start:start + self.batch_size]):
                preds.append(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR))
        return np.stack(preds)

    def video_nearness(self, chunks: Iterable[np.ndarray]) -> np.ndarray:
        """Nearness ``(T, H, W)`` uint8 of a whole video given as chunks of frames.

        Inverse depth is scaled so the video's 2nd and 98th percentiles map to 0 and 255
        (percentiles, not extremes: a few sky or lens pixels would flatten everything else).
        """
        pred = np.concatenate([self.predict(c) for c in chunks])
        near = 1.0 / np.maximum(pred, 1e-6) if self.output == 'depth' else pred
        lo, hi = np.percentile(near, (2, 98))
        scaled = (near - lo) / max(hi - lo, 1e-12)
        return np.round(np.clip(scaled, 0, 1) * 255).astype(np.uint8)

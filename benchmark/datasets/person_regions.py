"""Person regions on real video, for the Blackening and blur baselines: offline detectors only.

The RAPrivacy paper's Blackening and StrongBlur/WeakBlur rows hide the person; on vp_synth
the renderer knows where the person is, on real video a detector must find them. Two
detectors that install from PyPI and run without a network:

- ``'hog'``: OpenCV's HOG + linear SVM people detector (Dalal and Triggs, CVPR 2005), part of
  OpenCV < 5. It finds upright, mostly whole pedestrians about 100 px or taller; it misses
  seated, lying, cropped (close-up, upper-body) and strongly posed people, and it gives
  boxes, so the mask covers the background around the person too.
- ``'selfie'``: MediaPipe's selfie segmentation network (a silhouette, not a box) run by
  OpenCV's dnn module from the ``.tflite`` file that ``pip install --no-deps
  mediapipe==0.10.21`` ships (mediapipe itself is never imported). It is made for one or two
  people near the camera, as in a video call; small, distant people are mostly missed.

Both run per frame; the mask is 255 inside a person region and 0 elsewhere.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

_SELFIE_HINT = ('install the model with `pip install --no-deps mediapipe==0.10.21` or set '
                'dataset.source.person.model=PATH/selfie_segmentation.tflite')


def _mediapipe_selfie_model() -> Path | None:
    # find_spec locates the installed package without importing it (its imports need
    # dependencies that --no-deps leaves out).
    spec = importlib.util.find_spec('mediapipe')
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / 'modules' / 'selfie_segmentation' / 'selfie_segmentation.tflite'
        if path.is_file():
            return path
    return None


def check_person_config(cfg: dict | None) -> dict:
    """Validate the person-region config early and resolve the selfie model's path."""
    cfg = dict(cfg or {})
    method = cfg.setdefault('method', 'hog')
    if method == 'selfie':
        model = Path(cfg['model']).expanduser() if cfg.get('model') else _mediapipe_selfie_model()
        if model is None or not model.is_file():
            raise FileNotFoundError(f'selfie segmentation model {model or "not found"}: {_SELFIE_HINT}')
        cfg['model'] = str(model.resolve())
        cfg['stamp'] = [model.stat().st_size, int(model.stat().st_mtime)]
    elif method != 'hog':
        raise ValueError(f"dataset.source.person.method must be 'hog' or 'selfie', got {method!r}")
    return cfg


class PersonRegions:
    """Person masks for frames.

    Args:
        method (str): ``'hog'`` or ``'selfie'``. Defaults to ``'hog'``.
        model (str, optional): The selfie ``.tflite`` file. Defaults to None.
        stride (int): HOG runs on every ``stride``-th frame and the frames between take the
            boxes of the nearest detected frame (people move little in a few frames; HOG costs
            tens of ms a frame). Defaults to 2.
        hit_threshold (float): HOG SVM score a window needs. Defaults to 0.0.
        detect_short_side (int): Frames are resized to this short side for HOG, so people
            fill more than its 64x128 window. Defaults to 320.
        input_size (tuple[int, int]): Selfie model input ``(height, width)``: (256, 256), or
            (144, 256) for the landscape model. Defaults to ``(256, 256)``.
        threshold (float): Selfie probability above which a pixel is a person.
            Defaults to 0.5.
        batch_size (int): Frames per selfie model call. Defaults to 16.
        stamp: Fingerprint added by :func:`check_person_config`; unused here. Defaults to None.
    """

    def __init__(self, method: str = 'hog', model: str | None = None, stride: int = 2,
                 hit_threshold: float = 0.0, detect_short_side: int = 320,
                 input_size: tuple[int, int] = (256, 256), threshold: float = 0.5,
                 batch_size: int = 16, stamp=None) -> None:
        del stamp  # part of the cache key only
        self.method = method
        self.stride = max(1, int(stride))
        self.hit_threshold = hit_threshold
        self.detect_short_side = detect_short_side
        self.input_size = tuple(input_size)
        self.threshold = threshold
        self.batch_size = batch_size
        if method == 'hog':
            self.hog = cv2.HOGDescriptor()
            self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        elif method == 'selfie':
            if not model:
                raise ValueError(f'the selfie method needs its model: {_SELFIE_HINT}')
            self.net = cv2.dnn.readNetFromTFLite(str(model))
        else:
            raise ValueError(f"person method must be 'hog' or 'selfie', got {method!r}")

    def boxes(self, frame: np.ndarray) -> np.ndarray:
        """HOG person boxes ``(K, 4)`` as ``x, y, w, h`` in the frame's pixels."""
        h, w = frame.shape[:2]
        scale = self.detect_short_side / min(h, w)
        resized = cv2.resize(frame, (round(w * scale), round(h * scale)))
        found, _ = self.hog.detectMultiScale(resized, hitThreshold=self.hit_threshold,
                                             winStride=(8, 8), padding=(8, 8), scale=1.05)
        return np.round(np.asarray(found, np.float64).reshape(-1, 4) / scale).astype(int)

    def _hog(self, frames: np.ndarray) -> np.ndarray:
        t, h, w = frames.shape[:3]
        detected = list(range(0, t, self.stride))
        if detected[-1] != t - 1:
            detected.append(t - 1)
        boxes = {i: self.boxes(frames[i]) for i in detected}
        keys = np.asarray(detected)
        masks = np.zeros((t, h, w), np.uint8)
        for i in range(t):
            nearest = int(keys[np.abs(keys - i).argmin()])
            for x, y, bw, bh in boxes[nearest]:
                masks[i, max(y, 0):y + bh, max(x, 0):x + bw] = 255
        return masks

    def _selfie(self, frames: np.ndarray) -> np.ndarray:
        t, h, w = frames.shape[:3]
        ih, iw = self.input_size
        masks = []
        for start in range(0, t, self.batch_size):
            # Frames are RGB already, as the model expects: no channel swap.
            blob = cv2.dnn.blobFromImages(list(frames[start:start + self.batch_size]), 1 / 255.0, (iw, ih))
            self.net.setInput(blob)
            prob = self.net.forward().reshape(-1, ih, iw)
            for p in prob:
                masks.append(cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) > self.threshold)
        return (np.stack(masks) * 255).astype(np.uint8)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Masks ``(T, H, W)`` uint8 (255 = person) for uint8 RGB frames ``(T, H, W, 3)``."""
        return self._hog(frames) if self.method == 'hog' else self._selfie(frames)

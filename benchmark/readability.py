"""Readability, measured: can a person still make out who does what in an anonymized frame?

The RAPrivacy paper's headline claim is readability (a human study); Table 1 used to carry it
as each method's design tag. These measures put a number on it for every run, on the test
videos the protocol anonymizes (``Protocol._readability``). All are in [0, 1].

Where the truth is known (vp_synth renders every frame's person mask and nearness map):

- ``readability_outline``: does the person's outline survive? The F-score of the anonymized
  frame's edges (Canny on its grey level, smoothed first as Canny's detector prescribes)
  against the boundary of the true person mask, an edge pixel matching a boundary pixel
  within a small tolerance (the boundary benchmark's F-measure, Martin et al. 2004). The mask
  drawn as a frame scores 1, a constant frame 0; edges of the room lower its precision alike
  for every method that keeps the room.
- ``readability_depth``: is the frame depth-like? SSIM (Wang et al. 2004) of the frame's grey
  level to the true nearness map, counted only above what a flat frame gets in each window
  and as a share of what the nearness map itself gets there: ``sum_w max(0, SSIM_w - f_w) /
  sum_w (1 - f_w)``, where ``f_w = C2 / (var_w(depth) + C2)`` is the best SSIM any constant
  frame reaches in window ``w``. The nearness map scores 1, every constant frame 0; flat
  windows of the map (where a constant is as good as the map) weigh nothing.
- ``readability_colour``: how much colour is left: the mean chroma (max minus min of R, G, B)
  of the anonymized frames as a share of the raw frames' mean chroma: raw 1, grey 0, above 1
  where a method adds colour.

Where it is not (real video), against what detectors find on the raw frames:

- ``readability_person``: the person-region model of the suite (``PersonRegions``: HOG or
  MediaPipe selfie segmentation) on raw and anonymized frames; the intersection over union of
  the two masks, pooled over the frames where a person is found on the raw frame.
- ``readability_faces``: a privacy proxy beside it: the share of faces OpenCV's Haar face
  detector finds on raw frames that it still finds (IoU >= 0.3) on the anonymized ones.
  Lower is better for privacy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from baselines.regions import REFERENCE_HEIGHT

# Canny hysteresis thresholds on 8-bit grey levels: a step of about 25 grey levels between
# the person and what is behind is an edge (the renderer's people stand 40 or more grey
# levels apart from their room; sensor-like noise of a few levels is not).
CANNY_LOW, CANNY_HIGH = 40, 80
# Pixels at 112 px frame height (halved at the cpu profile's 56 px). The smoothing keeps
# pixel-pitch texture (vp_synth's weave, sensor noise) from counting as edges; the tolerance
# lets an outline drawn a pixel or two off (blackening's grown mask) still count as the outline.
CANNY_SIGMA_AT_112 = 2.0
OUTLINE_TOLERANCE_AT_112 = 4
SSIM_C2 = 0.03 ** 2  # SSIM's constants for a data range of 1
SSIM_C1 = 0.01 ** 2
SSIM_SIGMA = 1.5  # SSIM's Gaussian window
FACE_IOU = 0.3
TRUTH_METRICS = ('readability_outline', 'readability_depth', 'readability_colour')
DETECTOR_METRICS = ('readability_person', 'readability_faces', 'readability_colour')
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 grey weights (RAPrivacy's outline term reads grey alike)


def grey(frame: np.ndarray) -> np.ndarray:
    """An RGB frame ``(H, W, 3)`` in [0, 1] as its grey level (ITU-R BT.601 luma), in [0, 1]."""
    return frame[..., 0] * LUMA[0] + frame[..., 1] * LUMA[1] + frame[..., 2] * LUMA[2]


def grey_uint8(frame: np.ndarray) -> np.ndarray:
    """:func:`grey` as 8-bit levels."""
    return np.clip(np.rint(grey(frame) * 255), 0, 255).astype(np.uint8)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a binary mask ``(H, W)`` with a 4-neighbour outside it (the frame's border
    is not a boundary)."""
    inside = mask.astype(bool)
    padded = np.pad(inside, 1, mode='edge')
    eroded = (padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:])
    return inside & ~eroded


def _grow(binary: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return binary
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(binary.astype(np.uint8), kernel).astype(bool)


@dataclass
class Counts:
    """Pooled counts behind a ratio measure, summed over frames."""

    numerator: float = 0.0
    denominator: float = 0.0

    def add(self, numerator: float, denominator: float) -> None:
        self.numerator += numerator
        self.denominator += denominator

    def ratio(self) -> float:
        return self.numerator / self.denominator if self.denominator else math.nan


@dataclass
class OutlineCounts:
    """Matched and total edge and boundary pixels, pooled over frames."""

    edges: Counts = field(default_factory=Counts)
    boundary: Counts = field(default_factory=Counts)

    def add(self, frame: np.ndarray, mask: np.ndarray, tolerance: int, sigma: float) -> None:
        boundary = mask_boundary(mask)
        if not boundary.any():  # no person in this frame: nothing to outline
            return
        edges = edge_map(frame, sigma)
        self.edges.add(int((edges & _grow(boundary, tolerance)).sum()), int(edges.sum()))
        self.boundary.add(int((boundary & _grow(edges, tolerance)).sum()), int(boundary.sum()))

    def f_score(self) -> float:
        if not self.boundary.denominator:
            return math.nan
        precision, recall = self.edges.ratio(), self.boundary.ratio()
        if math.isnan(precision) or precision + recall == 0:  # no edge at all, or none on it
            return 0.0
        return 2 * precision * recall / (precision + recall)


def edge_map(frame: np.ndarray, sigma: float) -> np.ndarray:
    """Canny edges of an RGB frame ``(H, W, 3)`` in [0, 1], Gaussian-smoothed by ``sigma`` px."""
    grey = grey_uint8(frame)
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return cv2.Canny(grey, CANNY_LOW, CANNY_HIGH) > 0


def outline_scale(height: int) -> tuple[int, float]:
    """The outline tolerance (pixels, at least 1) and edge smoothing for frames ``height`` px high."""
    return (max(1, round(OUTLINE_TOLERANCE_AT_112 * height / REFERENCE_HEIGHT)),
            CANNY_SIGMA_AT_112 * height / REFERENCE_HEIGHT)


def outline_score(frames: np.ndarray, masks: np.ndarray) -> float:
    """F-score of the frames' edges against the masks' boundaries (see module docstring).

    Args:
        frames (np.ndarray): RGB ``(T, H, W, 3)`` in [0, 1].
        masks (np.ndarray): ``(T, H, W)``, non-zero inside the person.
    """
    counts = OutlineCounts()
    tolerance, sigma = outline_scale(frames.shape[1])
    for frame, mask in zip(frames, masks):
        counts.add(frame, mask, tolerance, sigma)
    return counts.f_score()


def _local_mean(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


def depth_gain_counts(frame: np.ndarray, depth: np.ndarray) -> tuple[float, float]:
    """``(sum_w max(0, SSIM_w - f_w), sum_w (1 - f_w))`` of one frame against its nearness map.

    Args:
        frame (np.ndarray): RGB ``(H, W, 3)`` in [0, 1].
        depth (np.ndarray): Nearness ``(H, W)`` in [0, 1].
    """
    x = grey(frame).astype(np.float64)
    y = depth.astype(np.float64)
    mu_x, mu_y = _local_mean(x), _local_mean(y)
    var_x = np.maximum(_local_mean(x * x) - mu_x ** 2, 0)
    var_y = np.maximum(_local_mean(y * y) - mu_y ** 2, 0)
    cov = _local_mean(x * y) - mu_x * mu_y
    ssim = ((2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
            / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    flat = SSIM_C2 / (var_y + SSIM_C2)  # the best SSIM a constant frame reaches in the window
    return float(np.maximum(ssim - flat, 0).sum()), float((1 - flat).sum())


def depth_likeness(frames: np.ndarray, depths: np.ndarray) -> float:
    """SSIM to the nearness map above a flat frame's (see module docstring), pooled over frames.

    Args:
        frames (np.ndarray): RGB ``(T, H, W, 3)`` in [0, 1].
        depths (np.ndarray): Nearness ``(T, H, W)`` in [0, 1].
    """
    counts = Counts()
    for frame, depth in zip(frames, depths):
        counts.add(*depth_gain_counts(frame, depth))
    return counts.ratio()


def mean_chroma(frames: np.ndarray) -> float:
    """Mean over pixels of max(R, G, B) - min(R, G, B), for RGB ``(..., 3)`` in [0, 1]."""
    return float((frames.max(-1) - frames.min(-1)).mean())


def mask_iou_counts(found: np.ndarray, reference: np.ndarray) -> tuple[int, int]:
    """Intersection and union of two binary masks."""
    found, reference = found.astype(bool), reference.astype(bool)
    return int((found & reference).sum()), int((found | reference).sum())


def box_iou(a, b) -> float:
    """IoU of two ``(x, y, w, h)`` boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


class FaceDetector:
    """OpenCV's Haar cascade frontal-face detector (Viola and Jones), shipped with opencv-python.

    Args:
        min_size (int): Smallest face side in pixels at the frame's size. Defaults to 12.
    """

    def __init__(self, min_size: int = 12) -> None:
        path = cv2.data.haarcascades + 'haarcascade_frontalface_default.xml'
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f'the Haar face cascade {path} could not be read: reinstall '
                                    f'opencv-python')
        self.min_size = min_size

    def __call__(self, frame: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Face boxes ``(x, y, w, h)`` in a uint8 RGB frame ``(H, W, 3)``."""
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4,
                                              minSize=(self.min_size, self.min_size))
        return [tuple(int(v) for v in box) for box in np.asarray(found).reshape(-1, 4)]


def faces_kept_counts(raw_faces, anonymized_faces) -> tuple[int, int]:
    """Faces of the raw frame also found on the anonymized one, and faces of the raw frame."""
    kept = sum(any(box_iou(face, other) >= FACE_IOU for other in anonymized_faces)
               for face in raw_faces)
    return kept, len(raw_faces)


class Readability:
    """Accumulates the readability measures over clips, then gives the ``readability_*`` metrics.

    Args:
        truth (bool): The clips come with true ``mask`` and ``depth`` maps (vp_synth): the
            outline and depth measures. Otherwise the detector measures (person regions and
            faces). Defaults to True.
        person (callable, optional): Person masks ``(T, H, W)`` for uint8 RGB frames
            ``(T, H, W, 3)``, as ``PersonRegions``; built from ``person_cfg`` when None and
            ``truth`` is False. Defaults to None.
        faces (callable, optional): Face boxes for one uint8 RGB frame, as
            :class:`FaceDetector` (the default). Defaults to None.
        person_cfg (dict, optional): ``PersonRegions`` arguments. Defaults to HOG.
    """

    def __init__(self, truth: bool = True, person=None, faces=None,
                 person_cfg: dict | None = None) -> None:
        self.truth = truth
        self.outline = OutlineCounts()
        self.depth = Counts()
        self.chroma = Counts()  # anonymized chroma over raw chroma
        self.person_overlap = Counts()
        self.faces_kept = Counts()
        if not truth:
            if person is None:
                from benchmark.datasets.person_regions import PersonRegions, check_person_config
                cfg = check_person_config(person_cfg)
                person = PersonRegions(**cfg)
            self.person = person
            self.faces = faces or FaceDetector()

    def add(self, raw: torch.Tensor, anonymized: torch.Tensor,
            aux: dict[str, torch.Tensor] | None = None) -> None:
        """Add a batch of clips.

        Args:
            raw (torch.Tensor): Raw RGB clips ``(N, 3, T, H, W)`` in [0, 1].
            anonymized (torch.Tensor): The same clips anonymized, same shape.
            aux (dict, optional): ``mask`` and ``depth`` maps ``(N, 1, T, H, W)`` in [0, 1];
                needed when ``truth``.
        """
        to_frames = (lambda x: x.detach().float().cpu().permute(0, 2, 3, 4, 1).numpy())
        raw_frames, out_frames = to_frames(raw), to_frames(anonymized.clamp(0, 1))
        self.chroma.add(mean_chroma(out_frames) * out_frames[..., 0].size,
                        mean_chroma(raw_frames) * raw_frames[..., 0].size)
        if self.truth:
            masks, depths = to_frames(aux['mask'])[..., 0], to_frames(aux['depth'])[..., 0]
            tolerance, sigma = outline_scale(raw.shape[-2])
            for clip, clip_masks, clip_depths in zip(out_frames, masks, depths):
                for frame, mask, depth in zip(clip, clip_masks, clip_depths):
                    self.outline.add(frame, mask > 0.5, tolerance, sigma)
                    self.depth.add(*depth_gain_counts(frame, depth))
            return
        as_uint8 = (lambda x: np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))
        for raw_clip, out_clip in zip(as_uint8(raw_frames), as_uint8(out_frames)):
            found_raw, found_out = self.person(raw_clip), self.person(out_clip)
            for on_raw, on_out in zip(found_raw, found_out):
                if on_raw.any():
                    self.person_overlap.add(*mask_iou_counts(on_out, on_raw))
            for raw_frame, out_frame in zip(raw_clip, out_clip):
                raw_faces = self.faces(raw_frame)
                if raw_faces:
                    self.faces_kept.add(*faces_kept_counts(raw_faces, self.faces(out_frame)))

    def metrics(self) -> dict[str, float]:
        """The ``readability_*`` metrics; NaN where nothing was there to measure (no person
        on any raw frame, no face found)."""
        out = {'readability_colour': self.chroma.ratio()}
        if self.truth:
            out['readability_outline'] = self.outline.f_score()
            out['readability_depth'] = self.depth.ratio()
        else:
            out['readability_person'] = self.person_overlap.ratio()
            out['readability_faces'] = self.faces_kept.ratio()
        return out


def measure(dataset, anonymizer, videos: int, device: str = 'cpu', batch_size: int = 8,
            person_cfg: dict | None = None) -> dict[str, float]:
    """The ``readability_*`` metrics of a frozen anonymizer on ``videos`` test videos.

    The videos are spread evenly over the test split (the same ones for every method), one
    clip of each (the centre view of ``dataset``).

    Args:
        dataset (ClipDataset): The test split, one clip and one crop per video.
        anonymizer (Anonymizer): Frozen, on ``device``.
        videos (int): How many test videos.
        device (str): Where the anonymizer runs. Defaults to ``'cpu'``.
        batch_size (int): Clips per anonymizer call. Defaults to 8.
        person_cfg (dict, optional): Person-region config for data without true masks.
            Defaults to HOG.
    """
    from benchmark.data import split_aux
    aux_channels = dataset.metainfo['aux_channels']
    truth = bool(getattr(dataset.source, 'aux_is_truth', False))
    meter = Readability(truth=truth, person_cfg=person_cfg)
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(videos, len(dataset))).round().astype(int))
    for start in range(0, len(picks), batch_size):
        items = [dataset[int(i)] for i in picks[start:start + batch_size]]
        packed = torch.stack([item['inputs'][0] for item in items]).float() / 255
        rgb, aux = split_aux(packed, aux_channels)
        with torch.no_grad():
            out = anonymizer(rgb.to(device), {k: v.to(device) for k, v in aux.items()})
        meter.add(rgb, out.cpu(), aux)
    return meter.metrics()

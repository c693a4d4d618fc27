"""Uncertainty of the protocol's figures: bootstrap intervals over test videos and paired tests.

A run's top-1, cMAP and macro F1 are computed on a few hundred test videos; another draw of
test videos would give other numbers. Two tools, both resampling test videos with a fixed
generator so that a report is reproducible:

- :func:`bootstrap_interval`: the percentile interval of one run's metric over ``n_boot``
  resamples of its test videos (logged with every run as ``<metric>_ci_low/_ci_high``).
- :func:`paired_test`: two methods judged on the same test videos and the same seeds. Each
  resample draws the test videos (shared by both methods and all seeds) and the seeds (shared
  by both methods: a seed's two runs stay paired), and recomputes the difference of the
  seed-averaged metric. The two-sided p-value is twice the smaller tail of that difference
  around zero. Resampling seeds as well as videos puts the spread of training (seed to seed)
  into the test, not only the finite test set.

The metric arithmetic is vectorized over resamples in numpy (no torch, no scikit-learn) so that
``bench report`` stays fast; :func:`average_precision` equals scikit-learn's
``average_precision_score`` for every input, ties included (tested).

Missing attributes: an attribute without a positive test video has no AP and no meaningful F1
(0/0 positives); it is left out of both cMAP and macro F1, as in ``benchmark.metrics``. Within a
resample, an attribute that drew no positive video is left out of that resample's means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
N_BOOT = 2000
SEED = 20261130  # fixed: the same store gives the same intervals and p-values


def average_precision(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AP per row and column of ``(..., N, A)`` binary labels and scores, over the N axis.

    Ties share a threshold (scikit-learn's step-wise definition). Columns without a positive
    give NaN. Returns ``(..., A)``.
    """
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, axis=-2, kind='stable')
    y = np.take_along_axis(labels, order, axis=-2)
    s = np.take_along_axis(scores, order, axis=-2)
    n = y.shape[-2]
    tp = np.cumsum(y, axis=-2)
    # every item of a tie group takes the precision at the group's last position
    last = np.ones_like(s, dtype=bool)
    last[..., :-1, :] = s[..., :-1, :] != s[..., 1:, :]
    rank = np.broadcast_to(np.arange(n).reshape((n, 1)), s.shape)
    end = np.where(last, rank, n)
    end = np.flip(np.minimum.accumulate(np.flip(end, axis=-2), axis=-2), axis=-2)
    tp_end = np.take_along_axis(tp, end, axis=-2)
    precision = tp_end / (end + 1)
    positives = y.sum(axis=-2)
    with np.errstate(invalid='ignore', divide='ignore'):
        ap = (precision * y).sum(axis=-2) / positives
    return np.where(positives > 0, ap, np.nan)


def f1_at_half(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """F1 per column of ``(..., N, A)`` at probability 0.5; NaN where a column has no positive."""
    labels = np.asarray(labels, dtype=float)
    predicted = (np.asarray(probs, dtype=float) >= 0.5).astype(float)
    tp = (labels * predicted).sum(axis=-2)
    positives = labels.sum(axis=-2)
    denominator = positives + predicted.sum(axis=-2)
    with np.errstate(invalid='ignore', divide='ignore'):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)
    return np.where(positives > 0, f1, np.nan)


def _nanmean_last(x: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(x), axis=-1)
    totals = np.nansum(x, axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, totals / counts, np.nan)


@dataclass(frozen=True)
class Predictions:
    """Per-video outputs of one run's test stage.

    ``labels``: ``(N,)`` action classes or ``(N, A)`` privacy bits; ``scores``: ``(N, C)``
    class probabilities or ``(N, A)`` attribute probabilities; ``video_ids``: ``(N,)``.
    """

    video_ids: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def aligned(self, video_ids: np.ndarray) -> 'Predictions':
        """The same predictions in the order of ``video_ids`` (all must be present)."""
        where = {v: i for i, v in enumerate(self.video_ids.tolist())}
        missing = [v for v in video_ids.tolist() if v not in where]
        if missing:
            raise ValueError(f'{len(missing)} test videos missing from the predictions '
                             f'(e.g. {missing[0]}): the runs were not tested on the same videos')
        idx = np.array([where[v] for v in video_ids.tolist()])
        return Predictions(video_ids[...], self.labels[idx], self.scores[idx])


# metric name -> (stage whose predictions it needs, function of (labels, scores) over axis -2)
def _top1(labels, scores):
    return np.mean(np.argmax(scores, axis=-1) == labels, axis=-1)


def _cmap(labels, scores):
    return _nanmean_last(average_precision(labels, scores))


def _f1_macro(labels, scores):
    return _nanmean_last(f1_at_half(labels, scores))


METRICS = {'action_top1': ('action', _top1),
           'privacy_cmap': ('privacy', _cmap),
           'privacy_f1_macro': ('privacy', _f1_macro)}


def metric_value(metric: str, predictions: Predictions) -> float:
    """The metric on all test videos (equals the logged metric of the run)."""
    _, fn = METRICS[metric]
    return float(fn(predictions.labels, predictions.scores))


def _aligned_runs(groups: list[dict], seeds: list) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels ``(N, ...)`` and, per group, scores ``(S, N, ...)`` on one order of test videos."""
    ids = groups[0][seeds[0]].video_ids
    aligned = [[group[s].aligned(ids) for s in seeds] for group in groups]
    labels = aligned[0][0].labels
    if any(not np.array_equal(p.labels, labels) for runs in aligned for p in runs):
        raise ValueError('the test labels differ between runs of the same test videos: '
                         'the runs were not tested on the same data')
    return labels, [np.stack([p.scores for p in runs]) for runs in aligned]


def _resampled_means(metric: str, labels: np.ndarray, scores: list[np.ndarray], n_boot: int,
                     seed: int) -> list[np.ndarray]:
    """Per group, ``n_boot`` values of the seed-averaged metric, every group resampled alike.

    Each resample draws N test videos and S seeds with replacement; all groups take the same
    draw, so groups stay paired by video and by seed.
    """
    _, fn = METRICS[metric]
    rng = np.random.default_rng(seed)
    k, n = scores[0].shape[:2]
    video_idx = rng.integers(0, n, size=(n_boot, n))
    seed_idx = rng.integers(0, k, size=(n_boot, k))
    y = labels[video_idx]
    means = [np.zeros(n_boot) for _ in scores]
    for j in range(k):  # one seed slot at a time keeps memory at (B, N, C)
        for total, group in zip(means, scores):
            total += fn(y, group[seed_idx[:, j][:, None], video_idx]) / k
    return means


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return math.nan, math.nan
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def group_interval(metric: str, runs: dict, n_boot: int = N_BOOT, confidence: float = CONFIDENCE,
                   seed: int = SEED) -> tuple[float, float]:
    """Bootstrap interval of the seed-averaged metric of one method (seed -> Predictions),
    resampling test videos and seeds."""
    seeds = sorted(runs, key=str)
    if not seeds or not len(runs[seeds[0]].video_ids):
        return math.nan, math.nan
    labels, scores = _aligned_runs([runs], seeds)
    return _percentiles(_resampled_means(metric, labels, scores, n_boot, seed)[0], confidence)


def bootstrap_interval(metric: str, predictions: Predictions, n_boot: int = N_BOOT,
                       confidence: float = CONFIDENCE, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of one run's metric over its test videos."""
    return group_interval(metric, {0: predictions}, n_boot, confidence, seed)


@dataclass(frozen=True)
class PairedResult:
    """Outcome of :func:`paired_test`: A minus B on the shared seeds and test videos."""

    difference: float  # mean over shared seeds of metric(A) - metric(B), all test videos
    low: float  # bootstrap interval of the difference
    high: float
    p_value: float
    seeds: int
    videos: int

    def significant(self, level: float = SIGNIFICANCE) -> bool:
        return self.p_value < level


def paired_test(metric: str, runs_a: dict, runs_b: dict, n_boot: int = N_BOOT,
                confidence: float = CONFIDENCE, seed: int = SEED) -> PairedResult | None:
    """Paired bootstrap test of ``metric`` between two methods.

    Args:
        metric (str): A key of ``METRICS``.
        runs_a (dict): Seed -> :class:`Predictions` of method A.
        runs_b (dict): Seed -> :class:`Predictions` of method B.

    Returns None when the methods share no seed.
    """
    _, fn = METRICS[metric]
    seeds = sorted(set(runs_a) & set(runs_b), key=str)
    if not seeds:
        return None
    labels, (score_a, score_b) = _aligned_runs([runs_a, runs_b], seeds)
    observed = float(np.mean([fn(labels, sa) - fn(labels, sb) for sa, sb in zip(score_a, score_b)]))
    mean_a, mean_b = _resampled_means(metric, labels, [score_a, score_b], n_boot, seed)
    diffs = mean_a - mean_b
    diffs = diffs[~np.isnan(diffs)]
    low, high = _percentiles(diffs, confidence)
    # two-sided: twice the share of resamples on the far side of zero (ties count half)
    below = (np.sum(diffs < 0) + 0.5 * np.sum(diffs == 0)) / max(len(diffs), 1)
    p = min(1.0, 2 * min(below, 1 - below))
    return PairedResult(observed, low, high, float(p), len(seeds), len(labels))


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion ``correct / total`` (Wilson 1927): unlike the
    normal approximation it stays inside [0, 1] and is not empty at 0 or ``total`` correct,
    which a study with few answers per method often gives. NaNs when ``total`` is 0."""
    if total <= 0:
        return math.nan, math.nan
    from statistics import NormalDist
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)

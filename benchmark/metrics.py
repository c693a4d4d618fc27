"""Metrics of the protocol: action top-1, privacy AP / cMAP / F1, and their chance floors.

The arithmetic is scikit-learn's (``average_precision_score``, ``f1_score``); this module only
fixes the protocol's choices around it:

- Scores are probabilities: softmax averaged over the test views for actions (mmaction2's
  ``average_clips='prob'``), sigmoid of the view-averaged logits for privacy attributes.
- F1 thresholds the sigmoid probability at 0.5 (SPAct thresholds raw logits at 0.5; we do not).
- An attribute with no positive test clip has no defined AP and no meaningful F1 (its recall
  is 0/0). Both are reported as NaN for that attribute and the attribute is left out of cMAP and
  of macro F1 alike (each the mean over the attributes that have positives, counted in
  ``privacy_cmap_attributes``), and out of both floors. Every table can therefore trust cMAP and
  macro F1 to be means over the same, defined attributes.
- Chance floors come from the test labels actually used: a constant predictor's AP equals the
  positive rate, so the cMAP floor is the mean positive rate; the F1 floor is the macro F1 of
  the all-positive predictor; the top-1 floor is the majority-class rate.

Every metric declares its direction and the protocol version it belongs to
(``METRIC_SPECS``, in the torch-free ``benchmark.metric_specs`` so reports load fast).

Each test also keeps its per-video outputs (``predictions_file``: video ids, labels and the
probabilities the metrics were computed from) and reports a 95 % bootstrap interval over test
videos beside top-1, cMAP and macro F1 (``<metric>_ci_low`` / ``<metric>_ci_high``,
``benchmark.stats``); the report's paired tests read the same files.
"""
from __future__ import annotations

import math
import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from sklearn.metrics import average_precision_score, f1_score

from benchmark.registry import METRICS

from benchmark.metric_specs import (METRIC_SPECS, PRIVACY_ATTRIBUTES,  # noqa: F401 (re-exported)
                                    PROTOCOL_VERSION, MetricSpec)


def top1_accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Fraction of videos whose highest-probability class is the label."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    if len(labels) == 0:
        raise ValueError('top-1 accuracy of an empty test set is undefined')
    return float((probs.argmax(axis=1) == labels).mean())


def privacy_metrics(labels: np.ndarray, probs: np.ndarray,
                    attributes: tuple[str, ...] = PRIVACY_ATTRIBUTES) -> dict[str, float]:
    """Per-attribute AP and F1, cMAP and macro F1 from binary labels and probabilities.

    Args:
        labels (np.ndarray): ``(N, A)`` binary ground truth.
        probs (np.ndarray): ``(N, A)`` predicted probabilities in [0, 1].
        attributes (tuple of str): Attribute names, in column order. Defaults to the 5
            VP-UCF101/VP-HMDB51 attributes.
    """
    labels = np.asarray(labels).astype(int)
    probs = np.asarray(probs, dtype=float)
    if labels.shape != probs.shape or labels.ndim != 2 or labels.shape[1] != len(attributes):
        raise ValueError(f'labels {labels.shape} and probs {probs.shape} must both be '
                         f'(N, {len(attributes)})')
    out: dict[str, float] = {}
    aps, f1s = [], []
    for j, attr in enumerate(attributes):
        y, p = labels[:, j], probs[:, j]
        if y.any():
            ap = float(average_precision_score(y, p))
            f1 = float(f1_score(y, p >= 0.5, zero_division=0))
            aps.append(ap)
            f1s.append(f1)
        else:
            ap = f1 = math.nan
        out[f'privacy_ap_{attr}'] = ap
        out[f'privacy_f1_{attr}'] = f1
    out['privacy_cmap'] = float(np.mean(aps)) if aps else math.nan
    out['privacy_cmap_attributes'] = float(len(aps))
    out['privacy_f1_macro'] = float(np.mean(f1s)) if f1s else math.nan
    return out


def chance_floors(privacy_labels: np.ndarray | None = None,
                  action_labels: np.ndarray | None = None) -> dict[str, float]:
    """Chance floors from the test labels actually used (REFERENCE section 2)."""
    out: dict[str, float] = {}
    if privacy_labels is not None:
        labels = np.asarray(privacy_labels).astype(int)
        with_pos = labels[:, labels.any(axis=0)]  # the attributes cMAP and macro F1 average
        out['floor_cmap'] = float(with_pos.mean()) if with_pos.size else math.nan
        all_pos = np.ones_like(with_pos)
        out['floor_f1_macro'] = (float(np.mean([f1_score(with_pos[:, j], all_pos[:, j])
                                                for j in range(with_pos.shape[1])]))
                                 if with_pos.size else math.nan)
    if action_labels is not None:
        counts = np.bincount(np.asarray(action_labels).astype(int))
        out['floor_action_top1'] = float(counts.max() / counts.sum())
    return out


def _collect(data_samples) -> tuple[np.ndarray, np.ndarray]:
    scores = np.stack([torch.as_tensor(s['pred_scores']['item']).float().cpu().numpy()
                       for s in data_samples])
    labels = np.stack([torch.as_tensor(s['gt_labels']['item']).cpu().numpy().reshape(-1)
                       for s in data_samples])
    return labels, scores


class _TestMetric(BaseMetric):
    """Keeps every test video's outputs; saves them and bootstrap intervals with the metrics.

    Args:
        predictions_file (str, optional): ``.npz`` to write ``video_ids``, ``labels`` and
            ``scores`` (probabilities) to. Defaults to None (not saved).
    """

    default_prefix = ''
    interval_metrics: tuple[str, ...] = ()

    def __init__(self, predictions_file: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.predictions_file = predictions_file

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            self.results.append(dict(pred_scores=dict(item=sample['pred_scores']['item'].cpu()),
                                     gt_labels=dict(item=sample['gt_labels']['item'].cpu()),
                                     video_id=str(sample.get('video_id', len(self.results)))))

    def _uncertainty(self, results: list, labels: np.ndarray, probs: np.ndarray) -> dict:
        from benchmark import stats
        predictions = stats.Predictions(np.array([r['video_id'] for r in results]), labels, probs)
        if self.predictions_file:
            np.savez_compressed(self.predictions_file, video_ids=predictions.video_ids,
                                labels=labels, scores=probs)
        out = {}
        for metric in self.interval_metrics:
            out[f'{metric}_ci_low'], out[f'{metric}_ci_high'] = stats.bootstrap_interval(
                metric, predictions)
        return out


@METRICS.register_module()
class ActionTop1(_TestMetric):
    """Top-1 over view-averaged class probabilities, plus the majority-class floor."""

    interval_metrics = ('action_top1',)

    def compute_metrics(self, results: list) -> dict:
        labels, probs = _collect(results)
        labels = labels[:, 0]
        return dict(action_top1=top1_accuracy(labels, probs),
                    **chance_floors(action_labels=labels),
                    **self._uncertainty(results, labels, probs))


@METRICS.register_module()
class PrivacyLeakage(_TestMetric):
    """AP, cMAP and F1 of a multi-label privacy model, plus the chance floors.

    The model's view-averaged logits (``average_clips='score'``) go through a sigmoid here.
    """

    interval_metrics = ('privacy_cmap', 'privacy_f1_macro')

    def __init__(self, attributes=PRIVACY_ATTRIBUTES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attributes = tuple(attributes)

    def compute_metrics(self, results: list) -> dict:
        labels, logits = _collect(results)
        probs = 1.0 / (1.0 + np.exp(-logits))
        return dict(**privacy_metrics(labels, probs, self.attributes),
                    **chance_floors(privacy_labels=labels),
                    **self._uncertainty(results, labels.astype(int), probs))

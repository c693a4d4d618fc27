"""Metrics of the protocol: action top-1, privacy AP / cMAP / F1, and their chance floors.

The arithmetic is scikit-learn's (``average_precision_score``, ``f1_score``); this module only
fixes the protocol's choices around it:

- Scores are probabilities: softmax averaged over the test views for actions (mmaction2's
  ``average_clips='prob'``), sigmoid of the view-averaged logits for privacy attributes.
- F1 thresholds the sigmoid probability at 0.5 (SPAct thresholds raw logits at 0.5; we do not).
- An attribute with no positive test clip has no defined AP. We report it as NaN for that
  attribute, leave it out of cMAP (the mean over the attributes that have positives), and count
  the attributes used in ``privacy_cmap_attributes``; its F1 is sklearn's with
  ``zero_division=0``. Every table can therefore trust cMAP to be a mean of defined APs.
- Chance floors come from the test labels actually used: a constant predictor's AP equals the
  positive rate, so the cMAP floor is the mean positive rate; the F1 floor is the macro F1 of
  the all-positive predictor; the top-1 floor is the majority-class rate.

Every metric declares its direction and the protocol version it belongs to
(``METRIC_SPECS``, in the torch-free ``benchmark.metric_specs`` so reports load fast).
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
        ap = float(average_precision_score(y, p)) if y.any() else math.nan
        f1 = float(f1_score(y, p >= 0.5, zero_division=0))
        out[f'privacy_ap_{attr}'] = ap
        out[f'privacy_f1_{attr}'] = f1
        if not math.isnan(ap):
            aps.append(ap)
        f1s.append(f1)
    out['privacy_cmap'] = float(np.mean(aps)) if aps else math.nan
    out['privacy_cmap_attributes'] = float(len(aps))
    out['privacy_f1_macro'] = float(np.mean(f1s))
    return out


def chance_floors(privacy_labels: np.ndarray | None = None,
                  action_labels: np.ndarray | None = None) -> dict[str, float]:
    """Chance floors from the test labels actually used (REFERENCE section 2)."""
    out: dict[str, float] = {}
    if privacy_labels is not None:
        labels = np.asarray(privacy_labels).astype(int)
        with_pos = labels[:, labels.any(axis=0)]
        out['floor_cmap'] = float(with_pos.mean()) if with_pos.size else math.nan
        all_pos = np.ones_like(labels)
        out['floor_f1_macro'] = float(np.mean([
            f1_score(labels[:, j], all_pos[:, j], zero_division=0) for j in range(labels.shape[1])]))
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


@METRICS.register_module()
class ActionTop1(BaseMetric):
    """Top-1 over view-averaged class probabilities, plus the majority-class floor."""

    default_prefix = ''

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            self.results.append(dict(pred_scores=dict(item=sample['pred_scores']['item'].cpu()),
                                     gt_labels=dict(item=sample['gt_labels']['item'].cpu())))

    def compute_metrics(self, results: list) -> dict:
        labels, probs = _collect(results)
        labels = labels[:, 0]
        return dict(action_top1=top1_accuracy(labels, probs),
                    **chance_floors(action_labels=labels))


@METRICS.register_module()
class PrivacyLeakage(BaseMetric):
    """AP, cMAP and F1 of a multi-label privacy model, plus the chance floors.

    The model's view-averaged logits (``average_clips='score'``) go through a sigmoid here.
    """

    default_prefix = ''

    def __init__(self, attributes=PRIVACY_ATTRIBUTES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.attributes = tuple(attributes)

    process = ActionTop1.process

    def compute_metrics(self, results: list) -> dict:
        labels, logits = _collect(results)
        probs = 1.0 / (1.0 + np.exp(-logits))
        return dict(**privacy_metrics(labels, probs, self.attributes),
                    **chance_floors(privacy_labels=labels))
